"""The customer's invoice page and PDF, opened from a capability link without login."""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.http import require_GET, require_safe

from invoices import guard
from invoices.models import Invoice
from invoices.page import invoice_page_html
from invoices.selectors import invoice_link_lookup
from invoices.services.page_events import page_event_record_open, page_event_record_pdf
from invoices.services.pdf import invoice_pdf_ensure

View = Callable[..., HttpResponseBase]


def _private(response: HttpResponseBase) -> HttpResponseBase:
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _page_language(request: HttpRequest, invoice: Invoice | None) -> str:
    codes = {code for code, _ in settings.LANGUAGES}
    asked = request.GET.get("lang", "")
    if asked in codes:
        return asked
    return invoice.language if invoice else settings.LANGUAGE_CODE


def with_invoice(view: Callable[[HttpRequest, Invoice, str], HttpResponseBase]) -> View:
    """Resolve ``token`` to its invoice, or answer the same friendly 404 for every miss."""

    @wraps(view)
    def wrapper(request: HttpRequest, token: str) -> HttpResponseBase:
        if guard.guesses_exhausted(request):
            return _not_found(request, status=429)
        lookup = invoice_link_lookup(token)
        if lookup.link is None:
            if not lookup.known:  # an old link from an e-mail is no guess
                guard.record_miss(request)
            return _not_found(request, status=404)
        invoice = lookup.link.invoice
        language = _page_language(request, invoice)
        with translation.override(language):
            return _private(view(request, invoice, language))

    return wrapper


def _not_found(request: HttpRequest, *, status: int) -> HttpResponseBase:
    with translation.override(_page_language(request, None)):
        response = render(request, "invoices/not_found.html", {"status": status}, status=status)
    if status == 429:
        response["Retry-After"] = str(settings.INVOICE_LINK_GUESS_WINDOW_SECONDS)
    return _private(response)


@require_safe
@with_invoice
def invoice_page(request: HttpRequest, invoice: Invoice, language: str) -> HttpResponse:
    if request.method == "GET":
        page_event_record_open(invoice=invoice)
    # The page is rendered once per invoice revision and kept in the cache (invoices.page).
    return HttpResponse(invoice_page_html(invoice, language))


@require_GET  # not HEAD: a link scanner's HEAD must neither render nor count as a download
@with_invoice
def invoice_pdf(request: HttpRequest, invoice: Invoice, language: str) -> FileResponse:
    stored = invoice_pdf_ensure(invoice_id=invoice.id)
    page_event_record_pdf(invoice=invoice)
    return FileResponse(
        stored.open("rb"),
        content_type="application/pdf",
        filename=f"faktura-{invoice.display_number}.pdf"
        if language == "sv"
        else f"invoice-{invoice.display_number}.pdf",
    )
