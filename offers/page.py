"""What the customer sees of offers and plan changes: the offers part of the invoice page,
the plan list, and the words and figures of a change before and after it is confirmed.

``offers_section_html`` is rendered for every request of the invoice page, outside the cached
document (``invoices.page.OFFERS_SLOT``): offers and consent change without a new invoice
revision, and its forms carry a CSRF token. It costs two queries, whatever the number of
subscriptions and offers (pinned by tests/invoices/test_page.py):

1. whether the customer's consent to offers from their usage is in force;
2. the open offers shown to this customer (treatment group, still valid, for subscriptions
   on this invoice, with no change of the subscription pending), with their plans and
   subscriptions and whether their exposure is recorded yet.

The first time an offer is shown, its exposure is recorded (``offers_record_shown``: two
more queries, once). Links are relative to the invoice page (``/i/<token>/``) and carry the
page language, so no token is ever written into the page.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing.models import (
    Consent,
    ConsentKind,
    Plan,
    PlanChange,
    PlanChangeStatus,
    Subscription,
    SubscriptionStatus,
)
from billing.services import (
    ChangeTiming,
    PlanChangeQuote,
    binding_months_default,
    binding_months_options,
    plan_change_quote,
)
from core.errors import DomainError
from core.money import format_amount, quantize_ore
from invoices.models import Invoice
from invoices.page import long_date, subscription_heading, today_in_stockholm
from invoices.services.corrections import Correction
from invoices.texts import format_value
from offers.models import CampaignKind, Group, Offer, OfferEvent, OfferEventKind, OfferStatus
from offers.services import offers_record_shown, offers_section_version

SECTION_ID = "offers"
# When two campaigns offer the same plan at the same price for one subscription, the page
# shows one of them: the one whose reason says most (the end of the binding period names
# the date and what happens after it).
_CAMPAIGN_PRIORITY: dict[str, int] = {
    CampaignKind.END_OF_BINDING: 0,
    CampaignKind.RIGHT_SIZE: 1,
    CampaignKind.LOYALTY_PARITY: 2,
    CampaignKind.CUSTOM: 3,
}


# --- words and figures ------------------------------------------------------------------


def kr(amount: Decimal, language: str) -> str:
    """'199 kr', '1 299 kr', '99,50 kr': prices and savings as people say them, whole kronor
    without decimals (non-breaking spaces, so an amount never wraps)."""
    text = format_amount(quantize_ore(amount), language)
    if amount == amount.to_integral_value():
        text = text.rsplit("," if language == "sv" else ".", 1)[0]
    return f"{text}\u00a0kr"


def signed_kr(amount: Decimal, language: str) -> str:
    """'+100 kr', '−100 kr' (a minus sign, read as "minus"), '0 kr'."""
    if amount > 0:
        return f"+{kr(amount, language)}"
    if amount < 0:
        return f"\u2212{kr(-amount, language)}"
    return kr(amount, language)


def per_month(amount: Decimal, language: str) -> str:
    return _("%(amount)s a month") % {"amount": kr(amount, language)}


def price_change_text(from_price: Decimal, to_price: Decimal, language: str) -> str:
    """The difference in the monthly price, said plainly before any click."""
    difference = to_price - from_price
    if difference > 0:
        return _("You pay %(amount)s more a month.") % {"amount": kr(difference, language)}
    if difference < 0:
        return _("You pay %(amount)s less a month.") % {"amount": kr(-difference, language)}
    return _("Your monthly price stays the same.")


def allowances(plan: Plan, language: str) -> list[str]:
    """What a plan includes, in the customer's words: '10 GB data', 'Unlimited calls'."""
    items = []
    if plan.data_included_gb is None:
        items.append(_("Unlimited data"))
    else:
        items.append(_("%(gb)s GB data") % {"gb": format_value(plan.data_included_gb, language)})
    if plan.kind == "mobile":
        if plan.voice_included_minutes is None:
            items.append(_("Unlimited calls"))
        else:
            items.append(_("%(minutes)s min of calls") % {"minutes": plan.voice_included_minutes})
        if plan.sms_included is None:
            items.append(_("Unlimited texts"))
        else:
            items.append(_("%(count)s texts") % {"count": plan.sms_included})
    return items


