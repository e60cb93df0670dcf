"""The invoice PDF: WeasyPrint, A4, from the same data and texts as the page.

WeasyPrint needs about 0.4 s of CPU for a two-page invoice, so a PDF is rendered once and
stored on the invoice (``Invoice.pdf``): on the first request for it, or by
``invoice_render_pdfs_task`` right after issue for customers who get their invoice as a PDF
or on paper. Everyone else is served the stored file.

A PDF renders with the template of the version the invoice was issued under
(``Invoice.template_version``), so a document issued last year looks as it did then even
after the template has moved on. Rendering never touches the network: only ``data:`` URLs
and files under the project's own template and static folders can be loaded.
"""

import functools
import re
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import npgettext, pgettext

from core.errors import DomainError
from core.money import ZERO, format_amount
from invoices.models import Invoice, InvoiceLine
from invoices.page import invoice_page_context, subscription_heading
from invoices.selectors import invoice_credit_at_issue


@dataclass(frozen=True)
class PdfTemplate:
    html: str  # the document, a Django template
    css: str  # its style sheet (a template without tags), parsed once per process


# Template version -> template. Add a version (and never edit an old one in a way that
# changes what an issued document says) when the layout or the legal texts change.
PDF_TEMPLATES: dict[int, PdfTemplate] = {
    1: PdfTemplate(html="invoices/pdf/v1.html", css="invoices/pdf/v1.css"),
}


# --- what the template shows, formatted once in Python -----------------------------------


@dataclass(frozen=True)
class PdfLine:
    title: str
    detail: str
    period: str  # when it was delivered: "2026-10-01 – 2026-10-31" or one day
    quantity: str  # "31 dagar", "5 GB"
    unit_price: str  # incl. VAT; empty when the line has no unit price (discounts)
    vat_rate: str  # "25 %"
    amount: str  # incl. VAT


@dataclass(frozen=True)
class PdfGroup:
    """The lines of one subscription (or of nothing, for charges outside any)."""

    heading: str  # the page's words: "Anna", or the number when it has no label
    subheading: str  # "+46701234567 · Mobil 10 GB"
    period: str  # the subscription's period this month; lines show theirs only if it differs
    lines: list[PdfLine]
    subtotal: str


@dataclass(frozen=True)
class PdfVatRow:
    rate: str
    base: str  # the taxable amount (beskattningsunderlag), excl. VAT
    vat: str
    gross: str


@dataclass(frozen=True)
class PdfDocument:
    is_credit_note: bool
    title: str
    number: str
    invoice_date: str
    due_date: str
    period: str
    ocr: str
    groups: list[PdfGroup]
    vat_rows: list[PdfVatRow]
    net_total: str
    vat_total: str
    rounding: str  # empty when there is no öresavrundning
    total: str
    # what the customer's credit balance paid when the invoice was issued (empty when
    # nothing), what that left to pay, and the balance left when the PDF was rendered
    from_credit: str
    to_pay: str
    credit_left: str
    credited_number: str
    credited_date: str
    credit_reason: str


@dataclass(frozen=True)
class PdfCharge:
    title: str
    detail: str  # its legal basis, how it was computed, how to avoid the next one
    date: str
    amount: str


@dataclass(frozen=True)
class PdfClaim:
    """What the claim grew by after issue (reminder fees, interest) and what is to pay now;
    printed only when there is such a charge, so an invoice without one prints as issued."""

    charges: list[PdfCharge]
    charges_total: str
    credited: str  # empty without credit notes
    paid: str  # empty without payments
    amount_due: str
    pay_by: str  # the day payment is asked by now (a reminder may have moved it)


def _amount(value: Decimal, language: str) -> str:
    return format_amount(value, language)


def _decimal_text(value: Decimal, language: str, min_places: int = 0) -> str:
    """A quantity or unit price without noise: 31.000 -> "31", 9.64520 -> "9,6452"."""
    text = f"{value.normalize():f}"
    whole, _, frac = text.partition(".")
    frac = frac.ljust(min_places, "0")
    if len(whole.lstrip("-")) > 3:
        digits = whole.lstrip("-")
        groups = [digits[max(i - 3, 0) : i] for i in range(len(digits), 0, -3)][::-1]
        sep = "\u00a0" if language == "sv" else ","
        whole = ("-" if whole.startswith("-") else "") + sep.join(groups)
    if not frac:
        return whole
    return f"{whole}{',' if language == 'sv' else '.'}{frac}"


def _date(value: date | None) -> str:
    # ISO 8601 (2026-11-01) is how Swedish invoices write dates, and it is unambiguous in
    # English too.
    return value.isoformat() if value else ""


