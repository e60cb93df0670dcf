"""Outgoing webhooks: the operator's systems told what happened here.

A service that makes something happen calls ``webhook_event_emit`` inside its transaction;
the event and one delivery per endpoint that takes its type are stored with the change, and
sent after commit (and by a task every minute, for what is due again). Each delivery is a
POST of the event as JSON, signed like Stripe's:

    Touchpoint-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>

A receiver checks the signature and the timestamp (refusing old ones), and uses the event's
``id`` to do its work once: a delivery may come more than once. Anything but a 2xx answer is
tried again with backoff (``RETRY_AFTER``) for ``RETRY_WINDOW``; then the delivery is given
up, and staff may send it again from the admin. Every attempt is logged on the delivery.
"""

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.errors import DomainError
from core.models import (
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventType,
)

SIGNATURE_HEADER = "Touchpoint-Signature"
# Waits after the 1st, 2nd, … failed attempt; the last one repeats until the window closes.
RETRY_AFTER = [
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=8),
]
RETRY_WINDOW = timedelta(hours=24)
TIMEOUT_SECONDS = 10
# A delivery being sent is leased this long, so a second sender skips it, and a sender that
# died mid-way leaves it to be sent again afterwards.
LEASE = timedelta(minutes=2)
BATCH = 100


def webhook_secret_new() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


@transaction.atomic
def webhook_endpoint_create(
    *, name: str, url: str, event_types: Sequence[str] = (), is_active: bool = True
) -> WebhookEndpoint:
    """A receiver of the operator's, with a signing secret of its own made here (shown to staff
    on its page to set up the receiver). ``event_types`` empty: every type. Raises
    ``DomainError``: ``webhook_url_invalid`` for an address that is not http(s),
    ``webhook_event_type_unknown`` for a type there is not (the admin's form says so first)."""
    if not url.startswith(("https://", "http://")):
        raise DomainError(code="webhook_url_invalid", message="Give an http(s) address.")
    unknown = sorted(set(event_types) - set(WebhookEventType.values))
    if unknown:
        raise DomainError(
            code="webhook_event_type_unknown",
            message=f"No such event type: {', '.join(unknown)}.",
        )
    return WebhookEndpoint.objects.create(
        name=name,
        url=url,
        event_types=list(event_types),
        secret=webhook_secret_new(),
        is_active=is_active,
        created_at=timezone.now(),
    )


def webhook_sign(*, secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_listened(type: str) -> bool:
    """Whether any active endpoint takes ``type`` (to skip building events nobody hears)."""
    return any(e.takes(type) for e in WebhookEndpoint.objects.filter(is_active=True))


def webhook_event_emit(*, type: str, data: dict[str, Any]) -> WebhookEvent | None:
    """Tell every endpoint that takes ``type``. Call inside the transaction that made it
    happen: nothing is sent unless it commits. None when no endpoint takes the type."""
    made = webhook_events_emit_many(type=type, items=[data])
    return made[0] if made else None


def webhook_events_emit_many(*, type: str, items: Sequence[dict[str, Any]]) -> list[WebhookEvent]:
    """``webhook_event_emit`` for many events of one type at once (a bill run's chunk): a few
    statements whatever their number."""
    if type not in WebhookEventType.values:
        raise ValueError(f"unknown webhook event type {type}")
    endpoints = [e for e in WebhookEndpoint.objects.filter(is_active=True) if e.takes(type)]
    if not endpoints or not items:
        return []
    now = timezone.now()
    events = WebhookEvent.objects.bulk_create(
        [WebhookEvent(type=type, data=data, created_at=now) for data in items]
    )
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                event=event,
                endpoint=endpoint,
                next_attempt_at=now,
                retry_until=now + RETRY_WINDOW,
                created_at=now,
            )
            for event in events
            for endpoint in endpoints
        ]
    )
    transaction.on_commit(_send_soon)
    return events


