"""State changes of the billing domain that more than one edge needs."""

import hashlib
import secrets
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.models import (
    Consent,
    Customer,
    Plan,
    PlanChange,
    PlanChangeStatus,
    Subscription,
    SubscriptionEvent,
    SubscriptionStatus,
)
from core.errors import DomainError
from core.webhooks import webhook_event_emit

# Which field changes are recorded as which history event.
_EVENT_FOR_FIELD = {
    "plan": SubscriptionEvent.Kind.PLAN_CHANGED,
    "agreed_monthly_price": SubscriptionEvent.Kind.PRICE_CHANGED,
    "binding_end": SubscriptionEvent.Kind.BINDING_CHANGED,
    "end_date": SubscriptionEvent.Kind.ENDED,
}


def _plain(value: Any) -> Any:
    if hasattr(value, "pk"):
        return value.pk
    return None if value is None else str(value)


@transaction.atomic
def subscription_save(
    *, subscription: Subscription, via: str, before: dict[str, Any] | None = None
) -> Subscription:
    """Save a subscription and write its history: created, or one event per changed term.

    ``before`` holds the stored values of the recorded fields (None for a new subscription).
    """
    created = subscription.pk is None
    subscription.save()
    now = timezone.now()
    if created or before is None:
        SubscriptionEvent.objects.create(
            subscription=subscription,
            kind=SubscriptionEvent.Kind.CREATED,
            occurred_at=now,
            via=via,
            details={"plan": subscription.plan_id, "price": str(subscription.agreed_monthly_price)},
        )
        _subscription_changed(subscription, change="created", via=via)
        return subscription
    events = []
    for field, kind in _EVENT_FOR_FIELD.items():
        old = before.get(field)
        new = getattr(subscription, field)
        if _plain(old) != _plain(new):
            events.append(
                SubscriptionEvent(
                    subscription=subscription,
                    kind=kind,
                    occurred_at=now,
                    via=via,
                    details={"field": field, "from": _plain(old), "to": _plain(new)},
                )
            )
    SubscriptionEvent.objects.bulk_create(events)
    if events:
        _subscription_changed(subscription, change="terms", via=via)
    return subscription


def _subscription_changed(subscription: Subscription, *, change: str, via: str) -> None:
    """Tell the operator's systems (``subscription.changed``), within the change's
    transaction: sent only if it commits."""
    webhook_event_emit(
        type="subscription.changed",
        data={
            "subscription": subscription.pk,
            "customer": subscription.customer_id,
            "identifier": subscription.identifier,
            "change": change,
            "via": via,
            "status": subscription.status,
            "plan": subscription.plan_id,
            "agreed_monthly_price": str(subscription.agreed_monthly_price),
            "binding_end": subscription.binding_end.isoformat()
            if subscription.binding_end
            else None,
            "end_date": subscription.end_date.isoformat() if subscription.end_date else None,
        },
    )


def subscription_terms(subscription: Subscription) -> dict[str, Any]:
    """The recorded terms as stored now, to pass as ``before`` to ``subscription_save``."""
    return {field: getattr(subscription, field) for field in _EVENT_FOR_FIELD}


# --- plan changes ----------------------------------------------------------------------

COOLING_OFF_DAYS = 14  # ångerrätt for contracts made at a distance
MAX_CONSUMER_BINDING_MONTHS = 24


class ChangeTiming(StrEnum):
    NEXT_PERIOD = "next_period"  # from the first day of next month (the default)
    NOW = "now"  # from today, prorated by day where both plans allow it
    AFTER_BINDING = "after_binding"  # the day after the binding period ends (next period if none)


@dataclass(frozen=True)
class PlanChangeQuote:
    """What a change would do, shown to the customer before they confirm."""

    subscription: Subscription
    to_plan: Plan
    effective_date: date
    from_price: Decimal
    to_price: Decimal
    from_binding_end: date | None
    to_binding_end: date | None
    cooling_off_until: date

    @property
    def price_difference(self) -> Decimal:
        return self.to_price - self.from_price

    @property
    def raises_price(self) -> bool:
        return self.to_price > self.from_price

    @property
    def adds_binding(self) -> bool:
        return self.to_binding_end is not None and (
            self.from_binding_end is None or self.to_binding_end > self.from_binding_end
        )

    @property
    def needs_confirmation_code(self) -> bool:
        """From a link alone a change may neither raise the price nor add a binding period."""
        return self.raises_price or self.adds_binding