def link(path: str, language: str, fragment: str = "") -> str:
    """A link relative to the page it is on, in the page's language."""
    return f"{path}?lang={language}{fragment}"


# --- the offers part of the invoice page ------------------------------------------------


@dataclass(frozen=True)
class _Shown:
    offer: Offer
    snapshot: dict[str, Any]
    position: int  # the subscription's place on the invoice


# The offers part is kept in the cache for a while per customer, invoice, language and day,
# with two holes filled per request: the CSRF token and any flash message. What the customer
# does on these pages forgets it at once (``offers_section_forget``); offers computed in the
# background show within SECTION_TTL.
SECTION_TTL = 5 * 60
_CSRF_HOLE = "@@csrf-token@@"
_FLASH_HOLE = "<!-- flash -->"


def offers_section_html(
    request: HttpRequest, invoice: Invoice, language: str, *, record_exposure: bool
) -> str:
    """The offers part of ``invoice``'s page for this request (see the module doc)."""
    today = today_in_stockholm()
    version = offers_section_version(invoice.customer_id)
    key = f"offers-section:{invoice.customer_id}:{version}:{invoice.id}:{language}:{today}"
    # Only a GET renders for the cache: it is also what records the offers' exposure.
    html = cache.get(key) if record_exposure else None
    if html is None:
        html = _render_section(invoice, language, today, record_exposure=record_exposure)
        if record_exposure:
            cache.set(key, html, SECTION_TTL)
    flash = ""
    if messages.get_messages(request):
        flash = render_to_string("offers/messages.html", request=request)
    return html.replace(_CSRF_HOLE, get_token(request)).replace(_FLASH_HOLE, flash)


def _render_section(invoice: Invoice, language: str, today: date, *, record_exposure: bool) -> str:
    snapshots = {s["id"]: s for s in invoice.subscriptions or []}
    shown, consented_at = _shown_offers(invoice, today)
    if record_exposure:
        offers_record_shown(
            offer_ids=[s.offer.id for s in shown if not s.offer.exposure_recorded],  # type: ignore[attr-defined]
            invoice_id=invoice.id,
        )
    context = {
        "section_id": SECTION_ID,
        "language": language,
        "offers": [offer_card(s.offer, s.snapshot, language, today=today) for s in shown],
        "consented": consented_at is not None,
        "consented_on": long_date(timezone.localdate(consented_at)) if consented_at else "",
        "several_subscriptions": len(snapshots) > 1,
        "plans_url": link("plans/", language),
        "consent_give_url": link("consent/", language),
        "consent_withdraw_url": link("consent/withdraw/", language),
    }
    context.update(csrf_token=_CSRF_HOLE, flash=mark_safe(_FLASH_HOLE))
    return render_to_string("offers/section.html", context)


def offer_cards_shown(
    invoice: Invoice, language: str, *, today: date | None = None
) -> list[dict[str, Any]]:
    """The offers ``invoice``'s page shows its customer now, as the page's cards (the agent
    console shows them beside a chat). Records no exposure: only the customer's own view
    counts as shown. Two queries. Call with ``language`` active."""
    today = today or today_in_stockholm()
    shown, _consented_at = _shown_offers(invoice, today)
    return [offer_card(s.offer, s.snapshot, language, today=today) for s in shown]


def _shown_offers(invoice: Invoice, today: date) -> tuple[list[_Shown], datetime | None]:
    """The offers the page shows (one per subscription, plan and price, in the invoice's
    order), and when the customer's consent to offers from their usage was given."""
    snapshots = {s["id"]: s for s in invoice.subscriptions or []}
    consented_at = (
        Consent.objects.filter(
            customer_id=invoice.customer_id,
            kind=ConsentKind.PERSONALISED_OFFERS,
            withdrawn_at__isnull=True,
        )
        .values_list("given_at", flat=True)
        .first()
    )
    offers = _open_offers(
        invoice, list(snapshots), personalised=consented_at is not None, today=today
    )
    order = {sub_id: position for position, sub_id in enumerate(snapshots)}
    chosen: dict[tuple[int, int, Decimal], _Shown] = {}
    for offer in sorted(offers, key=lambda o: _CAMPAIGN_PRIORITY.get(o.campaign.kind, 9)):
        sub = offer.subscription
        if (offer.to_plan_id, offer.offered_price) == (sub.plan_id, sub.agreed_monthly_price):
            continue  # what the customer already has (another offer of it was taken)
        key = (offer.subscription_id, offer.to_plan_id, offer.offered_price)
        chosen.setdefault(
            key, _Shown(offer, snapshots[offer.subscription_id], order[offer.subscription_id])
        )
    shown = sorted(chosen.values(), key=lambda s: (s.position, -s.offer.monthly_saving))
    return shown, consented_at