def _send_soon() -> None:
    from core.tasks import webhook_deliveries_send_task

    webhook_deliveries_send_task.delay()


def webhook_deliveries_send_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Send what is due, up to ``limit`` deliveries; returns how many were tried. Safe to run
    in several workers at once: each leases its batch (``LEASE``) before sending."""
    tried = 0
    while tried < limit:
        batch = _lease_due(now or timezone.now(), min(BATCH, limit - tried))
        if not batch:
            break
        for delivery in batch:
            _attempt(delivery)
        tried += len(batch)
    return tried


@transaction.atomic
def _lease_due(now: datetime, size: int) -> list[WebhookDelivery]:
    due = list(
        WebhookDelivery.objects.select_for_update(skip_locked=True)
        .select_related("event", "endpoint")
        .filter(status=WebhookDeliveryStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")[:size]
    )
    if due:
        WebhookDelivery.objects.filter(id__in=[d.id for d in due]).update(
            next_attempt_at=now + LEASE
        )
    return due


def webhook_payload(event: WebhookEvent) -> bytes:
    return json.dumps(
        {
            "id": f"evt_{event.id}",
            "type": event.type,
            "created": event.created_at.isoformat(),
            "data": event.data,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


def _attempt(delivery: WebhookDelivery) -> None:
    """One POST, outside any transaction, then its outcome on the delivery."""
    endpoint, event = delivery.endpoint, delivery.event
    body = webhook_payload(event)
    started = time.monotonic()
    sent_at = timezone.now()
    request = urllib.request.Request(  # noqa: S310 (the URL is an endpoint staff set, http(s) only)
        endpoint.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Touchpoint-Webhooks/1",
            SIGNATURE_HEADER: webhook_sign(
                secret=endpoint.secret, timestamp=int(sent_at.timestamp()), body=body
            ),
            "Touchpoint-Event-Id": f"evt_{event.id}",
            "Touchpoint-Event-Type": event.type,
        },
    )
    code: int | None = None
    error = ""
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            code = answer.status
    except urllib.error.HTTPError as exc:
        code, error = exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = f"{exc.__class__.__name__}: {getattr(exc, 'reason', exc)}"[:300]
    _record(delivery, sent_at, code, error, int((time.monotonic() - started) * 1000))


def _record(
    delivery: WebhookDelivery, sent_at: datetime, code: int | None, error: str, ms: int
) -> None:
    ok = code is not None and 200 <= code < 300
    delivery.attempts += 1
    delivery.last_attempt_at = sent_at
    delivery.last_status_code = code
    delivery.last_error = "" if ok else error or f"HTTP {code}"
    delivery.log = [
        *delivery.log,
        {"at": sent_at.isoformat(), "status_code": code, "error": delivery.last_error, "ms": ms},
    ]
    if ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
            WebhookDeliveryStatus.DELIVERED,
            sent_at,
            None,
        )
    else:
        wait = RETRY_AFTER[min(delivery.attempts, len(RETRY_AFTER)) - 1]
        again = sent_at + wait
        if again > delivery.retry_until:
            delivery.status, delivery.next_attempt_at = WebhookDeliveryStatus.FAILED, None
        else:
            delivery.next_attempt_at = again
    delivery.save(
        update_fields=[
            "attempts",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "log",
            "status",
            "delivered_at",
            "next_attempt_at",
        ]
    )


@transaction.atomic
def webhook_delivery_resend(*, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again now (staff, from the admin): given up or delivered alike; its log
    keeps the earlier attempts, and a new retry window starts."""
    delivery = WebhookDelivery.objects.select_for_update().get(id=delivery_id)
    now = timezone.now()
    delivery.status, delivery.next_attempt_at = WebhookDeliveryStatus.PENDING, now
    delivery.retry_until = now + RETRY_WINDOW
    delivery.save(update_fields=["status", "next_attempt_at", "retry_until"])
    transaction.on_commit(_send_soon)
    return delivery