def _first_of_next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def binding_months_options(plan: Plan) -> list[int]:
    """The binding periods, in months, ``plan`` is sold with to consumers, shortest first;
    0 is "no binding period". A plan that names none is sold without one."""
    offered = plan.binding_months_options or [0]
    return sorted({m for m in offered if 0 <= m <= MAX_CONSUMER_BINDING_MONTHS})


def binding_months_default(plan: Plan) -> int:
    """The binding a change to ``plan`` is quoted with until the customer chooses another:
    none where the plan is sold without one, else the shortest it is sold with (0 when it
    names none a consumer can take; ``plan_change_quote`` then says so)."""
    options = binding_months_options(plan)
    return options[0] if options else 0


def _binding_end_after(
    current_end: date | None, effective: date, binding_months: int
) -> date | None:
    """The binding end once a change with ``binding_months`` takes effect on ``effective``:
    a new binding period never shortens the one running."""
    if not binding_months:
        return current_end
    new_end = _add_months(effective, binding_months) - timedelta(days=1)
    return max(new_end, current_end or new_end)


def plan_change_quote(
    *,
    subscription: Subscription,
    to_plan: Plan,
    timing: ChangeTiming = ChangeTiming.NEXT_PERIOD,
    price: Decimal | None = None,
    binding_months: int = 0,
    today: date | None = None,
) -> PlanChangeQuote:
    """Check a change against the rules and say what it would do; raises a DomainError with
    the reason when it is not allowed."""
    today = today or timezone.localdate()
    from_plan = subscription.plan
    if subscription.status != SubscriptionStatus.ACTIVE or (
        subscription.end_date and subscription.end_date < today
    ):
        raise DomainError(code="subscription_ended", message="This subscription has ended.")
    if to_plan.kind != from_plan.kind:
        raise DomainError(
            code="plan_kind_differs", message=f"{to_plan.name} is not a {from_plan.kind} plan."
        )
    if not to_plan.available_for_new_customers and to_plan.id != from_plan.id:
        raise DomainError(code="plan_not_for_sale", message=f"{to_plan.name} is not for sale.")
    to_price = to_plan.monthly_fee if price is None else price
    if to_plan.id == from_plan.id and to_price == subscription.agreed_monthly_price:
        raise DomainError(code="no_change", message=f"You already have {to_plan.name}.")
    # a plan sold only with a binding period cannot be taken without one
    if binding_months not in binding_months_options(to_plan):
        raise DomainError(
            code="binding_not_offered",
            message=f"{to_plan.name} is not offered with {binding_months} months' binding.",
        )
    if timing == ChangeTiming.NOW:
        if not (from_plan.allows_immediate_change and to_plan.allows_immediate_change):
            raise DomainError(
                code="immediate_change_not_allowed",
                message="This change can take effect from the next period.",
            )
        effective = today
    elif (
        timing == ChangeTiming.AFTER_BINDING
        and subscription.binding_end is not None
        and subscription.binding_end >= today
    ):
        effective = subscription.binding_end + timedelta(days=1)
    else:
        effective = _first_of_next_month(today)
    in_binding = subscription.binding_end is not None and subscription.binding_end >= effective
    downgrade = to_price < subscription.agreed_monthly_price
    if in_binding and downgrade and not from_plan.allows_downgrade_in_binding:
        raise DomainError(
            code="binding_period_active",
            message=f"Your binding period runs until {subscription.binding_end}: you can "
            "move to a cheaper plan from the day after. A bigger plan is always possible.",
        )
    return PlanChangeQuote(
        subscription=subscription,
        to_plan=to_plan,
        effective_date=effective,
        from_price=subscription.agreed_monthly_price,
        to_price=to_price,
        from_binding_end=subscription.binding_end,
        to_binding_end=_binding_end_after(subscription.binding_end, effective, binding_months),
        cooling_off_until=today + timedelta(days=COOLING_OFF_DAYS),
    )


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, monthrange(year, month)[1]))