def _open_offers(
    invoice: Invoice, subscription_ids: list[int], *, personalised: bool, today: date
) -> list[Offer]:
    """One query: the offers this customer may be shown on this invoice now."""
    if not subscription_ids:
        return []
    offers = Offer.objects.filter(
        customer_id=invoice.customer_id,
        subscription_id__in=subscription_ids,
        status=OfferStatus.OPEN,
        group=Group.TREATMENT,  # the holdout is measured, never shown
        valid_until__gte=today,
    )
    if not personalised:  # without consent, only offers not computed from usage
        offers = offers.filter(personalised=False)
    pending = PlanChange.objects.filter(
        subscription_id=OuterRef("subscription_id"), status=PlanChangeStatus.SCHEDULED
    )
    recorded = OfferEvent.objects.filter(offer_id=OuterRef("pk"), kind=OfferEventKind.SHOWN)
    return list(
        offers.exclude(Exists(pending))
        .annotate(exposure_recorded=Exists(recorded))
        .select_related("to_plan", "subscription__plan", "campaign")
    )


def offer_card(
    offer: Offer, snapshot: dict[str, Any], language: str, *, today: date | None = None
) -> dict[str, Any]:
    """What one offer says on the page: the plan, why, the price before and after, the
    saving per month and per year, until when, and whether it can be taken now (a cheaper
    plan waits for the end of the binding period)."""
    heading, subheading = subscription_heading(snapshot)
    starts = ""  # a cheaper plan during the binding period starts the day after it
    try:
        plan_change_quote(
            subscription=offer.subscription,
            to_plan=offer.to_plan,
            price=offer.offered_price,
            binding_months=binding_months_default(offer.to_plan),
            today=today or today_in_stockholm(),
        )
    except DomainError as error:
        binding_end = offer.subscription.binding_end
        if error.code == "binding_period_active" and binding_end:
            starts = _("Starts %(date)s, the day after your binding period ends.") % {
                "date": long_date(binding_end + timedelta(days=1))
            }
    now_price = offer.subscription.agreed_monthly_price
    saving = offer.monthly_saving
    amounts = {
        "month": kr(abs(saving), language),
        "year": kr(abs(offer.yearly_saving), language),
    }
    if saving > 0 and offer.personalised:
        saving_text = _("With your usage you save %(month)s a month, %(year)s a year.") % amounts
    elif saving > 0:
        saving_text = _("You save %(month)s a month, %(year)s a year.") % amounts
    elif saving < 0:  # said before any click: the offer costs more
        saving_text = (
            _("With your usage it costs %(month)s more a month, %(year)s a year.") % amounts
        )
    else:
        saving_text = ""
    return {
        "id": offer.id,
        "plan": offer.to_plan.name,
        "for": " · ".join(x for x in (heading, subheading) if x),
        "reason": offer.reason.get(language) or offer.reason.get("en") or "",
        "price": per_month(offer.offered_price, language),
        "price_now": per_month(now_price, language),
        "price_change": signed_kr(offer.offered_price - now_price, language),
        "price_up": offer.offered_price > now_price,
        "saving": saving_text,
        "saving_up": saving < 0,
        "same_plan": offer.to_plan_id == offer.subscription.plan_id,  # a lower price only
        "allowances": allowances(offer.to_plan, language),
        "valid_until": long_date(offer.valid_until),
        "url": link(f"offers/{offer.id}/", language),
        "starts": starts,
    }


# --- the plan list ----------------------------------------------------------------------


