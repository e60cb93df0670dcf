"""Credit notes (kreditfakturor): the only correction of an issued invoice.

A credit note refers to its invoice and repeats each credited line with the opposite sign
(mervärdesskattelagen ch. 17 § 29). A line can be credited once; crediting every line
marks the invoice credited.
"""

from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing.rating import LineDraft, Text, invoice_totals
from core.bulk import insert_rows
from core.errors import DomainError
from core.money import ZERO
from invoices.models import DocumentKind, Invoice, InvoiceLine, InvoiceStatus
from invoices.services.bill_run import invoice_lines_build
from invoices.services.numbering import CREDIT_NOTE_SERIES, series_allocate
from invoices.services.status import invoice_set_status, invoice_touch


@transaction.atomic
def credit_note_issue(
    *, invoice_id: int, reason: str, line_ids: list[int] | None = None
) -> Invoice:
    """Credit the given lines of an invoice (all not yet credited when ``line_ids`` is None)."""
    reason = reason.strip()
    if not reason:
        raise DomainError(code="credit_reason_required", message="A credit note needs a reason.")
    invoice = Invoice.objects.select_for_update().select_related("customer").get(id=invoice_id)
    if invoice.kind != DocumentKind.INVOICE:
        raise DomainError(code="not_creditable", message="A credit note cannot be credited.")
    lines = list(invoice.lines.exclude(kind="rounding").order_by("position"))
    credited = set(
        InvoiceLine.objects.filter(credited_line__invoice=invoice).values_list(
            "credited_line_id", flat=True
        )
    )
    if line_ids is None:
        chosen = [line for line in lines if line.id not in credited]
    else:
        by_id = {line.id: line for line in lines}
        unknown = [i for i in line_ids if i not in by_id]
        if unknown:
            raise DomainError(
                code="line_not_found", message=f"Lines {unknown} are not on this invoice."
            )
        again = [i for i in line_ids if i in credited]
        if again:
            raise DomainError(code="line_already_credited", message=f"Lines {again} are credited.")
        chosen = [by_id[i] for i in line_ids]
    if not chosen:
        raise DomainError(code="nothing_to_credit", message="Every line is credited already.")

    drafts = [
        LineDraft(
            kind=line.kind,
            title=Text("Credit: {title}", {"title": line.text(invoice.language)["title"]}),
            detail=Text(
                "Credits line {position} of invoice {number}. Reason: {reason}",
                {"position": line.position, "number": invoice.display_number, "reason": reason},
            ),
            amount=-line.amount,
            vat_rate=line.vat_rate,
            quantity=line.quantity,
            unit=line.unit,
            unit_price=line.unit_price,
            subscription_id=line.subscription_id,
            service_from=line.service_from,
            service_to=line.service_to,
        )
        for line in chosen
    ]
    totals = invoice_totals(drafts)
    series, number = series_allocate(code=CREDIT_NOTE_SERIES, count=1)
    today = timezone.localdate()
    note = Invoice.objects.create(
        kind=DocumentKind.CREDIT_NOTE,
        series=series,
        number=number,
        customer=invoice.customer,
        credited_invoice=invoice,
        credit_reason=reason,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        invoice_date=today,
        due_date=today,
        ocr=None,
        language=invoice.language,
        buyer=invoice.buyer,
        seller=invoice.seller,
        subscriptions=invoice.subscriptions,
        vat_summary=totals.vat_summary,
        net_total=totals.net_total,
        vat_total=totals.vat_total,
        rounding=totals.rounding,
        total=totals.total,
        status=InvoiceStatus.ISSUED,
        issued_at=timezone.now(),
    )
    rows = invoice_lines_build(note.id, drafts, note.rounding)
    for row, line in zip(rows, chosen, strict=False):
        row["credited_line_id"] = line.id
    insert_rows(InvoiceLine, rows)
    if len(credited) + len(chosen) == len(lines):
        invoice_set_status(invoice=invoice, status=InvoiceStatus.CREDITED)
    else:
        invoice_touch(invoice_id=invoice.id)
    return note


def invoice_lines_creditable(invoice: Invoice) -> list[InvoiceLine]:
    """The lines of ``invoice`` that no credit note has credited yet (rounding excluded)."""
    if invoice.kind != DocumentKind.INVOICE:
        return []
    return list(
        invoice.lines.exclude(kind="rounding").filter(credits__isnull=True).order_by("position")
    )


def invoice_credited_amount(invoice: Invoice) -> Decimal:
    """What credit notes have taken off ``invoice`` so far (a positive amount)."""
    total = Invoice.objects.filter(credited_invoice=invoice).aggregate(s=Sum("total"))["s"]
    return -(total or ZERO)
