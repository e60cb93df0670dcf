"""Stripe's webhook: ``POST /webhooks/stripe/`` (config/urls.py).

Nothing is believed before its signature is checked: an HMAC-SHA256 of the timestamp and the
body with the endpoint's signing secret (``STRIPE_WEBHOOK_SECRET``), compared in constant time
by Stripe's own SDK, with the timestamp no older than ``TOLERANCE_SECONDS`` (a replayed
capture is refused) and no further in the future than ``FUTURE_SKEW_SECONDS`` (Stripe's SDK
checks only the past; a signature dated ahead would stay replayable longer). Then the event is
applied in one transaction with its id (``stripe_event_apply``), and the answer is quick: the
request does nothing slow besides that booking (the page's refresh is a task after commit).
Anything but a 2xx makes Stripe deliver the event again, for three days.
"""

import json
import time
from collections.abc import Mapping
from typing import Any

import stripe
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from invoices.services.card_payments import stripe_event_apply

TOLERANCE_SECONDS = 300  # Stripe's own default: a signature older than five minutes is refused
FUTURE_SKEW_SECONDS = 60  # clocks differ a little; a signature dated further ahead is refused


class WebhookRefused(Exception):
    """The request is not a genuine, fresh Stripe event (the reason says which check failed)."""


def stripe_event_verify(
    *, payload: bytes, header: str, secret: str, now: float | None = None
) -> dict[str, Any]:
    """The event in ``payload`` if ``header`` (Stripe-Signature) signs it with ``secret`` at a
    time within the tolerance; raises ``WebhookRefused`` otherwise."""
    now = time.time() if now is None else now
    stamps = [part[2:] for part in header.split(",") if part.strip().startswith("t=")]
    try:
        timestamp = int(stamps[0].strip())
    except (IndexError, ValueError):
        raise WebhookRefused("no timestamp in the signature header") from None
    if timestamp > now + FUTURE_SKEW_SECONDS:
        raise WebhookRefused("the signature is dated in the future")
    if timestamp < now - TOLERANCE_SECONDS:
        raise WebhookRefused("the signature is too old")
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError:
        raise WebhookRefused("the signature does not match") from None
    try:
        event = json.loads(payload)
    except ValueError:
        raise WebhookRefused("the body is not JSON") from None
    if not _is_event(event):
        raise WebhookRefused("the body is not a Stripe event")
    return event  # type: ignore[no-any-return]


def _is_event(event: object) -> bool:
    if not isinstance(event, Mapping):
        return False
    data = event.get("data")
    return (
        isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("created"), int)
        and isinstance(data, Mapping)
        and isinstance(data.get("object"), Mapping)
    )


@csrf_exempt  # Stripe signs its requests instead: the signature is the check
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        return HttpResponse(status=404)  # card payments are not set up here
    try:
        event = stripe_event_verify(
            payload=request.body, header=request.headers.get("Stripe-Signature", ""), secret=secret
        )
    except WebhookRefused as refused:
        return JsonResponse({"error": str(refused)}, status=400)
    outcome = stripe_event_apply(event=event, via="webhook")
    return JsonResponse({"outcome": outcome})