@dataclass(frozen=True)
class PlanChangeRequested:
    change: PlanChange
    created: bool  # False: an earlier request (same key, or the same change) is returned
    undo_token: str | None  # only when created: the capability of the undo link


@transaction.atomic
def plan_change_request(
    *,
    subscription_id: int,
    to_plan_id: int,
    requested_via: str,
    idempotency_key: str,
    timing: ChangeTiming = ChangeTiming.NEXT_PERIOD,
    price: Decimal | None = None,
    binding_months: int = 0,
    confirmed_by_code: bool = False,
    requested_by: str = "",
) -> PlanChangeRequested:
    """Schedule a plan change exactly once, however often it is asked for.

    A repeated key returns the first change; so does a second request for the same change
    (plan, price and binding) while it is pending (two tabs). From the invoice page, a change
    that raises the price or adds a binding period needs ``confirmed_by_code``.
    ``binding_months`` is the binding period chosen with the change (0: none), one of
    ``binding_months_options(to_plan)``.
    """
    existing = PlanChange.objects.filter(idempotency_key=idempotency_key).first()
    if existing:
        return PlanChangeRequested(change=existing, created=False, undo_token=None)
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan")
        .get(id=subscription_id)
    )
    # Re-read under the subscription's lock: a concurrent request may have just committed.
    existing = PlanChange.objects.filter(idempotency_key=idempotency_key).first()
    if existing:
        return PlanChangeRequested(change=existing, created=False, undo_token=None)
    pending = subscription.plan_changes.filter(status=PlanChangeStatus.SCHEDULED).first()
    if pending:
        asked_price = price if price is not None else Plan.objects.get(id=to_plan_id).monthly_fee
        # the binding end this request would give, from the day the pending change starts
        asked_binding_end = _binding_end_after(
            pending.from_binding_end, pending.effective_date, binding_months
        )
        if (pending.to_plan_id, pending.to_price, pending.to_binding_end) == (
            to_plan_id,
            asked_price,
            asked_binding_end,
        ):
            return PlanChangeRequested(change=pending, created=False, undo_token=None)
        raise DomainError(
            code="change_pending",
            message=f"A change to another plan takes effect on {pending.effective_date}. "
            "Undo it first to choose another.",
        )
    to_plan = Plan.objects.get(id=to_plan_id)
    quote = plan_change_quote(
        subscription=subscription,
        to_plan=to_plan,
        timing=timing,
        price=price,
        binding_months=binding_months,
    )
    if requested_via == "invoice_page" and quote.needs_confirmation_code and not confirmed_by_code:
        raise DomainError(
            code="confirmation_code_required",
            message="This change raises your monthly price or adds a binding period: confirm "
            "it with the code we send to your phone or e-mail.",
        )
    undo_token = secrets.token_urlsafe(32)
    change = PlanChange.objects.create(
        subscription=subscription,
        from_plan=subscription.plan,
        to_plan=to_plan,
        from_price=quote.from_price,
        to_price=quote.to_price,
        from_binding_end=quote.from_binding_end,
        to_binding_end=quote.to_binding_end,
        effective_date=quote.effective_date,
        requested_via=requested_via,
        requested_by=requested_by,
        idempotency_key=idempotency_key,
        requested_at=timezone.now(),
        cooling_off_until=quote.cooling_off_until,
        undo_token_hash=_token_hash(undo_token),
    )
    if change.effective_date <= timezone.localdate():
        _apply(change, subscription)
    return PlanChangeRequested(change=change, created=True, undo_token=undo_token)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def plan_change_get_by_undo_token(undo_token: str) -> PlanChange | None:
    """The change an undo link names (with its subscription, customer and both plans), or
    None. Only the token's SHA-256 is stored and looked up."""
    if not 20 <= len(undo_token) <= 100:
        return None
    return (
        PlanChange.objects.select_related("subscription__customer", "from_plan", "to_plan")
        .filter(undo_token_hash=_token_hash(undo_token))
        .first()
    )


