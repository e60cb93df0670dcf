"""The customer's invoice page and PDF, opened from a capability link without login."""

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST, require_safe

from chat.panel import chat_panel_html
from core.errors import DomainError
from dunning.page import plan_next_payment, ways_out_section_html
from dunning.selectors import WaysOut, invoice_debt, invoice_due_date_now, ways_out_read
from invoices import guard
from invoices.card_gateway import card_payments_enabled
from invoices.models import CardPaymentStatus, Invoice
from invoices.page import invoice_page_html, invoice_summary_html, today_in_stockholm
from invoices.selectors import invoice_link_lookup
from invoices.services.card_payments import card_payment_start
from invoices.services.page_events import page_event_record_open, page_event_record_pdf
from invoices.services.pdf import invoice_pdf_ensure
from offers.page import offers_section_html

View = Callable[..., HttpResponseBase]


# At most our origin in a Referer, never the path with the link's token; "no-referrer" would
# make browsers send "Origin: null" with the page's form POSTs, which CSRF checks refuse.
REFERRER_POLICY = "strict-origin"


def private_headers(response: HttpResponseBase) -> HttpResponseBase:
    """What every page opened from a customer's link sends: not stored, not indexed, and no
    path in a Referer (the path carries the link) to anything it links to."""
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = REFERRER_POLICY
    return response


def page_language(request: HttpRequest, default: str | None) -> str:
    """``?lang=`` when it names a language the pages offer, else ``default`` (the invoice's
    or the customer's language), else the site's."""
    codes = {code for code, _ in settings.LANGUAGES}
    asked = request.GET.get("lang", "")
    if asked in codes:
        return asked
    return default or settings.LANGUAGE_CODE


def with_invoice(view: View) -> View:
    """Resolve ``token`` to its invoice, or answer the same friendly 404 for every miss.

    The view is called as ``view(request, invoice, language, **other_url_kwargs)``. An
    ``Http404`` it raises (an offer or subscription id that is not this customer's) gets the
    same friendly 404 as an unknown link.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, token: str, **kwargs: object) -> HttpResponseBase:
        if guard.guesses_exhausted(request):
            return not_found(request, status=429)
        lookup = invoice_link_lookup(token)
        if lookup.link is None:
            if not lookup.known:  # an old link from an e-mail is no guess
                guard.record_miss(request)
            return not_found(request, status=404)
        invoice = lookup.link.invoice
        language = page_language(request, invoice.language)
        with translation.override(language):
            try:
                response = view(request, invoice, language, **kwargs)
            except Http404:
                return not_found(request, status=404)
            return private_headers(response)

    return wrapper


def relative_url(request: HttpRequest, target: str) -> str:
    """``target`` (an absolute path) relative to the page being answered: the pages under a
    link never write its token."""
    start = request.path if request.path.endswith("/") else posixpath.dirname(request.path)
    relative = posixpath.relpath(target, start)
    if relative == ".":
        return "./"
    return f"{relative}/" if target.endswith("/") else relative


def invoice_url(
    request: HttpRequest, language: str, name: str = "invoices:page", **kwargs: Any
) -> str:
    """A page of this invoice link (``name``, a URL name under ``/i/<token>/``), relative to
    the current one, in ``language``."""
    token = request.resolver_match.kwargs["token"] if request.resolver_match else ""
    target = relative_url(request, reverse(name, kwargs={"token": token, **kwargs}))
    return f"{target}?lang={language}"


def link_page(
    request: HttpRequest,
    invoice: Invoice,
    language: str,
    template: str,
    context: dict[str, Any],
    *,
    back_to: str,
    status: int = 200,
) -> HttpResponse:
    """A page under the invoice link (the plan pages, the ways out), in ``language``, with
    the seller's name and a way back to the invoice page's part ``back_to`` (its id)."""
    return render(
        request,
        template,
        {
            "language": language,
            "seller": invoice.seller,
            "back_url": invoice_url(request, language) + f"#{back_to}",
            **context,
        },
        status=status,
    )


def not_found(request: HttpRequest, *, status: int) -> HttpResponseBase:
    with translation.override(page_language(request, None)):
        response = render(request, "invoices/not_found.html", {"status": status}, status=status)
    if status == 429:
        response["Retry-After"] = str(settings.INVOICE_LINK_GUESS_WINDOW_SECONDS)
    return private_headers(response)


@dataclass(frozen=True)
class _AskedNow:
    """What the page asks for now: the day (the invoice's, or later when a reminder or a
    postponement moved it) and, while an instalment plan runs, its next part."""

    due_date: date | None
    pay_now: Decimal | None
    ways: WaysOut | None  # the ways out as they stand (none on an invoice with nothing owed)


def _asked_now(invoice: Invoice) -> _AskedNow:
    debt = invoice_debt(invoice_id=invoice.id)
    if debt is None:
        return _AskedNow(due_date=None, pay_now=None, ways=None)
    ways = ways_out_read(debt=debt, today=today_in_stockholm(), by_agent=False)
    part = plan_next_payment(ways)
    if part is not None:
        return _AskedNow(due_date=part.due_date, pay_now=part.amount, ways=ways)
    return _AskedNow(due_date=debt.moved_due_date, pay_now=None, ways=ways)


@require_safe
@with_invoice
def invoice_page(request: HttpRequest, invoice: Invoice, language: str) -> HttpResponse:
    if request.method == "GET":
        page_event_record_open(invoice=invoice)
    # The document is rendered once per invoice revision and kept in the cache
    # (invoices.page); the offers part changes with offers and consent, not with the invoice,
    # and carries a CSRF token, so it is rendered for each request (two queries). So is the
    # chat panel, with the current conversation (two queries; a third with ?ask=<line>), and
    # the ways out of an unpaid invoice ("Need more time?": what is owed and the day payment
    # is asked by now, which a reminder or a postponement may have moved, in one query; the
    # policy in another; what stands, only when something does).
    offers = chat = ways_out = ""
    due_date = pay_now = None
    if not invoice.is_credit_note:
        asked = _asked_now(invoice)
        due_date, pay_now = asked.due_date, asked.pay_now
        if asked.ways is not None:
            ways_out = ways_out_section_html(request, asked.ways, language)
        offers = offers_section_html(
            request, invoice, language, record_exposure=request.method == "GET"
        )
        chat = chat_panel_html(
            request,
            invoice,
            language,
            ask=request.GET.get("ask"),
            error=request.GET.get("chat_error"),
            rating_error=request.GET.get("rating_error"),
        )
    if card_payments_enabled():
        get_token(request)  # the card form (in the cached document) posts with the cookie's token
    return HttpResponse(
        invoice_page_html(
            invoice,
            language,
            offers_html=offers,
            chat_html=chat,
            ways_out_html=ways_out,
            due_date=due_date,
            pay_now=pay_now,
        )
    )


@require_safe
@with_invoice
def invoice_summary(request: HttpRequest, invoice: Invoice, language: str) -> HttpResponse:
    """The payment summary alone, for an open page that heard a payment was booked (no page
    event: it is the same visit)."""
    if invoice.is_credit_note:
        raise Http404
    asked = _asked_now(invoice)
    return HttpResponse(
        invoice_summary_html(invoice, language, due_date=asked.due_date, pay_now=asked.pay_now)
    )


def _card_refusal_text(code: str) -> str:
    """The customer's words for why a card payment could not start (or was declined)."""
    if code == "card_payment_unavailable":
        return _("Card payment is not available right now. Please try again in a moment.")
    if code in {"invoice_not_payable", "card_payments_off"}:
        return _("There is nothing to pay by card on this invoice.")
    if code == "card_amount_too_small":
        return _("The amount is too small to pay by card. Please pay by bankgiro.")
    if code in {"expired_card", "incorrect_cvc", "incorrect_number", "invalid_expiry_year"}:
        return _("Check the card details and try again.")
    if code in {"insufficient_funds", "card_velocity_exceeded"}:
        return _("The card was declined: there is not enough money on it.")
    return _("The card payment did not go through. Try again or use another card.")