def _span(start: date | None, end: date | None) -> str:
    if start is None:
        return ""
    if end is None or end == start:
        return _date(start)
    return f"{_date(start)} – {_date(end)}"


def _rate(rate: Decimal, language: str) -> str:
    return f"{_decimal_text(rate * 100, language)}\u00a0%"


def _quantity(line: InvoiceLine, language: str) -> str:
    count = _decimal_text(line.quantity, language)
    unit = line.unit
    if unit == "day":
        label = npgettext("pdf unit", "day", "days", int(line.quantity))
    elif unit == "":
        label = pgettext("pdf unit", "pcs")
    else:  # GB, MB, min, sms read the same in Swedish and English
        label = unit
    return f"{count}\u00a0{label}"


def _pdf_line(line: InvoiceLine, language: str, group_period: str) -> PdfLine:
    text = line.text(language)
    period = _span(line.service_from, line.service_to)
    return PdfLine(
        title=text["title"],
        detail=text["detail"],
        period="" if period == group_period else period,
        quantity=_quantity(line, language),
        unit_price=_decimal_text(line.unit_price, language, min_places=2)
        if line.unit_price
        else "",
        vat_rate=_rate(line.vat_rate, language),
        amount=_amount(line.amount, language),
    )


Headings = dict[int | None, tuple[str, str]]


def page_group_headings(page_groups: object) -> Headings:
    """Heading and sub-heading of each subscription as the page's context words them."""
    headings: Headings = {}
    for group in page_groups if isinstance(page_groups, list) else []:
        if isinstance(group, dict) and "heading" in group:
            headings[group.get("id")] = (group["heading"], group.get("subheading", ""))
    return headings


def _groups(
    invoice: Invoice, lines: list[InvoiceLine], language: str, headings: Headings
) -> list[PdfGroup]:
    """Lines per subscription, in the order of the issue-time snapshot; the rounding line is
    left out (the totals show it as öresavrundning)."""
    snapshots = {s["id"]: s for s in invoice.subscriptions}
    by_sub: dict[int | None, list[InvoiceLine]] = {}
    for line in lines:
        if line.kind == "rounding":
            continue
        key = line.subscription_id if line.subscription_id in snapshots else None
        by_sub.setdefault(key, []).append(line)
    order = [s["id"] for s in invoice.subscriptions if s["id"] in by_sub]
    if None in by_sub:
        order.append(None)
    groups = []
    for key in order:
        sub_lines = by_sub[key]
        if key in headings:
            heading, subheading = headings[key]
        elif key is None:
            heading, subheading = pgettext("pdf", "Other charges"), ""
        else:
            heading, subheading = subscription_heading(snapshots[key])
        fee = next((line for line in sub_lines if line.kind == "fee"), None)
        period = _span(fee.service_from, fee.service_to) if fee else ""
        groups.append(
            PdfGroup(
                heading=heading,
                subheading=subheading,
                period=period,
                lines=[_pdf_line(line, language, period) for line in sub_lines],
                subtotal=_amount(sum((line.amount for line in sub_lines), ZERO), language),
            )
        )
    return groups


def _vat_rows(invoice: Invoice, language: str) -> list[PdfVatRow]:
    rows = []
    for row in invoice.vat_summary:
        base, vat = Decimal(row["base"]), Decimal(row["vat"])
        rows.append(
            PdfVatRow(
                rate=_rate(Decimal(row["rate"]), language),
                base=_amount(base, language),
                vat=_amount(vat, language),
                gross=_amount(base + vat, language),
            )
        )
    return rows


def invoice_pdf_document(
    invoice: Invoice,
    lines: list[InvoiceLine],
    language: str,
    headings: Headings | None = None,
    credit_left: Decimal = ZERO,
) -> PdfDocument:
    """Everything the PDF prints beyond the page context, formatted for ``language``;
    ``headings`` name the subscriptions (see ``page_group_headings``), ``credit_left`` is
    the customer's credit balance (the page context's). Call inside
    ``translation.override(language)``."""
    credited = invoice.credited_invoice
    from_credit = ZERO if invoice.is_credit_note else invoice_credit_at_issue(invoice.id)
    return PdfDocument(
        is_credit_note=invoice.is_credit_note,
        title=pgettext("pdf", "Credit note")
        if invoice.is_credit_note
        else pgettext("pdf", "Invoice"),
        number=invoice.display_number,
        invoice_date=_date(invoice.invoice_date),
        due_date=_date(invoice.due_date),
        period=_span(invoice.period_start, invoice.period_end),
        ocr=invoice.ocr or "",
        groups=_groups(invoice, lines, language, headings or {}),
        vat_rows=_vat_rows(invoice, language),
        net_total=_amount(invoice.net_total, language),
        vat_total=_amount(invoice.vat_total, language),
        rounding=_amount(invoice.rounding, language) if invoice.rounding else "",
        total=_amount(invoice.total, language),
        from_credit=_amount(from_credit, language) if from_credit else "",
        to_pay=_amount(invoice.total - from_credit, language),
        credit_left=_amount(credit_left, language) if from_credit or credit_left else "",
        credited_number=credited.display_number if credited else "",
        credited_date=_date(credited.invoice_date) if credited else "",
        credit_reason=invoice.credit_reason,
    )