def plan_list(invoice: Invoice, language: str, *, today: date | None = None) -> list[dict]:
    """For each active subscription on ``invoice``: the plans for sale of its kind with price
    and allowances, the current one marked, and whether each can be chosen now. Three
    queries."""
    today = today or today_in_stockholm()
    snapshots = {s["id"]: s for s in invoice.subscriptions or []}
    subscriptions = list(
        Subscription.objects.filter(
            id__in=list(snapshots),
            customer_id=invoice.customer_id,
            status=SubscriptionStatus.ACTIVE,
        ).select_related("plan")
    )
    subscriptions.sort(key=lambda s: list(snapshots).index(s.id))
    kinds = {s.plan.kind for s in subscriptions}
    for_sale = list(
        Plan.objects.filter(kind__in=kinds, available_for_new_customers=True).order_by(
            "monthly_fee", "name"
        )
    )
    pending = {
        change.subscription_id: change
        for change in PlanChange.objects.filter(
            subscription__in=subscriptions, status=PlanChangeStatus.SCHEDULED
        ).select_related("to_plan")
    }
    result = []
    for subscription in subscriptions:
        heading, subheading = subscription_heading(snapshots[subscription.id])
        plans = [p for p in for_sale if p.kind == subscription.plan.kind]
        if subscription.plan not in plans:
            plans.insert(0, subscription.plan)
        change = pending.get(subscription.id)
        result.append(
            {
                "id": subscription.id,
                "heading": heading,
                "subheading": subheading,
                "current": _("You have %(plan)s for %(price)s.")
                % {
                    "plan": subscription.plan.name,
                    "price": per_month(subscription.agreed_monthly_price, language),
                },
                "pending": pending_change_text(change, language) if change else "",
                "pending_url": link(f"../changes/{change.id}/", language) if change else "",
                "plans": [
                    _plan_row(subscription, plan, language, today, blocked=change is not None)
                    for plan in plans
                ],
            }
        )
    return result


def _plan_row(
    subscription: Subscription, plan: Plan, language: str, today: date, *, blocked: bool
) -> dict[str, Any]:
    current = plan.id == subscription.plan_id
    row: dict[str, Any] = {
        "id": plan.id,
        "name": plan.name,
        "price": per_month(plan.monthly_fee, language),
        "allowances": allowances(plan, language),
        "current": current,
        "difference": "",
        "choose_url": "",
        "choose_label": "",
        "note": "",
        "binding": "" if current else binding_required_text(plan),
    }
    difference = plan.monthly_fee - subscription.agreed_monthly_price
    if difference:
        row["difference"] = _("%(amount)s a month compared with today") % {
            "amount": signed_kr(difference, language)
        }
    if blocked or (current and plan.monthly_fee >= subscription.agreed_monthly_price):
        return row  # a change is pending; or nothing to choose (never a higher list price)
    try:
        plan_change_quote(
            subscription=subscription,
            to_plan=plan,
            binding_months=binding_months_default(plan),
            today=today,
        )
    except DomainError as error:
        if error.code == "binding_period_active" and subscription.binding_end:
            # can be chosen now, to start the day after the binding period
            row["note"] = _("Starts %(date)s, the day after your binding period ends.") % {
                "date": long_date(subscription.binding_end + timedelta(days=1))
            }
        else:
            if error.code == "plan_not_for_sale":
                row["note"] = _("No longer for sale.")
            return row
    row["choose_url"] = link(f"../change/{subscription.id}/{plan.id}/", language)
    row["binding"] = binding_required_text(plan)
    if current:
        row["choose_label"] = _("Get the price new customers pay")
    else:
        row["choose_label"] = _("Choose %(plan)s") % {"plan": plan.name}
    return row


def pending_change_text(change: PlanChange, language: str) -> str:
    return _("A change to %(plan)s for %(price)s takes effect on %(date)s.") % {
        "plan": change.to_plan.name,
        "price": per_month(change.to_price, language),
        "date": long_date(change.effective_date),
    }


# --- a change, before and after it is confirmed --------------------------------------------


def binding_text(
    from_binding_end: date | None, to_binding_end: date | None, *, adds_binding: bool
) -> str:
    if adds_binding and to_binding_end:
        return _("New binding period until %(date)s.") % {"date": long_date(to_binding_end)}
    if to_binding_end:
        return _("Your binding period until %(date)s stays as it is.") % {
            "date": long_date(to_binding_end)
        }
    return _("No binding period: you can change or cancel with one month's notice.")


def binding_option_label(months: int) -> str:
    """One binding period the customer can choose: 'No binding period', '12 months'."""
    if not months:
        return _("No binding period")
    return ngettext("%(months)s month", "%(months)s months", months) % {"months": months}


