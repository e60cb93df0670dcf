"""Credit notes (kreditfakturor): the only correction of an issued invoice.

A credit note refers to its invoice and repeats each credited line with the opposite sign
(mervärdesskattelagen ch. 17 § 29). A line can be credited once; crediting every line
marks the invoice credited. Each note is rounded so that all notes of an invoice together
are the öresavrundning of everything credited so far: crediting every line, in one note or
line by line, takes off exactly the invoice's total.
"""

import dataclasses
from collections.abc import Mapping
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.rating import LineDraft, Text, invoice_totals
from core.bulk import insert_rows
from core.errors import DomainError
from core.money import ZERO, money_sum, round_to_krona
from invoices.models import OPEN_STATUSES, DocumentKind, Invoice, InvoiceLine, InvoiceStatus
from invoices.services.bill_run import invoice_lines_build
from invoices.services.numbering import CREDIT_NOTE_SERIES, series_allocate
from invoices.services.payments import invoice_balance, invoice_overpaid_to_surplus
from invoices.services.status import invoice_set_status, invoice_touch
from invoices.texts import render_text, text_languages

# The words of a credit line; their parameters differ per language (the credited line's title).
CREDIT_TITLE = Text("Credit: {title}")
CREDIT_DETAIL = Text("Credits line {position} of invoice {number}. Reason: {reason}")


@transaction.atomic
def credit_note_issue(
    *,
    invoice_id: int,
    reason: str,
    line_ids: list[int] | None = None,
    amounts: Mapping[int, Decimal] | None = None,
) -> Invoice:
    """Credit the given lines of an invoice (all not yet credited when ``line_ids`` is None).

    ``amounts`` credits only part of the lines it names (kronor, positive, at most what is
    left of the line: ``credit_exceeds_line``), a disputed part of a line; a line it does not
    name is credited whole."""
    reason = reason.strip()
    if not reason:
        raise DomainError(code="credit_reason_required", message="A credit note needs a reason.")
    invoice = (
        Invoice.objects.select_for_update(of=("self",)).select_related("series").get(id=invoice_id)
    )
    if invoice.kind != DocumentKind.INVOICE:
        raise DomainError(code="not_creditable", message="A credit note cannot be credited.")
    creditable = invoice_lines_creditable(invoice)
    chosen = creditable if line_ids is None else _chosen(invoice, creditable, line_ids)
    if not chosen:
        raise DomainError(code="nothing_to_credit", message="Every line is credited already.")
    parts = amounts or {}
    taken = {line.id: parts.get(line.id, line.remaining) for line in chosen}
    for line in chosen:
        if line.id in parts and not ZERO < parts[line.id] <= line.remaining:
            raise DomainError(
                code="credit_exceeds_line",
                message=f"Line {line.position} has {line.remaining} kr left to credit.",
            )
    drafts: list[LineDraft] = [
        LineDraft(
            kind=line.kind,
            title=Text(""),
            detail=Text(""),
            amount=-taken[line.id],  # what earlier (partial) credits left of the line, or part
            vat_rate=line.vat_rate,
            # a part of a line is an amount, not a number of units at the line's price
            quantity=line.quantity if taken[line.id] == line.remaining else Decimal(1),
            unit=line.unit if taken[line.id] == line.remaining else "",
            unit_price=line.unit_price if taken[line.id] == line.remaining else ZERO,
            subscription_id=line.subscription_id,
            service_from=line.service_from,
            service_to=line.service_to,
        )
        for line in chosen
    ]
    texts = [_credit_texts(line, invoice, reason) for line in chosen]
    note = _credit_note_create(
        invoice, drafts, reason=reason, texts=texts, credited_line_ids=[c.id for c in chosen]
    )
    left = sum(line.remaining for line in creditable) - sum(taken.values())
    _after_credit(invoice, note, fully=not left)
    return note


def credit_note_issue_correction(
    *, invoice_id: int, drafts: list[LineDraft], credited_line_ids: list[int], reason: str
) -> Invoice:
    """Credit part of some lines (a month re-rated after an undone plan change): each draft
    credits the line named at the same place in ``credited_line_ids``, with a negative amount
    and its own words.

    Precondition: called inside a transaction. Never credits more of a line than earlier
    credit notes left of it (``credit_exceeds_line``).
    """
    invoice = (
        Invoice.objects.select_for_update(of=("self",)).select_related("series").get(id=invoice_id)
    )
    if invoice.kind != DocumentKind.INVOICE:
        raise DomainError(code="not_creditable", message="A credit note cannot be credited.")
    left = {line.id: line.remaining for line in invoice_lines_creditable(invoice)}
    for draft, line_id in zip(drafts, credited_line_ids, strict=True):
        if not (draft.amount < 0 and -draft.amount <= left.get(line_id, ZERO)):
            raise DomainError(
                code="credit_exceeds_line",
                message=f"Line {line_id} of invoice {invoice.display_number} has less left "
                "to credit.",
            )
        left[line_id] += draft.amount
    note = _credit_note_create(invoice, drafts, reason=reason, credited_line_ids=credited_line_ids)
    _after_credit(invoice, note, fully=not any(left.values()))
    return note