# --- rendering -------------------------------------------------------------------------


def _local_roots() -> list[Path]:
    roots = [Path(settings.BASE_DIR) / "templates", *map(Path, settings.STATICFILES_DIRS)]
    return [root.resolve() for root in roots]


@functools.cache
def _fetcher() -> Any:
    """A WeasyPrint URL fetcher that loads ``data:`` URLs and the project's own files, and
    refuses everything else (http, https, ftp, files outside the project).

    One per process: building a fetcher builds an SSL context (~40 ms), and fetching data
    and file URLs keeps no per-request state in it.
    """
    from weasyprint import URLFetcher

    roots = _local_roots()

    class LocalOnlyFetcher(URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> Any:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            if scheme == "file":
                path = Path(unquote(parts.path)).resolve()
                if not any(path.is_relative_to(root) for root in roots):
                    raise ValueError(f"PDF rendering reads no file outside the project: {url}")
            elif scheme != "data":
                raise ValueError(f"PDF rendering fetches nothing from the network: {url}")
            return super().fetch(url, headers)

    return LocalOnlyFetcher(allowed_protocols=("data", "file"))


def pdf_template(template_version: int) -> PdfTemplate:
    try:
        return PDF_TEMPLATES[template_version]
    except KeyError:
        raise DomainError(
            code="pdf_template_unknown",
            message=f"No PDF template for template version {template_version}.",
        ) from None


@functools.cache
def _stylesheet(name: str) -> Any:
    """A template version's style sheet, parsed once per process: parsing it on every
    render costs WeasyPrint about a tenth of a two-page render. (A changed style sheet
    therefore needs a restart, also under DEBUG.)"""
    from weasyprint import CSS

    return CSS(string=render_to_string(name), base_url=_base_url(), url_fetcher=_fetcher())


def _base_url() -> str:
    return (Path(settings.BASE_DIR) / "templates").resolve().as_uri() + "/"


# The page's charts put a white halo behind their figures with SVG ``paint-order``, which
# WeasyPrint does not implement: it strokes after filling and the halo hides the figure.
_SVG_HALO = re.compile(r'\s+stroke="#fff(?:fff)?"\s+stroke-width="[\d.]+"\s+paint-order="stroke"')


def _without_svg_halo(svg: str) -> SafeString:
    # Safe: the page marked the markup safe; removing attributes adds nothing to it.
    return mark_safe(_SVG_HALO.sub("", svg))


def _pdf_chart(chart: object) -> dict[str, str] | None:
    """The page's usage chart for print, or None while it has a single month (on paper
    that is a lone bar that says nothing)."""
    if not isinstance(chart, dict) or not chart.get("svg") or chart.get("months", 0) < 2:
        return None
    return {"title": chart.get("title", ""), "svg": _without_svg_halo(chart["svg"])}


def _pdf_claim(invoice: Invoice, context: dict[str, Any], due_date: date) -> PdfClaim | None:
    charges = context.get("charges") or []
    if not charges:
        return None
    summary = context["summary"]
    language = context["language"]
    credited, paid = summary["credited_value"], summary["paid_value"]
    return PdfClaim(
        charges=[
            PdfCharge(
                title=c["title"],
                detail=c["detail"],
                date=_date(c.get("charged_on")),
                amount=_amount(c["amount_value"], language),
            )
            for c in charges
        ],
        charges_total=_amount(sum((c["amount_value"] for c in charges), ZERO), language),
        credited=_amount(credited, language) if credited else "",
        paid=_amount(paid, language) if paid > 0 else "",
        amount_due=_amount(summary["amount_due_value"] or ZERO, language),
        pay_by=_date(due_date),
    )


def invoice_pdf_html(invoice: Invoice, *, due_date: date | None = None) -> str:
    """The HTML of the PDF, in the invoice's language, from the page's context.

    ``due_date``: the day payment is asked by now, when a reminder or a postponement moved
    it; printed with the fees and interest added since the due date, if there are any."""
    language = invoice.language
    with translation.override(language):
        # The invoice date as "today": a stored PDF must not say "due in 12 days" forever.
        context = invoice_page_context(
            invoice, language, today=invoice.invoice_date, due_date=due_date
        )
        context["claim"] = _pdf_claim(invoice, context, due_date or invoice.due_date)
        context["pdf"] = invoice_pdf_document(
            invoice,
            list(context["lines"]),
            language,
            page_group_headings(context.get("groups")),
            (context.get("credit_balance") or {}).get("left_value", ZERO),
        )
        context["pdf_chart"] = _pdf_chart(context.get("chart"))
        return render_to_string(pdf_template(invoice.template_version).html, context)


def pdf_from_html(html: str, *, template_version: int) -> bytes:
    """HTML to an A4 PDF with WeasyPrint and the version's style sheet, without network
    access."""
    from weasyprint import HTML

    stylesheet = _stylesheet(pdf_template(template_version).css)
    document = HTML(string=html, base_url=_base_url(), url_fetcher=_fetcher())
    return document.write_pdf(stylesheets=[stylesheet])


def invoice_pdf_render(invoice: Invoice, *, due_date: date | None = None) -> bytes:
    html = invoice_pdf_html(invoice, due_date=due_date)
    return pdf_from_html(html, template_version=invoice.template_version)


def _stored(invoice: Invoice) -> FieldFile | None:
    """The invoice's stored PDF if it is still in storage (a lost file is rendered again)."""
    name = invoice.pdf.name
    if name and invoice.pdf.storage.exists(name):
        return invoice.pdf
    return None


def invoice_pdf_ensure(*, invoice_id: int, due_date: date | None = None) -> FieldFile:
    """The stored PDF of an invoice, rendered on first need, and only once (``due_date`` as
    for ``invoice_pdf_html``; what changes it discards the stored file, see
    ``invoice_pdf_discard``).

    The common case (already stored) takes no lock. Otherwise the renderer holds the
    invoice's row lock while it renders and saves, and checks again once it holds it, so a
    second caller waits for the first and then finds the file:

    - PostgreSQL: ``select_for_update`` blocks the second caller on the row until the first
      commits.
    - SQLite: ``select_for_update`` is a no-op, but settings open every transaction with
      ``BEGIN IMMEDIATE`` (``transaction_mode``), which takes the database's write lock at
      the start, so the second ``atomic()`` waits (busy timeout) until the first commits.

    A file written by a transaction that then rolls back stays in storage unreferenced; the
    next render writes a new one under a fresh name.
    """
    invoice = Invoice.objects.only("id", "pdf").get(id=invoice_id)
    if stored := _stored(invoice):
        return stored
    with transaction.atomic():
        invoice = (
            Invoice.objects.select_for_update(of=("self",))
            .select_related("series", "credited_invoice__series")
            .get(id=invoice_id)
        )
        if stored := _stored(invoice):
            return stored
        content = ContentFile(invoice_pdf_render(invoice, due_date=due_date))
        invoice.pdf.save(f"{invoice.kind}-{invoice.id}.pdf", content, save=False)
        invoice.save(update_fields=["pdf"])
        return invoice.pdf


@dataclass(frozen=True)
class PdfBatch:
    rendered: int
    last_id: int  # the cursor for the next batch (0 when the run has no more)
    seconds: float


def invoice_pdfs_render_batch(*, bill_run_id: int, after_id: int, size: int) -> PdfBatch:
    """Render the PDFs of the run's next ``size`` invoices (by id, after ``after_id``) that have
    none yet; one already stored (opened first, or rendered before) is skipped."""
    started = time.monotonic()
    ids = list(
        Invoice.objects.filter(bill_run_id=bill_run_id, id__gt=after_id, pdf="")
        .order_by("id")
        .values_list("id", flat=True)[:size]
    )
    for invoice_id in ids:
        invoice_pdf_ensure(invoice_id=invoice_id)
    return PdfBatch(
        rendered=len(ids), last_id=ids[-1] if ids else 0, seconds=time.monotonic() - started
    )


def invoice_pdf_discard(*, invoice_id: int) -> None:
    """Forget the stored PDF: fees or interest were added, or the day payment is asked by
    moved, so the next request renders the PDF again with them. The old file stays in
    storage, unreferenced (what was sent before remains as it was)."""
    Invoice.objects.filter(id=invoice_id).exclude(pdf="").update(pdf="")
