"""Stripe as Touchpoint talks to it: whether card payment is on, one configured client, and
amounts in öre (Stripe's smallest unit for SEK).

Card payment is on only when the secret key, the publishable key and the webhook's signing
secret are all set: without the secret key nothing can be charged, without the publishable key
the page cannot show Stripe's card field, and without the webhook secret no result could be
booked. ``STRIPE_API_BASE`` points the SDK at a Stripe-compatible server (localstripe in the
tests and a demo). Requests name the API version they were written for
(``STRIPE_API_VERSION``), not the SDK's newest, so an upgrade of the SDK does not change what
Stripe is asked.
"""

from decimal import Decimal
from functools import cache

import stripe
from django.conf import settings

# Stripe refuses a charge in SEK below 3 kr (its minimum charge amount per currency); an
# invoice with less open is paid another way.
CARD_MINIMUM_AMOUNT = Decimal("3.00")


def card_payments_enabled() -> bool:
    return bool(
        settings.STRIPE_SECRET_KEY
        and settings.STRIPE_PUBLISHABLE_KEY
        and settings.STRIPE_WEBHOOK_SECRET
    )


def stripe_client() -> stripe.StripeClient:
    """The client for the configured keys, made once per process (it keeps its HTTP
    connections). No automatic retries: a retry is ours to make, with the idempotency key we
    saved before the first call."""
    return _client(
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE,
        settings.STRIPE_API_VERSION,
        settings.STRIPE_TIMEOUT_SECONDS,
    )


@cache
def _client(secret_key: str, api_base: str, version: str, timeout: float) -> stripe.StripeClient:
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base},
        stripe_version=version,
        max_network_retries=0,
        http_client=stripe.new_default_http_client(timeout=timeout),
    )


def to_ore(amount: Decimal) -> int:
    """Kronor (two places) to öre, exactly: 299.50 → 29950."""
    ore = amount.scaleb(2)
    if ore != ore.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of öre")
    return int(ore)


def from_ore(ore: int) -> Decimal:
    """Öre to kronor with two places, exactly: 29950 → 299.50."""
    return Decimal(ore).scaleb(-2)
