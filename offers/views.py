"""The customer's plan pages, opened from the invoice link (``/i/<token>/...``), and the undo
link of a receipt (``/u/<undo_token>/``).

Every page resolves its token like the invoice page (``invoices.views.with_invoice``) and
sends the same private headers; an offer, subscription or change id that is not the
invoice customer's answers the same friendly 404 as an unknown link. Every POST is
CSRF-protected and safe to repeat: consent give/withdraw and undo are idempotent, and a
confirmation posts the idempotency key the page was rendered with.

A refusal of the rules (``DomainError``) is shown on the page in the customer's language,
by its code (``ERROR_TEXTS``), never as a server error. Links are relative (no token in any
page) and carry the page language.
"""

import contextlib
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from billing.models import ConsentKind, Plan, PlanChange, PlanChangeStatus, Subscription
from billing.services import (
    ChangeTiming,
    PlanChangeQuote,
    binding_months_default,
    binding_months_options,
    consent_in_force,
    plan_change_get_by_undo_token,
    plan_change_quote,
)
from core.errors import DomainError, refusal_words
from invoices import guard
from invoices.models import Invoice
from invoices.page import long_date, subscription_heading, today_in_stockholm
from invoices.services.corrections import plan_change_undo_and_correct
from invoices.views import (
    invoice_url,
    link_page,
    not_found,
    page_language,
    private_headers,
    with_invoice,
)
from offers.forms import PlanChangeConfirmForm, new_idempotency_key
from offers.models import Group, Offer, OfferEventKind, OfferStatus
from offers.page import (
    SECTION_ID,
    binding_option_label,
    change_summary,
    correction_text,
    kr,
    pending_change_text,
    plan_list,
    quote_summary,
    timing_label,
)
from offers.services import (
    PAGE_SOURCE,
    offer_accept_from_page,
    offer_event_record,
    offers_consent_give,
    offers_consent_withdraw,
    offers_section_forget,
    plan_change_code_send,
    plan_change_request_from_page,
)

# The customer's words for each refusal, by the DomainError's stable code.
ERROR_TEXTS: dict[str, Promise] = {
    "binding_period_active": gettext_lazy(
        "Your binding period runs until %(binding_end)s, so you can move to a cheaper plan "
        "from the day after. A bigger plan is always possible."
    ),
    "change_pending": gettext_lazy(
        "A change of this subscription is already waiting to take effect. Undo it first if "
        "you want another plan."
    ),
    "plan_not_for_sale": gettext_lazy("This plan is no longer for sale."),
    "plan_kind_differs": gettext_lazy("This plan is not for this kind of subscription."),
    "no_change": gettext_lazy("You already have this plan at this price."),
    "binding_not_offered": gettext_lazy("This plan is not offered with that binding period."),
    "subscription_ended": gettext_lazy("This subscription has ended."),
    "immediate_change_not_allowed": gettext_lazy(
        "This change can take effect from your next period, not today."
    ),
    "offer_not_open": gettext_lazy(
        "This offer is no longer valid. See all plans for what you can choose today."
    ),
    "consent_not_in_force": gettext_lazy(
        "This offer was made from your usage, which you no longer let us use for offers. See "
        "all plans for what you can choose today."
    ),
    "confirmation_code_required": gettext_lazy(
        "This change raises your monthly price or adds a binding period, so we confirm it "
        "with a code. Ask for the code first."
    ),
    "code_invalid": gettext_lazy(
        "The code is not right. Check the message we sent you and try again."
    ),
    "code_expired": gettext_lazy(
        "The code has expired or was entered wrong too many times. Ask for a new code."
    ),
    "code_rate_limited": gettext_lazy(
        "We have sent several codes just now. Wait ten minutes and ask for a new one."
    ),
    "no_code_channel": gettext_lazy(
        "We have no phone number or e-mail address to send a code to. Contact customer "
        "support and we will help you change."
    ),
    "cooling_off_expired": gettext_lazy(
        "The cooling-off period ended on %(date)s, so the change can no longer be undone "
        "here. Contact customer support if you need help."
    ),
    "plan_change_not_found": gettext_lazy("We could not find that change."),
}
_CODE_ERRORS = {"code_invalid", "code_expired", "code_rate_limited", "confirmation_code_required"}


