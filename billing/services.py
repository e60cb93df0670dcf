"""State changes of the billing domain that more than one edge needs."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.models import Subscription, SubscriptionEvent

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
    return subscription


def subscription_terms(subscription: Subscription) -> dict[str, Any]:
    """The recorded terms as stored now, to pass as ``before`` to ``subscription_save``."""
    return {field: getattr(subscription, field) for field in _EVENT_FOR_FIELD}