def _after_credit(invoice: Invoice, note: Invoice, *, fully: bool) -> None:
    """The invoice after its credit note ``note``: what its payments paid beyond what is
    owed now is their surplus (the customer's credit balance); credited in full it is
    credited, and an open invoice with nothing left open is paid. Precondition: ``invoice``
    is locked."""
    invoice_overpaid_to_surplus(invoice=invoice, credit_note=note)
    if fully:
        invoice_set_status(invoice=invoice, status=InvoiceStatus.CREDITED)
    elif invoice.status in OPEN_STATUSES and invoice_balance(invoice).open == ZERO:
        invoice_set_status(invoice=invoice, status=InvoiceStatus.PAID)
    else:
        invoice_touch(invoice_id=invoice.id)


def _credit_note_create(
    invoice: Invoice,
    drafts: list[LineDraft],
    *,
    reason: str,
    texts: list[dict[str, dict[str, str]]] | None = None,
    credited_line_ids: list[int] | None = None,
) -> Invoice:
    """The credit note of ``invoice`` with these lines (words rendered from each draft unless
    ``texts`` gives them). Precondition: ``invoice`` is locked in this transaction."""
    totals = invoice_totals(drafts)
    gross = totals.total - totals.rounding
    if gross > 0:
        raise DomainError(
            code="credit_increases_amount",
            message="A credit note must lower what the customer owes: credit a discount "
            "together with the fee it reduces.",
        )
    earlier = Invoice.objects.filter(credited_invoice=invoice).aggregate(
        total=Sum("total"), rounding=Sum("rounding")
    )
    earlier_total = money_sum(earlier["total"])
    earlier_gross = earlier_total - money_sum(earlier["rounding"])
    total = round_to_krona(earlier_gross + gross) - earlier_total
    totals = dataclasses.replace(totals, total=total, rounding=total - gross)

    series, number = series_allocate(code=CREDIT_NOTE_SERIES, count=1)
    today = timezone.localdate()
    note = Invoice.objects.create(
        kind=DocumentKind.CREDIT_NOTE,
        series=series,
        number=number,
        customer_id=invoice.customer_id,
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
    rows = invoice_lines_build(note.id, drafts, note.rounding, texts)
    for row, line_id in zip(rows, credited_line_ids or [], strict=False):
        row["credited_line_id"] = line_id
    insert_rows(InvoiceLine, rows)
    return note


def _chosen(
    invoice: Invoice, creditable: list[InvoiceLine], line_ids: list[int]
) -> list[InvoiceLine]:
    if len(set(line_ids)) != len(line_ids):
        raise DomainError(code="line_repeated", message="Each line can be named once.")
    open_lines = {line.id: line for line in creditable}
    on_invoice = set(invoice.lines.exclude(kind="rounding").values_list("id", flat=True))
    unknown = [i for i in line_ids if i not in on_invoice]
    if unknown:
        raise DomainError(
            code="line_not_found", message=f"Lines {unknown} are not on this invoice."
        )
    again = [i for i in line_ids if i not in open_lines]
    if again:
        raise DomainError(code="line_already_credited", message=f"Lines {again} are credited.")
    return sorted((open_lines[i] for i in line_ids), key=lambda line: line.position)


def _credit_texts(line: InvoiceLine, invoice: Invoice, reason: str) -> dict[str, dict[str, str]]:
    """The credit line's words in every language, quoting the credited line's own title."""
    return {
        language: {
            "title": render_text(
                Text("Credit: {title}", {"title": line.text(language)["title"]}), language
            ),
            "detail": render_text(
                Text(
                    "Credits line {position} of invoice {number}. Reason: {reason}",
                    {"position": line.position, "number": invoice.display_number, "reason": reason},
                ),
                language,
            ),
        }
        for language in text_languages()
    }


def invoice_lines_creditable(invoice: Invoice) -> list[InvoiceLine]:
    """The lines of ``invoice`` with something left to credit (rounding excluded), each with
    ``remaining``: its amount less what credit notes have credited of it so far (a line may
    be credited in part, by a correction, and the rest later)."""
    if invoice.kind != DocumentKind.INVOICE:
        return []
    lines = (
        invoice.lines.exclude(kind="rounding")
        .annotate(credited=Coalesce(Sum("credits__amount"), Value(ZERO)))
        .order_by("position")
    )
    creditable: list[InvoiceLine] = []
    for line in lines:
        line.remaining = line.amount + line.credited
        if line.remaining:
            creditable.append(line)
    return creditable