def error_text(error: DomainError, **params: str) -> str:
    """The customer's words for ``error`` in the active language."""
    fallback = _("We could not make the change. Try again, or contact customer support.")
    return refusal_words(ERROR_TEXTS, error, fallback=fallback, **params)


def _page(
    request: HttpRequest,
    invoice: Invoice,
    language: str,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> HttpResponse:
    return link_page(
        request, invoice, language, template, context, back_to=SECTION_ID, status=status
    )


# --- consent ------------------------------------------------------------------------------


@with_invoice
@require_POST
def consent_give(request: HttpRequest, invoice: Invoice, language: str) -> HttpResponseBase:
    """ "Use my usage to suggest a better plan": record the consent (source invoice_page)."""
    offers_consent_give(customer_id=invoice.customer_id, source=PAGE_SOURCE)
    offers_section_forget(invoice.customer_id)
    messages.success(
        request,
        _(
            "Thank you. We now suggest plans from how you use your subscription. You can "
            "stop it here at any time."
        ),
    )
    return HttpResponseRedirect(invoice_url(request, language) + f"#{SECTION_ID}")


@with_invoice
@require_POST
def consent_withdraw(request: HttpRequest, invoice: Invoice, language: str) -> HttpResponseBase:
    offers_consent_withdraw(customer_id=invoice.customer_id, source=PAGE_SOURCE)
    offers_section_forget(invoice.customer_id)
    messages.success(
        request,
        _("Done. We no longer use your usage to suggest plans, and those suggestions are gone."),
    )
    return HttpResponseRedirect(invoice_url(request, language) + f"#{SECTION_ID}")


# --- the plan list --------------------------------------------------------------------------


@with_invoice
@require_safe
def plans(request: HttpRequest, invoice: Invoice, language: str) -> HttpResponseBase:
    if invoice.is_credit_note:
        raise Http404
    return _page(
        request,
        invoice,
        language,
        "offers/plans.html",
        {"subscriptions": plan_list(invoice, language)},
    )


# --- confirming a change ----------------------------------------------------------------------


def _subscription_for(invoice: Invoice, subscription_id: int) -> Subscription:
    """The customer's subscription, or the friendly 404."""
    subscription = (
        Subscription.objects.select_related("plan", "customer")
        .filter(id=subscription_id, customer_id=invoice.customer_id)
        .first()
    )
    if subscription is None:
        raise Http404
    return subscription


@with_invoice
@require_http_methods(["GET", "HEAD", "POST"])
def offer_confirm(
    request: HttpRequest, invoice: Invoice, language: str, offer_id: int
) -> HttpResponseBase:
    """The confirmation of an offer shown on the invoice page."""
    offer = (
        Offer.objects.select_related("to_plan", "subscription__plan", "subscription__customer")
        .filter(id=offer_id, customer_id=invoice.customer_id, group=Group.TREATMENT)
        .first()
    )
    if offer is None:  # not this customer's, or in the holdout (never shown): not found
        raise Http404
    if offer.status == OfferStatus.ACCEPTED and offer.plan_change_id:
        return HttpResponseRedirect(
            invoice_url(request, language, "offers:receipt", change_id=offer.plan_change_id)
        )
    refusal = None
    open_ = offer.status == OfferStatus.OPEN and offer.valid_until >= today_in_stockholm()
    # a usage-based offer is only for a customer whose consent is in force
    if not open_ or (offer.personalised and not _consent_in_force(invoice)):
        refusal = error_text(DomainError(code="offer_not_open"))
    elif request.method == "GET":
        offer_event_record(offer_id=offer.id, kind=OfferEventKind.CLICKED, invoice_id=invoice.id)
    return _confirmation(
        request,
        invoice,
        language,
        subscription=offer.subscription,
        to_plan=offer.to_plan,
        offer=offer,
        refusal=refusal,
    )


@with_invoice
@require_http_methods(["GET", "HEAD", "POST"])
def plan_confirm(
    request: HttpRequest, invoice: Invoice, language: str, subscription_id: int, plan_id: int
) -> HttpResponseBase:
    """The confirmation of a plan chosen from the plan list, at its list price."""
    subscription = _subscription_for(invoice, subscription_id)
    to_plan = Plan.objects.filter(id=plan_id, kind=subscription.plan.kind).first()
    if to_plan is None:
        raise Http404
    return _confirmation(
        request, invoice, language, subscription=subscription, to_plan=to_plan, offer=None
    )


def _consent_in_force(invoice: Invoice) -> bool:
    return consent_in_force(customer_id=invoice.customer_id, kind=ConsentKind.PERSONALISED_OFFERS)


def _quote(
    subscription: Subscription,
    to_plan: Plan,
    offer: Offer | None,
    timing: ChangeTiming,
    binding_months: int,
) -> PlanChangeQuote:
    return plan_change_quote(
        subscription=subscription,
        to_plan=to_plan,
        timing=timing,
        price=offer.offered_price if offer else None,
        binding_months=binding_months,
        today=today_in_stockholm(),
    )


BINDING_CHOICE_ID = "binding-choice"


def _binding_months(request: HttpRequest, to_plan: Plan) -> int:
    """The binding period (months) the page is about: the one the form posted, else the one
    the page was asked for (``?binding=12``), when ``to_plan`` is sold with it; otherwise,
    whatever was sent, the plan's default."""
    asked = request.POST.get("binding_months", "") if request.method == "POST" else ""
    if not asked:
        asked = request.GET.get("binding", "")
    try:
        months = int(asked)
    except ValueError:
        return binding_months_default(to_plan)
    return months if months in binding_months_options(to_plan) else binding_months_default(to_plan)


def _binding_choices(
    request: HttpRequest, language: str, to_plan: Plan, chosen: int
) -> list[dict[str, Any]]:
    """The binding periods to choose from, each a link to this page with it (the timing and
    whether a code was sent kept from the query), the chosen one marked; none when the plan
    is sold with only one."""
    options = binding_months_options(to_plan)
    if len(options) < 2:
        return []
    kept: dict[str, str] = {"lang": language}
    if request.GET.get("timing") in {t.value for t in ChangeTiming}:
        kept["timing"] = request.GET["timing"]
    # a code confirms one binding period: "code sent" stays only with the one it was sent for
    sent = {"code": "sent"} if request.GET.get("code") == "sent" else {}
    return [
        {
            "months": months,
            "label": binding_option_label(months),
            "url": "?"
            + urlencode({**kept, **(sent if months == chosen else {}), "binding": months})
            + f"#{BINDING_CHOICE_ID}",
            "current": months == chosen,
        }
        for months in options
    ]


def _confirmation(
    request: HttpRequest,
    invoice: Invoice,
    language: str,
    *,
    subscription: Subscription,
    to_plan: Plan,
    offer: Offer | None,
    refusal: str | None = None,
) -> HttpResponseBase:
    """GET: what the change does, and the form to confirm it. POST ``send_code``: send the
    one-time code, then show the page again with the field for it. POST ``confirm``: make
    the change exactly once and go to its receipt, or show why not on the same page.

    Where the plan is sold with several binding periods the customer chooses one by links
    (``?binding=N``): the choice changes the summary (the binding end, whether a code is
    needed), so the page is rendered again for it, without JavaScript. The form posts it
    back, and the change and its code are for that binding period."""
    heading, subheading = subscription_heading(
        {"label": subscription.label, "identifier": subscription.identifier, "plan_name": ""}
    )
    same_plan = to_plan.id == subscription.plan_id  # a new price for the plan they have
    binding = _binding_months(request, to_plan)
    context: dict[str, Any] = {
        "heading": heading,
        "subheading": subheading,
        "to_plan": to_plan.name,
        "same_plan": same_plan,
        "title": (_("A new price for %(plan)s") if same_plan else _("Change to %(plan)s"))
        % {"plan": to_plan.name},
        "reason": (offer.reason.get(language) or offer.reason.get("en", "")) if offer else "",
        "plans_url": invoice_url(request, language, "offers:plans"),
        "binding_months": binding,
        "binding_choice_id": BINDING_CHOICE_ID,
        "binding_choices": _binding_choices(request, language, to_plan, binding),
        # sold with one binding period only: said as a fact
        "binding_fact": (
            binding_option_label(binding) if binding_months_options(to_plan) == [binding] else ""
        ),
    }
    pending = (
        subscription.plan_changes.filter(status=PlanChangeStatus.SCHEDULED)
        .select_related("to_plan")
        .first()
    )
    quote = None
    # Next period by default; a cheaper plan during the binding period starts after it.
    default_timing = ChangeTiming.NEXT_PERIOD
    if refusal is None:
        try:
            quote = _quote(subscription, to_plan, offer, ChangeTiming.NEXT_PERIOD, binding)
        except DomainError as rule:
            try:
                if rule.code != "binding_period_active":
                    raise
                quote = _quote(subscription, to_plan, offer, ChangeTiming.AFTER_BINDING, binding)
                default_timing = ChangeTiming.AFTER_BINDING
            except DomainError as final:
                refusal = _refusal(final, subscription)
    if quote is not None and pending is not None and refusal is None:
        if request.method == "POST" and pending.to_plan_id == to_plan.id:
            pass  # a second tab confirming the same change: the service returns the first
        else:
            context["pending"] = pending_change_text(pending, language)
            context["pending_url"] = invoice_url(
                request, language, "offers:receipt", change_id=pending.id
            )
            refusal = (
                _("You have already confirmed this change.")
                if pending.to_plan_id == to_plan.id
                else error_text(DomainError(code="change_pending"))
            )
    if quote is None or refusal is not None:
        context.update(refusal=refusal, summary=quote_summary(quote, language) if quote else None)
        return _page(request, invoice, language, "offers/confirm.html", context)

    quote_now = None
    with contextlib.suppress(DomainError):  # not allowed today: only the next period
        quote_now = _quote(subscription, to_plan, offer, ChangeTiming.NOW, binding)
    summary = quote_summary(quote, language)
    context.update(
        summary=summary,
        timings=[
            {"value": timing.value, "label": timing_label(timing, timing_quote)}
            for timing, timing_quote in (
                (default_timing, quote),
                (ChangeTiming.NOW, quote_now),
            )
            if timing_quote is not None
        ],
        code_destination=_masked_destination(subscription),
    )
    status = 200
    error = ""
    code_error = False  # the error is about the code: shown next to its field
    key = new_idempotency_key()
    timing = default_timing
    code_sent = request.GET.get("code") == "sent"
    if request.GET.get("timing") == ChangeTiming.NOW and quote_now:
        timing = ChangeTiming.NOW
    if request.method == "POST":
        form = PlanChangeConfirmForm(request.POST)
        if not form.is_valid():
            error = " ".join(str(e) for errors in form.errors.values() for e in errors)
            status = 400
            code_error = "code" in form.errors
            if "idempotency_key" not in form.errors:  # the same key on the retry
                key = form.cleaned_data["idempotency_key"]
            code_sent = code_sent or bool(request.POST.get("code"))
        else:
            key = form.cleaned_data["idempotency_key"]
            timing = form.cleaned_data["timing"]
            posted_binding = form.cleaned_data["binding_months"]
            if posted_binding is not None and posted_binding != binding:
                # not one the plan is sold with (``binding`` is the posted one when it is)
                error, status = error_text(DomainError(code="binding_not_offered")), 409
            elif timing == ChangeTiming.NOW and quote_now is None:
                error, status = error_text(DomainError(code="immediate_change_not_allowed")), 409
            elif form.cleaned_data["action"] == "send_code":
                try:
                    plan_change_code_send(
                        subscription_id=subscription.id,
                        to_plan_id=to_plan.id,
                        price=quote.to_price,
                        binding_months=binding,
                        language=language,
                    )
                except DomainError as refused:
                    error, code_error = error_text(refused), True
                    status = 429 if refused.code == "code_rate_limited" else 409
                else:
                    sent = {"lang": language, "code": "sent", "timing": timing.value}
                    return HttpResponseRedirect(f"?{urlencode({**sent, 'binding': binding})}")
            else:
                response = _confirm(
                    request,
                    invoice,
                    language,
                    subscription=subscription,
                    offer=offer,
                    to_plan=to_plan,
                    key=key,
                    timing=timing,
                    binding_months=binding,
                    code=form.cleaned_data["code"],
                )
                if isinstance(response, HttpResponseBase):
                    return response
                error, status, code_error = response
                code_sent = code_sent or summary["needs_code"]
    context.update(
        error=error,
        code_error=code_error and summary["needs_code"],
        idempotency_key=key,
        timing=timing.value,
        code_sent=code_sent,
        show_confirm=not summary["needs_code"] or code_sent,
    )
    return _page(request, invoice, language, "offers/confirm.html", context, status=status)


def _confirm(
    request: HttpRequest,
    invoice: Invoice,
    language: str,
    *,
    subscription: Subscription,
    offer: Offer | None,
    to_plan: Plan,
    key: str,
    timing: ChangeTiming,
    binding_months: int,
    code: str,
) -> HttpResponseBase | tuple[str, int, bool]:
    """Make the change: the receipt's redirect, or the refusal's text, status and whether it
    is about the code."""
    # A key only ever names a change of this subscription, whatever a client posts.
    idempotency_key = f"page:{subscription.id}:{key}"
    try:
        if offer is not None:
            result = offer_accept_from_page(
                offer_id=offer.id,
                idempotency_key=idempotency_key,
                timing=timing,
                binding_months=binding_months,
                code=code,
                invoice_id=invoice.id,
                language=language,
            )
        else:
            result = plan_change_request_from_page(
                subscription_id=subscription.id,
                to_plan_id=to_plan.id,
                idempotency_key=idempotency_key,
                timing=timing,
                binding_months=binding_months,
                code=code,
                invoice_id=invoice.id,
                language=language,
            )
    except DomainError as error:
        about_code = error.code in _CODE_ERRORS
        return _refusal(error, subscription), 400 if about_code else 409, about_code
    if result.change.subscription_id != subscription.id:  # cannot happen with the key's prefix
        raise Http404
    offers_section_forget(subscription.customer_id)
    if result.created:
        messages.success(
            request,
            _(
                "Done. We have sent you a receipt with a link to undo the change, valid "
                "until %(date)s."
            )
            % {"date": long_date(result.change.cooling_off_until)},
        )
    return HttpResponseRedirect(
        invoice_url(request, language, "offers:receipt", change_id=result.change.id)
    )


def _refusal(error: DomainError, subscription: Subscription) -> str:
    if error.code == "binding_period_active" and subscription.binding_end:
        return error_text(error, binding_end=long_date(subscription.binding_end))
    return error_text(error)


def _masked_destination(subscription: Subscription) -> str:
    """Where the code goes, shown without giving the whole number or address away."""
    customer = subscription.customer
    if customer.phone:
        digits = customer.phone.replace(" ", "")
        return _("your phone number ending in %(digits)s") % {"digits": digits[-2:]}
    if customer.email:
        name, _at, domain = customer.email.partition("@")
        return _("your e-mail address %(address)s") % {"address": f"{name[:1]}…@{domain}"}
    return ""


# --- the receipt and undo -------------------------------------------------------------------


def _change_for(invoice: Invoice, change_id: int) -> PlanChange:
    change = (
        PlanChange.objects.select_related("from_plan", "to_plan", "subscription")
        .filter(id=change_id, subscription__customer_id=invoice.customer_id)
        .first()
    )
    if change is None:
        raise Http404
    return change


@with_invoice
@require_safe
def receipt(
    request: HttpRequest, invoice: Invoice, language: str, change_id: int
) -> HttpResponseBase:
    """What was changed, from when, and the undo until the cooling-off period ends."""
    change = _change_for(invoice, change_id)
    subscription = change.subscription
    heading, subheading = subscription_heading(
        {"label": subscription.label, "identifier": subscription.identifier, "plan_name": ""}
    )
    return _page(
        request,
        invoice,
        language,
        "offers/receipt.html",
        {
            "heading": heading,
            "subheading": subheading,
            "change": change_summary(change, language, today=today_in_stockholm()),
            "undo_url": invoice_url(request, language, "offers:receipt_undo", change_id=change.id),
        },
    )


@with_invoice
@require_POST
def receipt_undo(
    request: HttpRequest, invoice: Invoice, language: str, change_id: int
) -> HttpResponseBase:
    """Undo from the receipt page (the invoice link names the customer)."""
    change = _change_for(invoice, change_id)
    _undo(request, change_id=change.id, undo_token=None, language=language)
    return HttpResponseRedirect(
        invoice_url(request, language, "offers:receipt", change_id=change.id)
    )


def _undo(
    request: HttpRequest, *, change_id: int | None, undo_token: str | None, language: str
) -> None:
    try:
        undone = plan_change_undo_and_correct(
            change_id=change_id,
            undo_token=undo_token,
            via=PAGE_SOURCE if change_id else "undo_link",
        )
    except DomainError as error:
        date = ""
        if error.code == "cooling_off_expired":
            found = (
                PlanChange.objects.filter(id=change_id).first()
                if change_id
                else plan_change_get_by_undo_token(undo_token or "")
            )
            date = long_date(found.cooling_off_until) if found else ""
        messages.error(request, error_text(error, date=date) if date else error_text(error))
        return
    change = undone.change
    offers_section_forget(change.subscription.customer_id)
    messages.success(
        request,
        _("The change is undone. You keep %(plan)s for %(price)s a month.")
        % {"plan": change.from_plan.name, "price": kr(change.from_price, language)},
    )
    for correction in undone.corrections:
        messages.info(request, correction_text(correction, language))


@require_http_methods(["GET", "HEAD", "POST"])
def undo_by_link(request: HttpRequest, undo_token: str) -> HttpResponseBase:
    """``/u/<undo_token>/`` from the receipt: GET says what will be undone and until when,
    POST undoes it. Unknown tokens count as guesses, like invoice links."""
    if guard.guesses_exhausted(request):
        return not_found(request, status=429)
    change = plan_change_get_by_undo_token(undo_token)
    if change is None:
        guard.record_miss(request)
        language = page_language(request, None)
        with translation.override(language):
            response = render(
                request,
                "offers/undo_not_found.html",
                {"language": language, "seller": settings.SELLER},
                status=404,
            )
        return private_headers(response)
    customer = change.subscription.customer
    codes = {code for code, _name in settings.LANGUAGES}
    language = page_language(request, customer.language if customer.language in codes else None)
    with translation.override(language):
        if request.method == "POST":
            _undo(request, change_id=None, undo_token=undo_token, language=language)
            return private_headers(HttpResponseRedirect(f"./?lang={language}"))
        subscription = change.subscription
        heading, subheading = subscription_heading(
            {"label": subscription.label, "identifier": subscription.identifier, "plan_name": ""}
        )
        response = render(
            request,
            "offers/undo.html",
            {
                "language": language,
                "seller": settings.SELLER,
                "heading": heading,
                "subheading": subheading,
                "change": change_summary(change, language, today=today_in_stockholm()),
            },
        )
    return private_headers(response)