def _apply(change: PlanChange, subscription: Subscription) -> None:
    """Precondition: both rows locked in this transaction."""
    subscription.plan = change.to_plan
    subscription.agreed_monthly_price = change.to_price
    subscription.binding_end = change.to_binding_end
    subscription.save(update_fields=["plan", "agreed_monthly_price", "binding_end"])
    change.status = PlanChangeStatus.APPLIED
    change.applied_at = timezone.now()
    change.save(update_fields=["status", "applied_at"])
    SubscriptionEvent.objects.create(
        subscription=subscription,
        kind=SubscriptionEvent.Kind.PLAN_CHANGED,
        occurred_at=change.applied_at,
        via=change.requested_via,
        details={
            "change": change.id,
            "from": change.from_plan_id,
            "to": change.to_plan_id,
            "from_price": str(change.from_price),
            "to_price": str(change.to_price),
            "effective": change.effective_date.isoformat(),
        },
    )
    _subscription_changed(subscription, change="plan_changed", via=change.requested_via)


def plan_changes_apply_due(*, today: date | None = None) -> int:
    """Apply every scheduled change whose day has come; safe to run any number of times."""
    today = today or timezone.localdate()
    applied = 0
    due = PlanChange.objects.filter(
        status=PlanChangeStatus.SCHEDULED, effective_date__lte=today
    ).values_list("id", flat=True)
    for change_id in list(due):
        with transaction.atomic():
            change = PlanChange.objects.select_for_update().get(id=change_id)
            if change.status != PlanChangeStatus.SCHEDULED:
                continue
            subscription = Subscription.objects.select_for_update().get(id=change.subscription_id)
            if subscription.status != SubscriptionStatus.ACTIVE:
                continue  # ended before its day: nothing to change
            _apply(change, subscription)
            applied += 1
    return applied


@transaction.atomic
def plan_change_undo(
    *, change_id: int | None = None, undo_token: str | None = None, via: str
) -> PlanChange:
    """Undo a change within its cooling-off period, as if it had never been made.

    Found by id (staff, chat) or by the undo link's token (the customer). Undoing twice is
    a no-op that returns the undone change.
    """
    changes = PlanChange.objects.select_for_update()
    if undo_token is not None:
        change = changes.filter(undo_token_hash=_token_hash(undo_token)).first()
    elif change_id is not None:
        change = changes.filter(id=change_id).first()
    else:
        raise DomainError(code="plan_change_not_found", message="Name a change or its link.")
    if change is None:
        raise DomainError(code="plan_change_not_found", message="No such plan change.")
    if change.status == PlanChangeStatus.UNDONE:
        return change
    later = PlanChange.objects.filter(
        subscription_id=change.subscription_id, id__gt=change.id
    ).exclude(status=PlanChangeStatus.UNDONE)
    if later.exists():
        raise DomainError(
            code="later_change_exists",
            message="A later change of this subscription must be undone first.",
        )
    # A change that has not taken effect yet can be cancelled until it does; an applied one
    # can be undone within the cooling-off period.
    today = timezone.localdate()
    not_yet_in_effect = (
        change.status == PlanChangeStatus.SCHEDULED and change.effective_date > today
    )
    too_late = today > change.cooling_off_until and not not_yet_in_effect
    if too_late:
        raise DomainError(
            code="cooling_off_expired",
            message=f"The change could be undone until {change.cooling_off_until}.",
        )
    subscription = Subscription.objects.select_for_update().get(id=change.subscription_id)
    if change.status == PlanChangeStatus.APPLIED:
        subscription.plan_id = change.from_plan_id
        subscription.agreed_monthly_price = change.from_price
        subscription.binding_end = change.from_binding_end
        subscription.save(update_fields=["plan", "agreed_monthly_price", "binding_end"])
    change.status = PlanChangeStatus.UNDONE
    change.undone_at = timezone.now()
    change.save(update_fields=["status", "undone_at"])
    SubscriptionEvent.objects.create(
        subscription=subscription,
        kind=SubscriptionEvent.Kind.PLAN_CHANGED,
        occurred_at=change.undone_at,
        via=via,
        details={"change": change.id, "undone": True, "back_to": change.from_plan_id},
    )
    if change.applied_at is not None:
        _subscription_changed(subscription, change="plan_change_undone", via=via)
    return change


# --- consents --------------------------------------------------------------------------


