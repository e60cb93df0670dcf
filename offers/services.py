"""Offers: compute them from usage, show them, accept them (a plan change), measure them."""

import dataclasses
import hashlib
import time as clock
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import BigIntegerField, DateField, F, Q, QuerySet, Sum
from django.db.models.functions import Cast, Coalesce, Round, TruncMonth, Upper
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext

from billing.models import (
    Consent,
    ConsentKind,
    Customer,
    Plan,
    PlanChange,
    Subscription,
    SubscriptionStatus,
    UsageMonth,
    UsageRecord,
)
from billing.rating import Text
from billing.roaming import EU_EEA_COUNTRIES
from billing.services import (
    ChangeTiming,
    PlanChangeRequested,
    binding_months_default,
    consent_give,
    consent_in_force,
    consent_withdraw,
    plan_change_quote,
    plan_change_request,
)
from core.bulk import insert_rows
from core.errors import DomainError
from core.logging import mask_invoice_tokens
from core.lookups import AnyOf
from core.services import one_time_code_send, one_time_code_verify
from core.sms import sms_backend
from core.webhooks import webhook_event_emit
from invoices.models import OutboundMessage
from invoices.services.delivery import delivery_channels
from invoices.texts import format_value, render_text, text_languages
from offers.engine import MonthUsage, Recommendation, Tariff, ore, recommend
from offers.models import (
    Campaign,
    CampaignAssignment,
    CampaignKind,
    Group,
    Offer,
    OfferEvent,
    OfferEventKind,
    OfferStatus,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
WINDOW_MONTHS = 6  # months of usage an offer looks at
MIN_MONTHS = 3  # fewer complete months than this: no usage-based offer yet
OFFER_VALID_DAYS = 30
END_OF_BINDING_NOTICE = timedelta(days=60)  # LEK ch. 7: tell before the binding ends


# --- groups ----------------------------------------------------------------------------


def holdout_group(campaign_code: str, customer_id: int, share: Decimal) -> str:
    """Treatment or holdout, from a hash of campaign and customer: the same answer every time,
    and a holdout of close to ``share`` across customers."""
    digest = hashlib.sha256(f"{campaign_code}:{customer_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return Group.HOLDOUT if position < share else Group.TREATMENT


def _assignments(campaign: Campaign, customer_ids: Iterable[int]) -> dict[int, str]:
    wanted = set(customer_ids)
    known = dict(
        CampaignAssignment.objects.filter(
            AnyOf(F("customer_id"), wanted), campaign=campaign
        ).values_list("customer_id", "group")
    )
    now = timezone.now()
    new = {
        customer_id: holdout_group(campaign.code, customer_id, campaign.holdout_share)
        for customer_id in sorted(wanted - known.keys())
    }
    insert_rows(
        CampaignAssignment,
        [
            {
                "campaign_id": campaign.id,
                "customer_id": customer_id,
                "group": group,
                "assigned_at": now,
            }
            for customer_id, group in new.items()
        ],
    )
    return {**known, **new}


# --- usage and catalogue ---------------------------------------------------------------


def usage_window(today: date) -> tuple[date, date]:
    """The last WINDOW_MONTHS complete months: first day of the first, first day after."""
    end = today.replace(day=1)
    start = end
    for _ in range(WINDOW_MONTHS):
        start = (start - timedelta(days=1)).replace(day=1)
    return start, end


def _milli(kind: str) -> Coalesce:
    """Thousandths of the kind's summed quantity, exact: quantities carry three decimals
    (rounded, not truncated, because SQLite sums them as floats); 0 without usage."""
    total = Sum("quantity", filter=Q(kind=kind))
    return Coalesce(Cast(Round(total * 1000), BigIntegerField()), 0, output_field=BigIntegerField())


def monthly_usage_queryset(
    sub_ids: Sequence[int] | None, today: date
) -> QuerySet[UsageRecord, tuple[int, date, int, int, int]]:
    """(subscription, month, data, calls, SMS), each in thousandths of the summed quantity,
    at home and in the EU/EEA over the usage window, ordered by subscription and month;
    over every subscription when ``sub_ids`` is None (bench/offers.py times it alone).

    The raw aggregate: ``monthly_usage`` reads billed months from their roll-up and sends
    this statement only for the months that have none.

    Built for a hundred thousand subscriptions: one row per subscription and month with the
    three kinds side by side, and plain integers and dates from the database, so that no
    row becomes a Decimal or a timezone-aware datetime, and Python groups nothing. The month
    is truncated in Stockholm time.
    """
    return _raw_months(sub_ids, *usage_window(today))


def _raw_months(
    sub_ids: Sequence[int] | None, start: date, end: date
) -> QuerySet[UsageRecord, tuple[int, date, int, int, int]]:
    """``monthly_usage_queryset`` over the months from ``start`` up to ``end`` (first days)."""
    rows = UsageRecord.objects.filter(
        occurred_at__gte=datetime.combine(start, time.min, tzinfo=STOCKHOLM),
        occurred_at__lt=datetime.combine(end, time.min, tzinfo=STOCKHOLM),
    )
    if sub_ids is not None:
        rows = rows.filter(AnyOf(F("subscription_id"), sub_ids))
    return (
        # upper-cased as the bill run does (billing.roaming), so "de" counts like "DE"
        rows.alias(country_code=Upper("country"))
        .filter(Q(country="") | Q(country_code__in=EU_EEA_COUNTRIES))
        .annotate(month=Cast(TruncMonth("occurred_at", tzinfo=STOCKHOLM), DateField()))
        .values_list("subscription_id", "month")
        .annotate(data=_milli("data"), voice=_milli("voice"), sms=_milli("sms"))
        .order_by("subscription_id", "month")
    )


def rolled_up_months_queryset(
    sub_ids: Sequence[int] | None, today: date
) -> QuerySet[UsageMonth, tuple[int, date, bool, int, int, int]]:
    """(subscription, month, has usage, data, calls, SMS) of the usage window's billed
    months, from the roll-up the bill run writes (``billing.models.UsageMonth``), in the
    units of ``monthly_usage_queryset``, ordered by subscription and month; over every
    subscription when ``sub_ids`` is None (bench/offers.py times it alone)."""
    start, end = usage_window(today)
    rows = UsageMonth.objects.filter(month__gte=start, month__lt=end)
    if sub_ids is not None:
        rows = rows.filter(AnyOf(F("subscription_id"), sub_ids))
    return rows.values_list(
        "subscription_id", "month", "has_usage", "data_milli_mb", "voice_milli_seconds", "sms_milli"
    ).order_by("subscription_id", "month")


def _month_starts(start: date, end: date) -> list[date]:
    months = []
    while start < end:
        months.append(start)
        start = (start + timedelta(days=32)).replace(day=1)
    return months


def monthly_usage(sub_ids: Sequence[int], today: date) -> dict[int, list[MonthUsage]]:
    """Each subscription's complete months of usage at home and in the EU/EEA, in month
    order, by subscription id in ascending order: two queries at most.

    A billed month's usage is the usage it was billed for: the roll-up the bill run wrote
    (``billing.models.UsageMonth``), read for the whole batch in one query. Usage records
    that arrive after the bill run are not in the offers either, just as they are not on the
    invoice. Only the (subscription, month) pairs of the window without a roll-up row (a
    month not billed yet, a subscription that started in the window) are summed from the
    usage records, in one more query restricted to those subscriptions and the span of
    those months. A month without usage records at home or in the EU/EEA is left out, as the
    sum of the records leaves it out.

    Data in thousandths of a MB; calls in whole seconds and SMS in whole messages, their
    sums truncated (as ``int()`` of the Decimal sums did before).
    """
    result: dict[int, list[MonthUsage]] = {}
    rolled_up: dict[int, list[date]] = {}
    current = -1
    months: list[MonthUsage] = []
    billed: list[date] = []
    for sub_id, month, has_usage, data, voice, sms in rolled_up_months_queryset(sub_ids, today):
        if sub_id != current:
            current, months, billed = sub_id, [], []
            rolled_up[sub_id] = billed
        billed.append(month)
        if has_usage:
            if not months:
                result[sub_id] = months
            months.append(MonthUsage(month, data, voice // 1000, sms // 1000))

    window = _month_starts(*usage_window(today))
    missing: set[tuple[int, date]] = set()
    for sub_id in sub_ids:
        billed = rolled_up.get(sub_id, [])
        if len(billed) < len(window):
            missing.update((sub_id, month) for month in window if month not in billed)
    if not missing:
        return result
    first = min(month for _sub_id, month in missing)
    after = (max(month for _sub_id, month in missing) + timedelta(days=32)).replace(day=1)
    added = False
    for sub_id, month, data, voice, sms in _raw_months(
        sorted({sub_id for sub_id, _month in missing}), first, after
    ):
        if (sub_id, month) in missing:
            usage = MonthUsage(month, data, voice // 1000, sms // 1000)
            result.setdefault(sub_id, []).append(usage)
            added = True
    if not added:
        return result
    # Months summed from the records join billed ones: back to subscription and month order.
    return {sub_id: sorted(result[sub_id]) for sub_id in sorted(result)}


def tariff(plan: Plan, price: Decimal | None = None) -> Tariff:
    return Tariff(
        plan_id=plan.id,
        name=plan.name,
        price=ore(plan.monthly_fee if price is None else price),
        data_included_gb=plan.data_included_gb,
        voice_included_minutes=plan.voice_included_minutes,
        sms_included=plan.sms_included,
        data_overage_per_gb=ore(plan.data_overage_per_gb),
        voice_overage_per_minute=ore(plan.voice_overage_per_minute),
        sms_overage_each=ore(plan.sms_overage_each),
    )


# --- texts -----------------------------------------------------------------------------


def _texts(msgid: str, params: dict[str, object]) -> dict[str, str]:
    return {language: render_text(Text(msgid, params), language) for language in text_languages()}


def _kr(amount_ore: int) -> Decimal:
    return (Decimal(amount_ore) / 100).quantize(Decimal("1"))


def _kr_text(amount_ore: int) -> str:
    """``str(_kr(amount_ore))`` for amounts ≥ 0 (the monthly costs in an offer's figures),
    in integers: half to even, as Decimal's quantize rounds, at a quarter of the cost."""
    kronor, rest = divmod(amount_ore, 100)
    if rest > 50 or (rest == 50 and kronor % 2):
        kronor += 1
    return str(kronor)


def _gb_range(months: Sequence[MonthUsage]) -> tuple[Decimal, Decimal]:
    gbs = [Decimal(m.data_milli_mb) / 1024000 for m in months]
    return min(gbs).quantize(Decimal("1")), max(gbs).quantize(Decimal("1"))


def _right_size_reason(rec: Recommendation, months: Sequence[MonthUsage]) -> dict[str, str]:
    low, high = _gb_range(months)
    saving = _kr(rec.monthly_saving)
    params = {
        "low": low,
        "high": high,
        "plan": rec.tariff.name,
        "saving": saving,
        "yearly": saving * 12,
        "months": len(months),
    }
    if low == high:
        return _texts(
            "You used about {high} GB a month over the last {months} months; {plan} would "
            "have cost you {saving} kr less per month, {yearly} kr a year.",
            params,
        )
    return _texts(
        "You used {low}–{high} GB a month over the last {months} months; {plan} would have "
        "cost you {saving} kr less per month, {yearly} kr a year.",
        params,
    )


# --- generation ------------------------------------------------------------------------


class _Candidate(NamedTuple):
    """An offer about to be written. A named tuple: one or two per subscription per run."""

    campaign: Campaign
    subscription: Subscription
    personalised: bool
    plan: Plan
    price: Decimal
    current_cost: int
    offered_cost: int
    saving: int
    reason: dict[str, str]
    figures: Mapping[str, object]
    valid_until: date


def offers_generate(*, customer_ids: Sequence[int], today: date | None = None) -> int:
    """Compute the offers of these customers' active subscriptions afresh; returns how many
    open offers were written (holdout included: they are measured, never shown)."""
    today = today or timezone.localdate()
    campaigns = {c.kind: c for c in Campaign.objects.filter(active=True).exclude(kind="custom")}
    if not campaigns:
        return 0
    # The catalogue is a handful of plans: read once and attached to each subscription,
    # rather than joined and built again as a Plan instance per subscription.
    all_plans = {p.id: p for p in Plan.objects.all()}
    subs = list(
        Subscription.objects.filter(
            AnyOf(F("customer_id"), customer_ids), status=SubscriptionStatus.ACTIVE
        )
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=today))
        .order_by("id")
    )
    for sub in subs:
        sub.plan = all_plans[sub.plan_id]
    consenting = set(
        Consent.objects.filter(
            AnyOf(F("customer_id"), customer_ids),
            kind=ConsentKind.PERSONALISED_OFFERS,
            withdrawn_at__isnull=True,
        ).values_list("customer_id", flat=True)
    )
    for_sale = [p for p in all_plans.values() if p.available_for_new_customers]
    catalogue = _Catalogue(
        plans={
            kind: [(p, tariff(p)) for p in for_sale if p.kind == kind]
            for kind in {p.kind for p in for_sale}
        }
    )
    # Usage is read only where it may be used: the customer consented to usage-based offers.
    usage = monthly_usage([s.id for s in subs if s.customer_id in consenting], today)
    candidates: list[_Candidate] = []
    for sub in subs:
        candidates.extend(
            _candidates_for(
                sub,
                campaigns,
                catalogue,
                usage.get(sub.id, []),
                sub.customer_id in consenting,
                today,
            )
        )
    return _write(
        candidates, [s.id for s in subs], {s.customer_id for s in subs}, list(campaigns.values())
    )


@dataclass
class _Catalogue:
    """The plans for sale by kind, with what one batch derives from them again and again:
    each kind's tariffs, and a tariff per (plan, agreed price) that subscriptions pay."""

    plans: dict[str, list[tuple[Plan, Tariff]]]
    tariffs: dict[str, list[Tariff]] = dataclasses.field(default_factory=dict)
    by_id: dict[int, Plan] = dataclasses.field(default_factory=dict)
    current: dict[tuple[int, Decimal], Tariff] = dataclasses.field(default_factory=dict)
    parity: dict[tuple[int, Decimal], _Candidate | None] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tariffs = {kind: [t for _p, t in plans] for kind, plans in self.plans.items()}
        self.by_id = {p.id: p for plans in self.plans.values() for p, _t in plans}

    def tariff_of(self, sub: Subscription) -> Tariff:
        key = (sub.plan_id, sub.agreed_monthly_price)
        found = self.current.get(key)
        if found is None:
            found = self.current[key] = tariff(sub.plan, sub.agreed_monthly_price)
        return found


def _candidates_for(
    sub: Subscription,
    campaigns: dict[str, Campaign],
    catalogue: _Catalogue,
    months: list[MonthUsage],
    consented: bool,
    today: date,
) -> list[_Candidate]:
    found: list[_Candidate] = []
    rec = None
    # Only metered plans are compared by usage: unmetered ones (broadband) differ in what no
    # usage record shows, such as speed.
    metered = sub.plan.kind == "mobile"
    if metered and consented and len(months) >= MIN_MONTHS:
        rec = recommend(catalogue.tariff_of(sub), catalogue.tariffs.get(sub.plan.kind, []), months)
    by_id = catalogue.by_id
    figures: dict[str, list[str]] = {}
    if rec:
        figures = {
            "months": [m.month.isoformat() for m in months],
            "current": [_kr_text(c) for c in rec.current_costs],
            "offered": [_kr_text(c) for c in rec.offered_costs],
        }

    def recommended(
        rec: Recommendation, campaign: Campaign, reason: dict[str, str], until: date
    ) -> _Candidate:
        return _Candidate(
            campaign=campaign,
            subscription=sub,
            personalised=True,
            plan=by_id[rec.tariff.plan_id],
            price=Decimal(rec.tariff.price) / 100,
            current_cost=rec.current_monthly_cost,
            offered_cost=rec.offered_monthly_cost,
            saving=rec.monthly_saving,
            reason=reason,
            figures=figures,
            valid_until=until,
        )

    if rec and "right_size" in campaigns:
        found.append(
            recommended(
                rec,
                campaigns["right_size"],
                _right_size_reason(rec, months),
                today + timedelta(days=OFFER_VALID_DAYS),
            )
        )
    ends = sub.binding_end
    if (
        rec
        and "end_of_binding" in campaigns
        and ends
        and today <= ends <= today + END_OF_BINDING_NOTICE
    ):
        eob_reason = _texts(
            "Your binding period ends on {ends}. If you do nothing, {current} continues "
            "month to month at {price} kr. With your usage, {plan} would have cost "
            "{saving} kr less per month.",
            {
                "ends": ends,
                "current": sub.plan.name,
                "price": sub.agreed_monthly_price,
                "plan": rec.tariff.name,
                "saving": _kr(rec.monthly_saving),
            },
        )
        found.append(recommended(rec, campaigns["end_of_binding"], eob_reason, ends))
    if "loyalty_parity" in campaigns:
        # Depends only on the plan and the price paid: computed once per pair and batch.
        key = (sub.plan_id, sub.agreed_monthly_price)
        if key not in catalogue.parity:
            catalogue.parity[key] = _loyalty_parity(
                sub, catalogue.plans.get(sub.plan.kind, []), today
            )
        parity = catalogue.parity[key]
        if parity:
            found.append(parity._replace(campaign=campaigns["loyalty_parity"], subscription=sub))
    return found


def _loyalty_parity(
    sub: Subscription, plans: list[tuple[Plan, Tariff]], today: date
) -> _Candidate | None:
    """The same plan, or an equivalent one (at least the same allowances), that new customers
    get for less than this customer pays."""
    current = sub.plan

    def covers(plan: Plan) -> bool:
        def at_least(new: object, old: object) -> bool:
            return new is None or (old is not None and new >= old)  # type: ignore[operator]

        return (
            at_least(plan.data_included_gb, current.data_included_gb)
            and at_least(plan.voice_included_minutes, current.voice_included_minutes)
            and at_least(plan.sms_included, current.sms_included)
        )

    cheaper = [p for p, _t in plans if p.monthly_fee < sub.agreed_monthly_price and covers(p)]
    if current.kind != "mobile":
        # unmetered plans (broadband) differ in speed, which no allowance shows: only the
        # same plan is surely equivalent
        cheaper = [p for p in cheaper if p.id == current.id]
    if not cheaper:
        return None
    same = [p for p in cheaper if p.id == current.id]
    plan = same[0] if same else min(cheaper, key=lambda p: p.monthly_fee)
    saving = ore(sub.agreed_monthly_price - plan.monthly_fee)
    if plan.id == current.id:
        reason = _texts(
            "New customers pay {list} kr a month for {plan}; you pay {agreed} kr. You get the "
            "same price: {saving} kr less per month.",
            {
                "list": plan.monthly_fee,
                "plan": plan.name,
                "agreed": sub.agreed_monthly_price,
                "saving": _kr(saving),
            },
        )
    else:
        reason = _texts(
            "New customers get {plan}, with at least what {current} includes, for {list} kr a "
            "month; you pay {agreed} kr. You can have it too: {saving} kr less per month.",
            {
                "plan": plan.name,
                "current": current.name,
                "list": plan.monthly_fee,
                "agreed": sub.agreed_monthly_price,
                "saving": _kr(saving),
            },
        )
    return _Candidate(
        campaign=Campaign(),
        subscription=sub,
        personalised=False,
        plan=plan,
        price=plan.monthly_fee,
        current_cost=ore(sub.agreed_monthly_price),
        offered_cost=ore(plan.monthly_fee),
        saving=saving,
        reason=reason,
        figures={},
        valid_until=today + timedelta(days=OFFER_VALID_DAYS),
    )


@transaction.atomic
def _write(
    candidates: list[_Candidate],
    sub_ids: list[int],
    customer_ids: set[int],
    campaigns: list[Campaign],
) -> int:
    """Supersede every open offer of the subscriptions computed (an offer that no longer
    applies must not stay open), and write the new ones.

    The customers' rows are locked first, in id order: two computations for the same
    customers (after a bill run, and on a consent given meanwhile) take turns instead of
    colliding on the one-open-offer and one-group constraints.
    """
    list(
        Customer.objects.select_for_update()
        .filter(AnyOf(F("id"), sorted(customer_ids)))
        .order_by("id")
        .values_list("id", flat=True)
    )
    now = timezone.now()
    Offer.objects.filter(
        AnyOf(F("subscription_id"), sub_ids), campaign__in=campaigns, status=OfferStatus.OPEN
    ).update(status=OfferStatus.SUPERSEDED)
    by_campaign: dict[int, list[_Candidate]] = defaultdict(list)
    for candidate in candidates:
        by_campaign[candidate.campaign.id].append(candidate)
    rows = []
    for campaign_candidates in by_campaign.values():
        campaign = campaign_candidates[0].campaign
        groups = _assignments(campaign, {c.subscription.customer_id for c in campaign_candidates})
        for c in campaign_candidates:
            rows.append(
                {
                    "campaign_id": campaign.id,
                    "customer_id": c.subscription.customer_id,
                    "subscription_id": c.subscription.id,
                    "group": groups[c.subscription.customer_id],
                    "personalised": c.personalised,
                    "to_plan_id": c.plan.id,
                    "offered_price": c.price,
                    "current_monthly_cost": Decimal(c.current_cost) / 100,
                    "offered_monthly_cost": Decimal(c.offered_cost) / 100,
                    "monthly_saving": Decimal(c.saving) / 100,
                    "yearly_saving": Decimal(c.saving * 12) / 100,
                    "reason": c.reason,
                    "figures": c.figures,
                    "valid_until": c.valid_until,
                    "created_at": now,
                    "status": OfferStatus.OPEN,
                }
            )
    insert_rows(Offer, rows)
    transaction.on_commit(lambda: offers_section_forget(*customer_ids))
    return len(rows)


# --- showing and accepting -------------------------------------------------------------


def offers_expire(*, today: date | None = None) -> int:
    today = today or timezone.localdate()
    return Offer.objects.filter(status=OfferStatus.OPEN, valid_until__lt=today).update(
        status=OfferStatus.EXPIRED
    )


def offer_event_record(*, offer_id: int, kind: str, invoice_id: int | None = None) -> None:
    """Record what the customer did with an offer: each kind once per offer (the first time
    counts), also under concurrent requests (a unique constraint backs it)."""
    OfferEvent.objects.get_or_create(
        offer_id=offer_id,
        kind=kind,
        defaults={"occurred_at": timezone.now(), "invoice_id": invoice_id},
    )


@transaction.atomic
def offer_accept(
    *,
    offer_id: int,
    idempotency_key: str,
    requested_via: str,
    timing: ChangeTiming = ChangeTiming.NEXT_PERIOD,
    binding_months: int = 0,
    confirmed_by_code: bool = False,
    invoice_id: int | None = None,
) -> PlanChangeRequested:
    """Turn an open offer into a plan change at the offered price, exactly once, with the
    binding period chosen (``binding_months``, 0: none). Only an offer the customer may be
    shown: open and valid, not in the holdout, and one made from their usage only while their
    consent to that is in force (``consent_not_in_force``)."""
    offer = (
        Offer.objects.select_for_update(of=("self",)).select_related("campaign").get(id=offer_id)
    )
    if offer.status == OfferStatus.ACCEPTED and offer.plan_change_id:
        from billing.models import PlanChange

        return PlanChangeRequested(
            change=PlanChange.objects.get(id=offer.plan_change_id),
            created=False,
            undo_token=None,
        )
    if offer.status != OfferStatus.OPEN or offer.valid_until < timezone.localdate():
        raise DomainError(code="offer_not_open", message="This offer is no longer valid.")
    if offer.group == Group.HOLDOUT:
        raise DomainError(code="offer_not_open", message="This offer is not available.")
    if offer.personalised and not consent_in_force(
        customer_id=offer.customer_id, kind=ConsentKind.PERSONALISED_OFFERS
    ):
        raise DomainError(
            code="consent_not_in_force",
            message="This offer was made from the customer's usage, and their consent to "
            "that is not in force.",
        )
    result = plan_change_request(
        subscription_id=offer.subscription_id,
        to_plan_id=offer.to_plan_id,
        requested_via=requested_via,
        idempotency_key=idempotency_key,
        timing=timing,
        price=offer.offered_price,
        binding_months=binding_months,
        confirmed_by_code=confirmed_by_code,
    )
    offer.status = OfferStatus.ACCEPTED
    offer.plan_change = result.change
    offer.save(update_fields=["status", "plan_change"])
    offer_event_record(offer_id=offer.id, kind=OfferEventKind.ACCEPTED, invoice_id=invoice_id)
    webhook_event_emit(
        type="offer.accepted",
        data={
            "offer": offer.id,
            "customer": offer.customer_id,
            "subscription": offer.subscription_id,
            "to_plan": offer.to_plan_id,
            "offered_price": str(offer.offered_price),
            "plan_change": result.change.id,
            "effective_date": result.change.effective_date.isoformat(),
            "via": requested_via,
        },
    )
    return result


def offers_supersede_for_change(
    *, subscription_id: int, accepted_offer_id: int | None = None
) -> int:
    """A plan change was made (from an offer, the plan list or the chat): the subscription's
    other open offers were computed for what it had, so they stop; returns how many."""
    others = Offer.objects.filter(subscription_id=subscription_id, status=OfferStatus.OPEN)
    if accepted_offer_id is not None:
        others = others.exclude(id=accepted_offer_id)
    return others.update(status=OfferStatus.SUPERSEDED)


def offers_withdraw_personalised(*, customer_id: int) -> int:
    """Consent withdrawn: usage-based offers of this customer stop (they are superseded)."""
    return Offer.objects.filter(
        customer_id=customer_id, personalised=True, status=OfferStatus.OPEN
    ).update(status=OfferStatus.SUPERSEDED)


# --- from the invoice page: consent, exposure, confirmed changes and their receipts ------
#
# The customer's page (offers/views.py) calls these. A change asked for on the page is
# "requested_via=invoice_page": one that raises the monthly price or adds a binding period
# is made only after a one-time code sent to the customer's registered phone or e-mail.

PAGE_SOURCE = "invoice_page"


def offers_consent_give(*, customer_id: int, source: str = PAGE_SOURCE) -> Consent:
    """The customer lets us use their usage for offers: record the consent, and compute their
    offers once it is committed (a task; in-process where Celery runs eagerly)."""
    from offers.tasks import offers_generate_task  # the tasks module imports this one

    with transaction.atomic():
        consent = consent_give(
            customer_id=customer_id, kind=ConsentKind.PERSONALISED_OFFERS, source=source
        )
        transaction.on_commit(lambda: offers_generate_task.delay(customer_ids=[customer_id]))
    return consent


@transaction.atomic
def offers_consent_withdraw(*, customer_id: int, source: str = PAGE_SOURCE) -> int:
    """Withdraw the consent and stop the usage-based offers, together; returns how many open
    offers stopped. Withdrawing when none is in force changes nothing."""
    consent_withdraw(customer_id=customer_id, kind=ConsentKind.PERSONALISED_OFFERS, source=source)
    return offers_withdraw_personalised(customer_id=customer_id)


def offers_record_shown(*, offer_ids: Sequence[int], invoice_id: int | None = None) -> int:
    """Exposure: these offers were shown on an invoice page. Once per offer, in two queries
    whatever their number (the page passes only offers it has not seen recorded); returns
    how many were recorded now."""
    if not offer_ids:
        return 0
    known = set(
        OfferEvent.objects.filter(offer_id__in=offer_ids, kind=OfferEventKind.SHOWN).values_list(
            "offer_id", flat=True
        )
    )
    now = timezone.now()
    new = [
        OfferEvent(
            offer_id=offer_id, kind=OfferEventKind.SHOWN, occurred_at=now, invoice_id=invoice_id
        )
        for offer_id in dict.fromkeys(offer_ids)
        if offer_id not in known
    ]
    OfferEvent.objects.bulk_create(new)
    return len(new)


def plan_change_code_purpose(
    *, subscription_id: int, to_plan_id: int, price: Decimal, binding_months: int
) -> str:
    """What a one-time code confirms: this subscription, to this plan, at this monthly price,
    with this binding period (months, 0: none). A code sent for one change does not confirm
    another: not even the same plan with a longer, or no, binding period."""
    return f"plan-change:{subscription_id}:{to_plan_id}:{price:.2f}:{binding_months}m"


@dataclass(frozen=True)
class CodeSent:
    channel: str  # "sms" or "email"
    destination: str  # the customer's registered phone or e-mail address


def plan_change_code_send(
    *,
    subscription_id: int,
    to_plan_id: int,
    price: Decimal,
    language: str,
    binding_months: int = 0,
) -> CodeSent:
    """Send the customer a one-time code that confirms a change to ``to_plan_id`` at
    ``price`` with ``binding_months`` of binding period (0: none; the text names it
    otherwise): by SMS to their phone, or by e-mail when they have no phone.

    Raises ``no_code_channel`` without either, ``code_rate_limited`` when several codes were
    sent for this change just now.
    """
    subscription = Subscription.objects.select_related("customer").get(id=subscription_id)
    plan = Plan.objects.get(id=to_plan_id)
    customer = subscription.customer
    if customer.phone:
        sent = CodeSent(channel="sms", destination=customer.phone)
    elif customer.email:
        sent = CodeSent(channel="email", destination=customer.email)
    else:
        raise DomainError(
            code="no_code_channel",
            message="The customer has no phone number or e-mail address to send a code to.",
        )

    def plain(value: object) -> str:  # the text is a str.format template: {code}
        return str(value).replace("{", "{{").replace("}", "}}")

    params = {
        "seller": plain(settings.SELLER["name"]),
        "code": "{code}",
        "number": plain(subscription.identifier),
        "plan": plain(plan.name),
        "price": plain(format_value(price, language).replace("\u00a0", " ")),
        "months": binding_months,
    }
    with translation.override(language):
        if binding_months:
            text = ngettext(
                "%(seller)s: %(code)s is your code to change %(number)s to %(plan)s for "
                "%(price)s kr a month with a binding period of %(months)s month. It is valid "
                "for 10 minutes. Do not share it with anyone.",
                "%(seller)s: %(code)s is your code to change %(number)s to %(plan)s for "
                "%(price)s kr a month with a binding period of %(months)s months. It is valid "
                "for 10 minutes. Do not share it with anyone.",
                binding_months,
            )
        else:
            text = gettext(
                "%(seller)s: %(code)s is your code to change %(number)s to %(plan)s for "
                "%(price)s kr a month. It is valid for 10 minutes. Do not share it with anyone."
            )
        text %= params
        subject = gettext("Your code to confirm the change of plan")
    one_time_code_send(
        purpose=plan_change_code_purpose(
            subscription_id=subscription.id,
            to_plan_id=plan.id,
            price=price,
            binding_months=binding_months,
        ),
        channel=sent.channel,
        destination=sent.destination,
        text=text,
        subject=subject,
    )
    return sent


def offer_accept_from_page(
    *,
    offer_id: int,
    idempotency_key: str,
    timing: ChangeTiming = ChangeTiming.NEXT_PERIOD,
    binding_months: int = 0,
    code: str = "",
    invoice_id: int | None = None,
    language: str = "sv",
) -> PlanChangeRequested:
    """The customer confirms an offer on the invoice page, with the binding period they
    chose: ``offer_accept`` exactly once, with the one-time code where the change needs one.
    See ``_confirm_from_page``."""
    return _confirm_from_page(
        offer_id=offer_id,
        subscription_id=None,
        to_plan_id=None,
        idempotency_key=idempotency_key,
        timing=timing,
        binding_months=binding_months,
        code=code,
        invoice_id=invoice_id,
        language=language,
    )


def plan_change_request_from_page(
    *,
    subscription_id: int,
    to_plan_id: int,
    idempotency_key: str,
    timing: ChangeTiming = ChangeTiming.NEXT_PERIOD,
    binding_months: int = 0,
    code: str = "",
    invoice_id: int | None = None,
    language: str = "sv",
) -> PlanChangeRequested:
    """The customer confirms a plan from the plan list on the invoice page, at its list
    price and with the binding period they chose: ``plan_change_request`` exactly once, with
    the one-time code where the change needs one. See ``_confirm_from_page``."""
    return _confirm_from_page(
        offer_id=None,
        subscription_id=subscription_id,
        to_plan_id=to_plan_id,
        idempotency_key=idempotency_key,
        timing=timing,
        binding_months=binding_months,
        code=code,
        invoice_id=invoice_id,
        language=language,
    )


def _confirm_from_page(
    *,
    offer_id: int | None,
    subscription_id: int | None,
    to_plan_id: int | None,
    idempotency_key: str,
    timing: ChangeTiming,
    binding_months: int,
    code: str,
    invoice_id: int | None,
    language: str,
) -> PlanChangeRequested:
    """Request the change without a code first: a repeat of an earlier request (the same
    key: a double click, a retry) or the same change from another tab returns that change,
    and a change that needs no code is made. Only when the rules ask for a code is ``code``
    verified (a code confirms one plan, price and binding period), and the change requested
    again as confirmed by it.

    Confirmations of one subscription queue on its row lock (the offer's first, as
    ``offer_accept`` takes them), so a second click waits for the first and then finds its
    change instead of checking the code, already used, again. A wrong code is counted: the
    attempt is committed before ``code_invalid`` is raised. When the change is created, its
    receipt with the undo link goes to the customer after commit (``plan_change_receipt_send``).
    """
    code_error: DomainError | None = None
    result: PlanChangeRequested
    with transaction.atomic():
        offer = None
        if offer_id is not None:
            offer = Offer.objects.select_for_update().get(id=offer_id)
            subscription_id, to_plan_id = offer.subscription_id, offer.to_plan_id
        if subscription_id is None or to_plan_id is None:
            raise TypeError("name an offer, or a subscription and a plan")
        plan_id: int = to_plan_id
        subscription = Subscription.objects.select_for_update().get(id=subscription_id)

        def request(confirmed_by_code: bool) -> PlanChangeRequested:
            if offer is not None:
                return offer_accept(
                    offer_id=offer.id,
                    idempotency_key=idempotency_key,
                    requested_via=PAGE_SOURCE,
                    timing=timing,
                    binding_months=binding_months,
                    confirmed_by_code=confirmed_by_code,
                    invoice_id=invoice_id,
                )
            return plan_change_request(
                subscription_id=subscription.id,
                to_plan_id=plan_id,
                requested_via=PAGE_SOURCE,
                idempotency_key=idempotency_key,
                timing=timing,
                binding_months=binding_months,
                confirmed_by_code=confirmed_by_code,
            )

        try:
            result = request(confirmed_by_code=False)
        except DomainError as error:
            if error.code != "confirmation_code_required" or not code.strip():
                raise
            if offer is not None:
                price = offer.offered_price
            else:
                price = Plan.objects.values_list("monthly_fee", flat=True).get(id=plan_id)
            try:
                one_time_code_verify(
                    purpose=plan_change_code_purpose(
                        subscription_id=subscription.id,
                        to_plan_id=plan_id,
                        price=price,
                        binding_months=binding_months,
                    ),
                    code=code,
                )
            except DomainError as wrong:
                code_error = wrong  # raised below, after the attempt is committed
            else:
                result = request(confirmed_by_code=True)
        if code_error is None and result.created:
            offers_supersede_for_change(
                subscription_id=subscription.id, accepted_offer_id=offer.id if offer else None
            )
        if code_error is None and result.created and result.undo_token:
            plan_change_receipt_send(
                change=result.change,
                undo_token=result.undo_token,
                language=language,
                invoice_id=invoice_id,
            )
    if code_error is not None:
        raise code_error
    return result


# --- from the operator's other channels, through the API ------------------------------

API_SOURCE = "api"


@transaction.atomic
def offer_accept_from_api(
    *,
    offer_id: int,
    timing: ChangeTiming = ChangeTiming.NEXT_PERIOD,
    binding_months: int | None = None,
    send_receipt: bool = True,
) -> PlanChangeRequested:
    """An offer the customer accepted through another of the operator's channels (its shop,
    its call centre), as the operator's system tells it: ``offer_accept`` with the page's
    rules, once per offer, so accepting it again (here or on the page) answers the change
    made the first time. ``binding_months`` None: the binding period the page proposes
    (``binding_months_default``). When the change is made, the subscription's other open
    offers stop, the customer gets the receipt with the link that undoes it (unless
    ``send_receipt`` is false: the operator gave them one), and their invoice page renders
    their offers afresh."""
    # the offer's lock first, as on the page (``offer_accept`` takes it, then the subscription's)
    offer = (
        Offer.objects.select_for_update(of=("self",))
        .select_related("to_plan", "customer")
        .get(id=offer_id)
    )
    months = binding_months if binding_months is not None else binding_months_default(offer.to_plan)
    result = offer_accept(
        offer_id=offer.id,
        idempotency_key=f"{API_SOURCE}:offer:{offer.id}",
        requested_via=API_SOURCE,
        timing=timing,
        binding_months=months,
    )
    if result.created:
        offers_supersede_for_change(
            subscription_id=offer.subscription_id, accepted_offer_id=offer.id
        )
        if send_receipt and result.undo_token:
            plan_change_receipt_send(
                change=result.change,
                undo_token=result.undo_token,
                language=offer.customer.language,
            )
        customer_id = offer.customer_id
        transaction.on_commit(lambda: offers_section_forget(customer_id))
    return result


def plan_change_undo_url(undo_token: str) -> str:
    """The undo link in a receipt, from the configured base URL (never the request's Host)."""
    return f"{settings.TOUCHPOINT_BASE_URL}{reverse('plan_change_undo_link', args=[undo_token])}"


def plan_change_receipt_send(
    *, change: PlanChange, undo_token: str, language: str, invoice_id: int | None = None
) -> list[OutboundMessage]:
    """Send the customer the receipt of a change, with the link that undoes it until the
    cooling-off period ends: by e-mail and/or SMS as they get their invoices (e-mail, else
    SMS, for customers who get paper).

    The outbox keeps the texts with the undo link's token masked; the carriers are called
    after commit with the working link, which exists only in this process.
    """
    subscription = Subscription.objects.select_related("customer").get(id=change.subscription_id)
    customer = subscription.customer
    channels = delivery_channels(customer)
    if not channels:
        channels = ["email"] if customer.email else ["sms"] if customer.phone else []
    if not channels:
        return []
    from_plan, to_plan = (
        Plan.objects.get(id=change.from_plan_id),
        Plan.objects.get(id=change.to_plan_id),
    )
    context = {
        "customer": customer,
        "subscription": subscription,
        "change": change,
        "from_plan": from_plan,
        "to_plan": to_plan,
        "undo_url": plan_change_undo_url(undo_token),
        "seller": settings.SELLER,
    }
    now = timezone.now()
    outgoing: list[tuple[OutboundMessage, str]] = []
    subject: str
    text: str
    with translation.override(language):
        for channel in channels:
            if channel == OutboundMessage.Channel.EMAIL:
                subject = render_to_string("offers/email/receipt_subject.txt", context).strip()
                text = render_to_string("offers/email/receipt.txt", context)
                to = customer.email
            else:
                subject = ""
                text = render_to_string("offers/sms/receipt.txt", context).strip()
                to = customer.phone
            message = OutboundMessage(
                invoice_id=invoice_id,
                channel=channel,
                to=to,
                subject=subject,
                body_text=mask_invoice_tokens(text),
                created_at=now,
            )
            outgoing.append((message, text))
    OutboundMessage.objects.bulk_create([message for message, _text in outgoing])

    def send() -> None:
        for message, text in outgoing:
            try:
                if message.channel == OutboundMessage.Channel.EMAIL:
                    EmailMessage(message.subject, text, to=[message.to]).send()
                else:
                    sms_backend().send(message.to, text)
            except Exception as exc:
                message.error = f"{exc.__class__.__name__}: {exc}"[:300]
                message.save(update_fields=["error"])
            else:
                message.sent_at = timezone.now()
                message.save(update_fields=["sent_at"])

    transaction.on_commit(send)
    return [message for message, _text in outgoing]


# --- the offers part of the invoice page -----------------------------------------------


def _section_version_key(customer_id: int) -> str:
    return f"offers-section-version:{customer_id}"


def offers_section_version(customer_id: int) -> int:
    """Part of the cache key of the customer's offers part of the invoice page."""
    return cache.get(_section_version_key(customer_id), 0)


def offers_section_forget(*customer_ids: int) -> None:
    """The offers or consent of these customers changed: their offers part is rendered
    afresh on the next open (a kept copy expires by itself within minutes otherwise)."""
    stamp = clock.time_ns()
    cache.set_many({_section_version_key(c): stamp for c in customer_ids}, timeout=60 * 60)


# --- offers staff add to their own campaigns -------------------------------------------


@transaction.atomic
def offer_create(
    *,
    campaign_id: int,
    subscription_id: int,
    to_plan_id: int,
    price: Decimal,
    reason: dict[str, str],
    valid_until: date,
) -> Offer:
    """An offer in a campaign staff defined ("custom"): checked against the change rules,
    assigned to treatment or holdout like any other, shown with the staff's own reason."""
    campaign = Campaign.objects.get(id=campaign_id)
    if campaign.kind != CampaignKind.CUSTOM or not campaign.active:
        raise DomainError(
            code="campaign_not_custom",
            message="Offers can be added by hand only to an active custom campaign.",
        )
    if not all(reason.get(language, "").strip() for language in text_languages()):
        raise DomainError(code="reason_required", message="Write the reason in every language.")
    if valid_until < timezone.localdate():
        raise DomainError(code="offer_expired", message="The offer would already have expired.")
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan")
        .get(id=subscription_id)
    )
    to_plan = Plan.objects.get(id=to_plan_id)
    quote = plan_change_quote(subscription=subscription, to_plan=to_plan, price=price)
    group = _assignments(campaign, [subscription.customer_id])[subscription.customer_id]
    Offer.objects.filter(
        campaign=campaign, subscription=subscription, status=OfferStatus.OPEN
    ).update(status=OfferStatus.SUPERSEDED)
    saving = quote.from_price - quote.to_price
    offer = Offer.objects.create(
        campaign=campaign,
        customer_id=subscription.customer_id,
        subscription=subscription,
        group=group,
        personalised=False,
        to_plan=to_plan,
        offered_price=quote.to_price,
        current_monthly_cost=quote.from_price,
        offered_monthly_cost=quote.to_price,
        monthly_saving=saving,
        yearly_saving=saving * 12,
        reason={language: reason[language].strip() for language in text_languages()},
        figures={},
        valid_until=valid_until,
        created_at=timezone.now(),
        status=OfferStatus.OPEN,
    )
    transaction.on_commit(lambda: offers_section_forget(subscription.customer_id))
    return offer