@with_invoice
@require_POST
def card_payment_post(request: HttpRequest, invoice: Invoice, language: str) -> JsonResponse:
    """Pay what is open by card: ``token`` is the card as Stripe.js tokenised it. Answers JSON
    to the page's script (the card form exists only with script): the attempt's ``status``,
    the PaymentIntent's ``client_secret`` while the bank asks the card holder to confirm, and
    the customer's words when it was declined or could not start. Safe to repeat: a second
    post while the first is under way gets the same attempt (``card_payment_start``)."""
    try:
        started = card_payment_start(
            invoice_id=invoice.id, card_token=request.POST.get("token", "")
        )
    except DomainError as error:
        status = 503 if error.code == "card_payment_unavailable" else 409
        return JsonResponse(
            {"code": error.code, "message": _card_refusal_text(error.code)}, status=status
        )
    attempt = started.attempt
    answer: dict[str, str] = {"status": attempt.status}
    if started.client_secret:
        answer["client_secret"] = started.client_secret
    if attempt.status == CardPaymentStatus.FAILED:
        answer["code"] = attempt.failure_code
        answer["message"] = _card_refusal_text(attempt.failure_code)
    return JsonResponse(answer)


@require_GET  # not HEAD: a link scanner's HEAD must neither render nor count as a download
@with_invoice
def invoice_pdf(request: HttpRequest, invoice: Invoice, language: str) -> FileResponse:
    due_date = None if invoice.is_credit_note else invoice_due_date_now(invoice_id=invoice.id)
    stored = invoice_pdf_ensure(invoice_id=invoice.id, due_date=due_date)
    page_event_record_pdf(invoice=invoice)
    return FileResponse(
        stored.open("rb"),
        content_type="application/pdf",
        filename=f"faktura-{invoice.display_number}.pdf"
        if language == "sv"
        else f"invoice-{invoice.display_number}.pdf",
    )