def binding_required_text(plan: Plan) -> str:
    """For a plan sold only with a binding period: 'With 12 or 24 months' binding period.'
    Empty when it can be had without one."""
    options = binding_months_options(plan)
    if not options or 0 in options:
        return ""
    months = str(options[-1])
    if len(options) > 1:
        months = _("%(months)s or %(last)s") % {
            "months": ", ".join(str(m) for m in options[:-1]),
            "last": options[-1],
        }
    return ngettext(
        "With %(months)s month's binding period.",
        "With %(months)s months' binding period.",
        options[-1],
    ) % {"months": months}


def quote_summary(quote: PlanChangeQuote, language: str) -> dict[str, Any]:
    """What a change would do, for the confirmation page."""
    subscription = quote.subscription
    return {
        "from_plan": subscription.plan.name,
        "from_price": per_month(quote.from_price, language),
        "from_allowances": allowances(subscription.plan, language),
        "to_plan": quote.to_plan.name,
        "to_price": per_month(quote.to_price, language),
        "to_allowances": allowances(quote.to_plan, language),
        "difference": signed_kr(quote.price_difference, language),
        "difference_text": price_change_text(quote.from_price, quote.to_price, language),
        "price_up": quote.raises_price,
        "price_down": quote.price_difference < 0,
        "binding": binding_text(
            quote.from_binding_end, quote.to_binding_end, adds_binding=quote.adds_binding
        ),
        "adds_binding": quote.adds_binding,
        "cooling_off_until": long_date(quote.cooling_off_until),
        "needs_code": quote.needs_confirmation_code,
    }


def timing_label(timing: ChangeTiming, quote: PlanChangeQuote) -> str:
    """When a change takes effect; with the binding end it then gives, where it adds one (the
    end depends on the day it starts)."""
    label = _timing_label(timing, quote)
    if quote.adds_binding and quote.to_binding_end:
        label += " " + _("(binding period until %(date)s)") % {
            "date": long_date(quote.to_binding_end)
        }
    return label


def _timing_label(timing: ChangeTiming, quote: PlanChangeQuote) -> str:
    if timing == ChangeTiming.AFTER_BINDING:
        return _("From %(date)s, the day after your binding period ends") % {
            "date": long_date(quote.effective_date)
        }
    if timing == ChangeTiming.NOW:
        return _("Today, %(date)s, with the rest of this month charged by day") % {
            "date": long_date(quote.effective_date)
        }
    return _("From %(date)s, when your next period starts") % {
        "date": long_date(quote.effective_date)
    }


def correction_text(correction: Correction, language: str) -> str:
    """What an undo did to a month already invoiced, in the customer's words."""
    if correction.credit_note is not None:
        return _(
            "Invoice %(number)s included days of the change, so we have credited %(amount)s "
            "(credit note %(note)s)."
        ) % {
            "number": correction.invoice.display_number,
            "amount": kr(-correction.amount, language),
            "note": correction.credit_note.display_number,
        }
    return _(
        "Invoice %(number)s charged less for the days of the change, so the difference of "
        "%(amount)s is added to your next invoice."
    ) % {"number": correction.invoice.display_number, "amount": kr(correction.amount, language)}


def change_summary(change: PlanChange, language: str, *, today: date) -> dict[str, Any]:
    """What a confirmed change did, for the receipt and the undo page."""
    can_undo = change.status != PlanChangeStatus.UNDONE and today <= change.cooling_off_until
    if change.status == PlanChangeStatus.UNDONE:
        state = "undone"
    elif change.status == PlanChangeStatus.APPLIED:
        state = "applied"
    else:
        state = "scheduled"
    return {
        "id": change.id,
        "state": state,
        "from_plan": change.from_plan.name,
        "from_price": per_month(change.from_price, language),
        "to_plan": change.to_plan.name,
        "to_price": per_month(change.to_price, language),
        "difference": signed_kr(change.to_price - change.from_price, language),
        "difference_text": price_change_text(change.from_price, change.to_price, language),
        "effective_date": long_date(change.effective_date),
        "binding": binding_text(
            change.from_binding_end, change.to_binding_end, adds_binding=change.adds_binding
        ),
        "cooling_off_until": long_date(change.cooling_off_until),
        "can_undo": can_undo,
        "undone_on": long_date(timezone.localdate(change.undone_at)) if change.undone_at else "",
    }