@transaction.atomic
def consent_give(*, customer_id: int, kind: str, source: str) -> Consent:
    """Record a consent (once: giving it again returns the one in force)."""
    Customer.objects.select_for_update().get(id=customer_id)
    current = Consent.objects.filter(
        customer_id=customer_id, kind=kind, withdrawn_at__isnull=True
    ).first()
    if current:
        return current
    return Consent.objects.create(
        customer_id=customer_id, kind=kind, given_at=timezone.now(), source=source
    )


@transaction.atomic
def consent_withdraw(*, customer_id: int, kind: str, source: str) -> bool:
    """Withdraw a consent in force; returns whether there was one. Offers computed from usage
    under it stop being shown (the caller withdraws them)."""
    Customer.objects.select_for_update().get(id=customer_id)
    updated = Consent.objects.filter(
        customer_id=customer_id, kind=kind, withdrawn_at__isnull=True
    ).update(withdrawn_at=timezone.now())
    return bool(updated)


def consent_in_force(*, customer_id: int, kind: str) -> bool:
    return Consent.objects.filter(
        customer_id=customer_id, kind=kind, withdrawn_at__isnull=True
    ).exists()


# --- customers and subscriptions from source systems -----------------------------------------

CUSTOMER_FIELDS = (
    "name",
    "email",
    "phone",
    "language",
    "address",
    "postal_code",
    "city",
    "delivery_method",
    "billing_group",
)


@transaction.atomic
def customer_create(*, customer_number: str, **fields: Any) -> Customer:
    """A new customer under the source's number (``customer_exists`` when it is taken)."""
    if Customer.objects.filter(customer_number=customer_number).exists():
        raise DomainError(
            code="customer_exists", message=f"Customer {customer_number} exists already."
        )
    customer = Customer(customer_number=customer_number, **_known(fields))
    customer.full_clean()
    customer.save()
    return customer


@transaction.atomic
def customer_update(*, customer_id: int, **fields: Any) -> Customer:
    """Change a customer's details; what is not given stays. Invoices issued keep the details
    they were issued with (their snapshots)."""
    customer = Customer.objects.select_for_update().get(id=customer_id)
    changed = _known(fields)
    for name, value in changed.items():
        setattr(customer, name, value)
    customer.full_clean()
    customer.save(update_fields=list(changed) or None)
    return customer


def _known(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(CUSTOMER_FIELDS))
    if unknown:
        raise DomainError(code="unknown_field", message=f"Unknown field: {', '.join(unknown)}")
    return fields


@transaction.atomic
def subscription_create(
    *,
    customer_id: int,
    plan_id: int,
    identifier: str,
    start_date: date,
    via: str,
    agreed_monthly_price: Decimal | None = None,
    binding_end: date | None = None,
    label: str = "",
) -> Subscription:
    """A customer's new subscription, at the plan's list price unless another is agreed."""
    plan = Plan.objects.get(id=plan_id)
    if binding_end is not None and binding_end < start_date:
        raise DomainError(
            code="binding_before_start", message="The binding period ends before it starts."
        )
    subscription = Subscription(
        customer_id=customer_id,
        plan=plan,
        identifier=identifier,
        label=label,
        agreed_monthly_price=plan.monthly_fee
        if agreed_monthly_price is None
        else agreed_monthly_price,
        start_date=start_date,
        binding_end=binding_end,
    )
    subscription.full_clean()
    return subscription_save(subscription=subscription, via=via)


@transaction.atomic
def subscription_end(*, subscription_id: int, end_date: date, via: str) -> Subscription:
    """End a subscription on ``end_date`` (its last billed day). Ending it again on the same
    day changes nothing; an ended one cannot end on another day."""
    subscription = Subscription.objects.select_for_update().get(id=subscription_id)
    if subscription.status == SubscriptionStatus.ENDED:
        if subscription.end_date == end_date:
            return subscription
        raise DomainError(
            code="subscription_ended",
            message=f"The subscription ended on {subscription.end_date}.",
        )
    if end_date < subscription.start_date:
        raise DomainError(
            code="end_before_start", message="A subscription cannot end before it starts."
        )
    before = subscription_terms(subscription)
    subscription.end_date = end_date
    subscription.status = SubscriptionStatus.ENDED
    return subscription_save(subscription=subscription, via=via, before=before)
