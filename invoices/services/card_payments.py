"""Card payments through Stripe: an attempt per payment, booked once from Stripe's events, and
refunds back to the card.

Paying: the customer types their card into Stripe's field on the invoice page and Stripe.js
turns it into a single-use token (the card never reaches us). ``card_payment_start`` then
saves an attempt with a fresh idempotency key and commits it, and only then asks Stripe for a
PaymentIntent of what is open on the invoice, confirmed with that card (for a Stripe customer
made for the attempt, which holds the card). A retry after a timeout finds the same attempt and
sends the same request with the same key, so Stripe answers with the first result instead of
charging twice; a second click while an attempt for the same open amount is alive gets that
attempt back. When the card holder's bank asks them to confirm (3-D Secure) the page gets the
PaymentIntent's client secret and Stripe.js does the rest.

Booking: only Stripe's events book money (``stripe_event_apply``: the webhook, and the daily
``stripe_events_catch_up`` for events whose delivery failed). Each event's id is stored under a
unique constraint in the same transaction as what it did, so a repeated delivery, or two at
once, does it once. Events may come in any order, so they are applied by the state of the
object they carry, never by their order: an attempt's status only moves forward
(``CARD_PAYMENT_STATUS_RANK``: a "failed" after "succeeded" changes nothing), the money of a
PaymentIntent is booked once (``Payment.source_key`` ``stripe:<id>``), and a refund that
arrives before its payment waits and is booked with it.

Refunds: finance staff give back all or part of a card payment (``card_refund_request``): the
refund is saved with its idempotency key before Stripe is called, and booked, when Stripe says
it succeeded, as a negative payment on the invoice. It takes what the payment had beyond the
invoice (its surplus) first, then what paid the invoice, which then has that money open again.

Locks, always in this order: the invoice, then the attempt, then a refund or payment row.
"""

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import stripe
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from stripe.params import PaymentIntentCreateParams

from core.errors import DomainError
from core.money import ZERO
from invoices.card_gateway import (
    CARD_MINIMUM_AMOUNT,
    card_payments_enabled,
    from_ore,
    stripe_client,
    to_ore,
)
from invoices.models import (
    CARD_PAYMENT_STATUS_RANK,
    CARD_REFUND_STATUS_RANK,
    OPEN_STATUSES,
    CardPayment,
    CardPaymentStatus,
    CardRefund,
    CardRefundStatus,
    DocumentKind,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    StripeEvent,
    SurplusMove,
    SurplusMoveKind,
)
from invoices.services.payments import (
    invoice_balance,
    invoice_status_follow,
    payment_book_on_invoice,
)

logger = logging.getLogger(__name__)

STOCKHOLM = ZoneInfo("Europe/Stockholm")

# What a PaymentIntent's status means for our attempt. The PaymentIntent is confirmed when it
# is made, so "requires_payment_method" afterwards means the card was declined.
INTENT_STATUS: dict[str, str] = {
    "requires_payment_method": CardPaymentStatus.FAILED,
    "requires_confirmation": CardPaymentStatus.CREATED,
    "requires_action": CardPaymentStatus.REQUIRES_ACTION,
    "processing": CardPaymentStatus.PROCESSING,
    "requires_capture": CardPaymentStatus.PROCESSING,
    "succeeded": CardPaymentStatus.SUCCEEDED,
    "canceled": CardPaymentStatus.FAILED,
}
REFUND_STATUS: dict[str, str] = {
    "pending": CardRefundStatus.PENDING,
    "requires_action": CardRefundStatus.PENDING,
    "succeeded": CardRefundStatus.SUCCEEDED,
    "failed": CardRefundStatus.FAILED,
    "canceled": CardRefundStatus.CANCELED,
}
# The events applied; any other is logged and ignored.
HANDLED_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.processing",
        "payment_intent.requires_action",
        "payment_intent.canceled",
        "charge.refunded",
        "charge.refund.updated",
        "refund.created",
        "refund.updated",
        "refund.failed",
    }
)
# Our idempotency keys in the metadata of what we make at Stripe: an event about an object
# whose id we did not get to save (the answer was lost) still finds its attempt or refund. The
# key, not the row's id: it is unique beyond this database (a test or staging system on the same
# Stripe account never finds our rows).
ATTEMPT_KEY = "touchpoint_card_payment"
REFUND_KEY = "touchpoint_card_refund"
# An attempt in one of these may still take the money: a second click reuses it.
LIVE = Q(
    status__in=[
        CardPaymentStatus.CREATED,
        CardPaymentStatus.REQUIRES_ACTION,
        CardPaymentStatus.PROCESSING,
    ]
) | Q(status=CardPaymentStatus.SUCCEEDED, payment__isnull=True)


def _today() -> date:
    return timezone.localdate(timezone=STOCKHOLM)


def _unavailable(error: stripe.StripeError) -> DomainError:
    logger.warning("Stripe did not answer as expected: %s", error.__class__.__name__)
    return DomainError(
        code="card_payment_unavailable",
        message="The card payment service did not answer. Please try again in a moment.",
    )


# --- paying ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardPaymentStarted:
    attempt: CardPayment
    # Only while the card holder must confirm with their bank (3-D Secure): what Stripe.js needs
    # to ask them. Never stored (Stripe asks that it is not).
    client_secret: str = ""


def card_payment_start(*, invoice_id: int, card_token: str) -> CardPaymentStarted:
    """Pay what is open on the invoice with the card behind ``card_token`` (from Stripe.js),
    or report the attempt already under way for that amount.

    Raises ``DomainError``: ``card_payments_off`` (no Stripe keys), ``invoice_not_payable``
    (nothing open), ``card_amount_too_small`` (below Stripe's minimum), ``card_token_missing``,
    ``card_payment_unavailable`` (Stripe did not answer: the attempt keeps its key, and trying
    again sends the same request). A declined card is no error: the attempt comes back
    ``failed`` with the bank's words."""
    if not card_payments_enabled():
        raise DomainError(code="card_payments_off", message="Card payment is not offered.")
    attempt = _attempt_take(invoice_id=invoice_id, card_token=card_token)
    if attempt.status == CardPaymentStatus.CREATED:
        return _attempt_send(attempt)
    if attempt.status == CardPaymentStatus.REQUIRES_ACTION and attempt.payment_intent_id:
        # the card holder left their bank's question unanswered: ask it again, unless the
        # PaymentIntent has moved on meanwhile (then the click starts afresh)
        intent_id = attempt.payment_intent_id
        try:
            intent = stripe_client().v1.payment_intents.retrieve(intent_id)
        except stripe.StripeError as error:
            raise _unavailable(error) from error
        attempt = _intent_record(intent.to_dict())
        if attempt.status == CardPaymentStatus.REQUIRES_ACTION:
            return CardPaymentStarted(attempt=attempt, client_secret=intent.client_secret or "")
        if attempt.status == CardPaymentStatus.FAILED:
            return card_payment_start(invoice_id=invoice_id, card_token=card_token)
    return CardPaymentStarted(attempt=attempt)


@transaction.atomic
def _attempt_take(*, invoice_id: int, card_token: str) -> CardPayment:
    """The live attempt for what is open now, or a new one with a fresh key, committed before
    Stripe hears of it. The invoice's row lock makes two clicks at once take turns."""
    invoice = Invoice.objects.select_for_update().get(id=invoice_id)
    if invoice.kind != DocumentKind.INVOICE or invoice.status not in OPEN_STATUSES:
        raise DomainError(code="invoice_not_payable", message="Nothing is open on this invoice.")
    open_amount = invoice_balance(invoice).open
    if open_amount <= ZERO:
        raise DomainError(code="invoice_not_payable", message="Nothing is open on this invoice.")
    if open_amount < CARD_MINIMUM_AMOUNT:
        raise DomainError(
            code="card_amount_too_small",
            message=f"Card payments start at {CARD_MINIMUM_AMOUNT} kr.",
        )
    live = (
        CardPayment.objects.select_for_update()
        .filter(LIVE, invoice=invoice, amount=open_amount)
        .order_by("-id")
        .first()
    )
    if live is not None:
        return live
    if not card_token:
        raise DomainError(code="card_token_missing", message="No card was given.")
    now = timezone.now()
    return CardPayment.objects.create(
        invoice=invoice,
        amount=open_amount,
        currency=invoice.currency,
        idempotency_key=uuid.uuid4().hex,
        card_token=card_token[:64],
        created_at=now,
        updated_at=now,
    )


# How a payment method's id begins (a card token's begins "tok_").
PAYMENT_METHOD_PREFIX = "pm_"


def _card_of_customer(client: Any, attempt: CardPayment, description: str) -> str:
    """A tokenised card (Stripe's card Element, ``tok_…``) on a Stripe customer made for the
    attempt (the attempt's key, suffixed): a PaymentIntent takes such a card only as a card
    of a customer."""
    if not attempt.stripe_customer_id:
        customer = client.v1.customers.create(
            params={"source": attempt.card_token, "description": description},
            options={"idempotency_key": f"{attempt.idempotency_key}-customer"},
        )
        attempt.stripe_customer_id = customer.id
        attempt.updated_at = timezone.now()
        attempt.save(update_fields=["stripe_customer_id", "updated_at"])
    else:
        customer = client.v1.customers.retrieve(attempt.stripe_customer_id)
    return str(customer.default_source)


def _attempt_send(attempt: CardPayment) -> CardPaymentStarted:
    """Ask Stripe for the PaymentIntent, confirmed with the card, under the attempt's key.

    The card is a payment method from Stripe's Payment Element (``pm_…``), or a card token
    from its card Element (``tok_…``, put on a customer first). Called without any
    transaction open: the key is committed, and no row is locked while Stripe is asked."""
    client = stripe_client()
    invoice = Invoice.objects.select_related("series").get(id=attempt.invoice_id)
    metadata = {
        ATTEMPT_KEY: attempt.idempotency_key,
        "touchpoint_invoice": invoice.display_number,
    }
    description = f"Invoice {invoice.display_number}"
    try:
        if attempt.card_token.startswith(PAYMENT_METHOD_PREFIX):
            # from Stripe's Payment Element (stripe.createPaymentMethod): a payment method
            # the PaymentIntent takes as it is
            payment_method = attempt.card_token
        else:
            payment_method = _card_of_customer(client, attempt, description)
        params: PaymentIntentCreateParams = {
            "amount": to_ore(attempt.amount),
            "currency": attempt.currency.lower(),
            "payment_method": payment_method,
            # a card only, so no redirect can be asked for and no return URL is needed
            # (in the pinned API version, STRIPE_API_VERSION)
            "payment_method_types": ["card"],  # type: ignore[typeddict-unknown-key]
            "confirm": True,
            "metadata": metadata,
        }
        if attempt.stripe_customer_id:
            params["customer"] = attempt.stripe_customer_id
        intent = client.v1.payment_intents.create(
            params=params, options={"idempotency_key": attempt.idempotency_key}
        )
    except stripe.CardError as error:
        return CardPaymentStarted(attempt=_attempt_refused(attempt, error))
    except stripe.InvalidRequestError as error:
        # a token used already or expired, or an amount Stripe will not take: this attempt is
        # over, the next click starts another one
        logger.warning("Stripe refused card payment %s: %s", attempt.id, error.code)
        return CardPaymentStarted(attempt=_attempt_refused(attempt, error))
    except stripe.StripeError as error:
        raise _unavailable(error) from error
    recorded = _intent_record(intent.to_dict())
    secret = intent.client_secret if recorded.status == CardPaymentStatus.REQUIRES_ACTION else ""
    return CardPaymentStarted(attempt=recorded, client_secret=secret or "")


@transaction.atomic
def _attempt_refused(attempt: CardPayment, error: stripe.StripeError) -> CardPayment:
    """Stripe said no (a declined card): the attempt fails with the bank's code and words."""
    Invoice.objects.select_for_update().filter(id=attempt.invoice_id).first()
    locked = CardPayment.objects.select_for_update().get(id=attempt.id)
    body = error.json_body.get("error") if isinstance(error.json_body, Mapping) else None
    body = body if isinstance(body, Mapping) else {}
    intent = body.get("payment_intent") or {}
    if isinstance(intent, Mapping) and intent.get("id") and not locked.payment_intent_id:
        locked.payment_intent_id = str(intent["id"])
    if CARD_PAYMENT_STATUS_RANK[CardPaymentStatus.FAILED] > CARD_PAYMENT_STATUS_RANK[locked.status]:
        locked.status = CardPaymentStatus.FAILED
        locked.failure_code = str(body.get("decline_code") or error.code or "")[:60]
        locked.failure_message = str(error.user_message or "")[:300]
    locked.updated_at = timezone.now()
    locked.save(
        update_fields=[
            "payment_intent_id",
            "status",
            "failure_code",
            "failure_message",
            "updated_at",
        ]
    )
    return locked


def _intent_record(intent: Mapping[str, Any]) -> CardPayment:
    """What Stripe answered about a PaymentIntent, as an event would say it (never booking
    anything: money is booked from events only)."""
    _intent_apply(intent, occurred_at=timezone.now(), book=False)
    found = _attempt_of(intent)
    assert found is not None  # noqa: S101 (an intent we just made names its attempt)
    return found


def _our_key(obj: Mapping[str, Any], name: str) -> str:
    metadata = obj.get("metadata")
    value = metadata.get(name) if isinstance(metadata, Mapping) else None
    return value if isinstance(value, str) else ""


def _attempt_of(intent: Mapping[str, Any]) -> CardPayment | None:
    """The attempt a PaymentIntent belongs to: by its id, or by our id in its metadata (its
    id was not saved when Stripe's answer was lost)."""
    found = CardPayment.objects.filter(payment_intent_id=intent["id"]).first()
    if found is None and (key := _our_key(intent, ATTEMPT_KEY)):
        found = CardPayment.objects.filter(idempotency_key=key).first()
    return found


@transaction.atomic
def _intent_apply(intent: Mapping[str, Any], *, occurred_at: datetime, book: bool = True) -> str:
    """A PaymentIntent's state applied to its attempt; its money booked once when it has
    succeeded (``book``). Returns the outcome: applied, or ignored (not ours, or nothing new).

    A PaymentIntent other than the attempt's own (a second one under the same attempt, which
    Stripe's idempotency never makes but a server without it could) moves nothing of the
    attempt, yet money it took is booked all the same: it was received."""
    found = _attempt_of(intent)
    if found is None:
        return "ignored"
    invoice = Invoice.objects.select_for_update().get(id=found.invoice_id)
    attempt = CardPayment.objects.select_for_update().get(id=found.id)
    intent_id = str(intent["id"])
    fields = ["status", "failure_code", "failure_message", "updated_at"]
    if not attempt.payment_intent_id:
        attempt.payment_intent_id = intent_id
        fields.append("payment_intent_id")
    own = attempt.payment_intent_id == intent_id
    outcome = "ignored"
    status = INTENT_STATUS.get(str(intent.get("status")), attempt.status)
    if own and CARD_PAYMENT_STATUS_RANK[status] > CARD_PAYMENT_STATUS_RANK[attempt.status]:
        attempt.status = status
        outcome = "applied"
        error = intent.get("last_payment_error") or {}
        if status == CardPaymentStatus.FAILED and isinstance(error, Mapping):
            attempt.failure_code = str(error.get("decline_code") or error.get("code") or "")[:60]
            attempt.failure_message = str(error.get("message") or "")[:300]
    if book and intent.get("status") == "succeeded":
        payment = _intent_book(invoice, intent, occurred_at)
        if payment is not None:
            outcome = "applied"
            if own and attempt.payment_id is None:
                attempt.payment = payment
                fields.append("payment")
                _refunds_book_waiting(invoice, attempt, occurred_at)
    attempt.updated_at = timezone.now()
    attempt.save(update_fields=fields)
    return outcome


def _intent_book(
    invoice: Invoice, intent: Mapping[str, Any], occurred_at: datetime
) -> Payment | None:
    """Book the money of a succeeded PaymentIntent on its invoice, once (None when it is
    booked already). Precondition: the invoice is locked."""
    source_key = f"stripe:{intent['id']}"
    if Payment.objects.filter(source_key=source_key).exists():
        return None
    received = intent.get("amount_received") or intent.get("amount") or 0
    return payment_book_on_invoice(
        invoice=invoice,
        method=PaymentMethod.CARD,
        amount=from_ore(int(received)),
        currency=str(intent.get("currency") or invoice.currency).upper(),
        paid_on=timezone.localdate(occurred_at, timezone=STOCKHOLM),
        source_key=source_key,
        reference=str(intent["id"]),
    )


# --- Stripe's events -----------------------------------------------------------------------------


def stripe_event_apply(*, event: Mapping[str, Any], via: str) -> str:
    """Apply one (signature-checked) Stripe event, once: applied, waiting (a refund whose
    payment is not booked yet), ignored (not ours, or nothing new), or duplicate (its id was
    applied before, or by a delivery at the same moment, which then committed first)."""
    event_id = str(event["id"])
    now = timezone.now()
    try:
        with transaction.atomic():
            # first, so that a second delivery of the same event waits here on the unique
            # index until this one commits, and then finds it
            logged = StripeEvent.objects.create(
                event_id=event_id,
                type=str(event["type"])[:100],
                created=datetime.fromtimestamp(int(event["created"]), tz=UTC),
                received_at=now,
                outcome="",
                via=via,
            )
            outcome = _event_effect(event, occurred_at=logged.created)
            logged.outcome = outcome
            logged.applied_at = timezone.now()
            logged.save(update_fields=["outcome", "applied_at"])
    except IntegrityError:
        if StripeEvent.objects.filter(event_id=event_id).exists():
            return "duplicate"
        raise
    return outcome


def _event_effect(event: Mapping[str, Any], *, occurred_at: datetime) -> str:
    kind = str(event["type"])
    obj = (event.get("data") or {}).get("object") or {}
    if kind not in HANDLED_EVENTS or not isinstance(obj, Mapping) or "id" not in obj:
        return "ignored"
    if kind.startswith("payment_intent."):
        return _intent_apply(obj, occurred_at=occurred_at)
    if obj.get("object") == "refund":
        return _refund_apply(obj, occurred_at=occurred_at)
    # charge.refunded: the charge, with its refunds
    refunds = (obj.get("refunds") or {}).get("data") or []
    outcomes = {_refund_apply(refund, occurred_at=occurred_at) for refund in refunds}
    for outcome in ("applied", "waiting"):
        if outcome in outcomes:
            return outcome
    return "ignored"


@dataclass(frozen=True)
class CatchUp:
    listed: int  # events of the kinds we apply, in the window
    known: int  # applied before (their webhook came)
    applied: int  # applied now
    ignored: int


def stripe_events_catch_up(*, days: int) -> CatchUp:
    """Read Stripe's events of the last ``days`` and apply those not applied yet: what a
    webhook that never reached us (or whose answer was lost) would have done. Safe to run any
    number of times. Stripe keeps events for 30 days and retries a webhook for three."""
    since = int((timezone.now() - timedelta(days=days)).timestamp())
    listing = stripe_client().v1.events.list(params={"created": {"gte": since}, "limit": 100})
    events = [
        event.to_dict() for event in listing.auto_paging_iter() if event.type in HANDLED_EVENTS
    ]
    ids = [str(event["id"]) for event in events]
    known: set[str] = set()
    for start in range(0, len(ids), 1000):
        known.update(
            StripeEvent.objects.filter(event_id__in=ids[start : start + 1000]).values_list(
                "event_id", flat=True
            )
        )
    applied = ignored = 0
    for event in sorted(events, key=lambda e: (int(e["created"]), str(e["id"]))):
        if event["id"] in known:
            continue
        outcome = stripe_event_apply(event=event, via="catch_up")
        if outcome in {"applied", "waiting"}:
            applied += 1
        elif outcome == "ignored":
            ignored += 1
    return CatchUp(listed=len(events), known=len(known), applied=applied, ignored=ignored)


# --- refunds -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundPreview:
    """What giving back ``amount`` of a card payment would do, shown before it is done."""

    payment: Payment
    attempt: CardPayment
    amount: Decimal
    refundable: Decimal  # what of the payment is not given back (or on its way) yet
    from_surplus: Decimal  # taken from what the payment had beyond the invoice
    open_after: Decimal  # on the invoice, once the refund is booked
    status_after: str

    @property
    def status_after_label(self) -> str:
        return str(InvoiceStatus(self.status_after).label)


def card_refund_preview(*, payment_id: int, amount: Decimal) -> RefundPreview:
    """Raises ``DomainError`` when that much of the payment cannot go back to the card."""
    payment = Payment.objects.select_related("invoice__series").get(id=payment_id)
    return _refund_preview(payment, amount)


def card_refundable(payment: Payment) -> Decimal:
    """What of a card payment can still go back to the card: its amount less the refunds
    that are not failed or canceled, and less what of its surplus a credit balance has spent
    on the customer's other invoices (that money pays them now). One query; nothing for a
    payment that is not a card payment."""
    if payment.amount <= ZERO:
        return ZERO
    given_back = (
        CardRefund.objects.filter(card_payment__payment=payment)
        .exclude(status__in=[CardRefundStatus.FAILED, CardRefundStatus.CANCELED])
        .aggregate(s=Sum("amount"))["s"]
        or ZERO
    )
    return max(payment.amount - given_back - payment.surplus_used, ZERO)


def _refund_preview(payment: Payment, amount: Decimal) -> RefundPreview:
    attempt = CardPayment.objects.filter(payment=payment).first()
    if attempt is None or payment.status != PaymentStatus.BOOKED or payment.invoice is None:
        raise DomainError(
            code="not_a_card_payment",
            message="Only a card payment booked on an invoice goes back to the card.",
        )
    refundable = card_refundable(payment)
    if amount <= ZERO or amount > refundable:
        raise DomainError(
            code="refund_amount_invalid",
            message=f"At most {refundable} kr of this payment can go back to the card.",
        )
    invoice = payment.invoice
    balance = invoice_balance(invoice)
    # (what of the surplus a credit balance has not spent yet: the rest pays other invoices)
    from_surplus = min(payment.surplus - payment.surplus_used, amount)
    paid_after = balance.paid - (amount - from_surplus)
    open_after = max(balance.total + balance.charged - balance.credited - paid_after, ZERO)
    return RefundPreview(
        payment=payment,
        attempt=attempt,
        amount=amount,
        refundable=refundable,
        from_surplus=from_surplus,
        open_after=open_after,
        status_after=_status_after_refund(invoice, open_after, paid_after),
    )


def _status_after_refund(invoice: Invoice, still_open: Decimal, paid: Decimal) -> str:
    """An invoice's status once money of it went back to the card: with money open again, a
    paid (or partly paid) invoice is overdue after its due date, else partly paid while
    payments still pay some of it, else issued. Overdue, in collection and credited stay."""
    movable = {InvoiceStatus.PAID, InvoiceStatus.PARTLY_PAID, InvoiceStatus.ISSUED}
    if still_open <= ZERO or invoice.status not in movable:
        return invoice.status
    if invoice.due_date < _today():
        return InvoiceStatus.OVERDUE
    return InvoiceStatus.PARTLY_PAID if paid > ZERO else InvoiceStatus.ISSUED


def card_refund_request(
    *, payment_id: int, amount: Decimal, by: User, idempotency_key: str, reason: str = ""
) -> CardRefund:
    """Give ``amount`` of a booked card payment back to the card, through Stripe.

    ``idempotency_key`` comes with the confirmation (the admin's form): the same key, sent
    again (a double click, a retry after a timeout), finds the same refund and sends Stripe the
    same request with it, so the money goes back once. Raises ``DomainError`` as
    ``card_refund_preview`` does, and ``card_refund_unavailable`` when Stripe did not answer
    (confirming again retries with the same key)."""
    if not card_payments_enabled():
        raise DomainError(code="card_payments_off", message="Card payment is not set up.")
    refund = _refund_take(
        payment_id=payment_id, amount=amount, by=by, key=idempotency_key, reason=reason
    )
    if refund.status != CardRefundStatus.CREATED:
        return refund
    attempt = CardPayment.objects.get(id=refund.card_payment_id)
    try:
        answer = stripe_client().v1.refunds.create(
            params={
                "payment_intent": str(attempt.payment_intent_id),
                "amount": to_ore(refund.amount),
                "metadata": {REFUND_KEY: str(refund.idempotency_key)},
            },
            options={"idempotency_key": str(refund.idempotency_key)},
        )
    except stripe.InvalidRequestError as error:
        _refund_refused(refund.id, str(error.code or "invalid_request"))
        raise DomainError(
            code="card_refund_refused", message=f"Stripe refused the refund: {error.user_message}"
        ) from error
    except stripe.StripeError as error:
        logger.warning("Stripe did not answer a refund: %s", error.__class__.__name__)
        raise DomainError(
            code="card_refund_unavailable",
            message="Stripe did not answer. Confirm again to retry: nothing is refunded twice.",
        ) from error
    _refund_apply(answer.to_dict(), occurred_at=timezone.now())
    return CardRefund.objects.get(id=refund.id)


@transaction.atomic
def _refund_take(
    *, payment_id: int, amount: Decimal, by: User, key: str, reason: str
) -> CardRefund:
    """The refund of this key, or a new one checked against what is left to give back, under
    the invoice's lock (two refunds at once cannot give back more than was paid)."""
    earlier = CardRefund.objects.filter(idempotency_key=key).first()
    if earlier is not None:
        return earlier
    payment = Payment.objects.get(id=payment_id)
    if payment.invoice_id is not None:
        Invoice.objects.select_for_update().filter(id=payment.invoice_id).first()
    payment = Payment.objects.select_related("invoice__series").get(id=payment_id)
    preview = _refund_preview(payment, amount)
    return CardRefund.objects.create(
        card_payment=preview.attempt,
        amount=amount,
        idempotency_key=key,
        reason=reason[:300],
        requested_by=by,
        requested_at=timezone.now(),
    )


@transaction.atomic
def _refund_refused(refund_id: int, code: str) -> None:
    refund = CardRefund.objects.select_for_update().get(id=refund_id)
    if refund.status == CardRefundStatus.CREATED:
        refund.status, refund.failure_reason = CardRefundStatus.FAILED, code[:120]
        refund.save(update_fields=["status", "failure_reason"])


def _refund_of(obj: Mapping[str, Any]) -> CardRefund | None:
    found = CardRefund.objects.filter(stripe_refund_id=obj["id"]).first()
    if found is None and (key := _our_key(obj, REFUND_KEY)):
        found = CardRefund.objects.filter(idempotency_key=key).first()
    return found


@transaction.atomic
def _refund_apply(obj: Mapping[str, Any], *, occurred_at: datetime) -> str:
    """A Stripe refund's state applied to ours (made here from the first event of a refund
    made in Stripe's dashboard): booked once when it has succeeded and its payment is booked
    (else it waits for the payment), and booked back if it fails afterwards."""
    intent_id = obj.get("payment_intent")
    attempt = (
        CardPayment.objects.filter(payment_intent_id=str(intent_id)).first() if intent_id else None
    )
    if attempt is None:
        return "ignored"
    invoice = Invoice.objects.select_for_update().get(id=attempt.invoice_id)
    attempt = CardPayment.objects.select_for_update().get(id=attempt.id)
    found = _refund_of(obj)
    if found is None:
        refund = CardRefund.objects.create(
            card_payment=attempt,
            amount=from_ore(int(obj.get("amount") or 0)),
            stripe_refund_id=str(obj["id"]),
            reason="Made in Stripe",
            requested_at=timezone.now(),
        )
    else:
        refund = CardRefund.objects.select_for_update().get(id=found.id)
    fields = ["stripe_refund_id", "status", "failure_reason", "booked"]
    refund.stripe_refund_id = refund.stripe_refund_id or str(obj["id"])
    outcome = "ignored"
    status = REFUND_STATUS.get(str(obj.get("status")), refund.status)
    if CARD_REFUND_STATUS_RANK[status] > CARD_REFUND_STATUS_RANK[refund.status]:
        refund.status = status
        refund.failure_reason = str(obj.get("failure_reason") or "")[:120]
        outcome = "applied"
    if refund.status == CardRefundStatus.SUCCEEDED and refund.booked_id is None:
        if attempt.payment_id is None:
            outcome = "waiting"  # booked with its payment (``_refunds_book_waiting``)
        else:
            _refund_book(invoice, attempt, refund, occurred_at)
            outcome = "applied"
    elif (
        refund.status in {CardRefundStatus.FAILED, CardRefundStatus.CANCELED}
        and refund.booked_id is not None
        and _refund_book_back(invoice, refund, occurred_at)
    ):
        outcome = "applied"
    refund.save(update_fields=fields)
    return outcome


def _refunds_book_waiting(invoice: Invoice, attempt: CardPayment, occurred_at: datetime) -> None:
    """The refunds that came before their payment was booked, booked now after it."""
    waiting = CardRefund.objects.select_for_update().filter(
        card_payment=attempt, status=CardRefundStatus.SUCCEEDED, booked__isnull=True
    )
    for refund in waiting.order_by("id"):
        _refund_book(invoice, attempt, refund, occurred_at)
        refund.save(update_fields=["booked"])


def _refund_book(
    invoice: Invoice, attempt: CardPayment, refund: CardRefund, occurred_at: datetime
) -> None:
    """Book a refund as a negative payment on the invoice: what the card payment had beyond
    the invoice (its surplus) goes first, then what paid the invoice, which has that open
    again. Precondition: invoice, attempt and refund are locked; the caller saves ``booked``."""
    assert attempt.payment_id is not None  # noqa: S101 (callers book refunds of booked payments)
    original = Payment.objects.select_for_update().get(id=attempt.payment_id)
    now = timezone.now()
    refund.booked = Payment.objects.create(
        invoice=invoice,
        status=PaymentStatus.BOOKED,
        method=PaymentMethod.CARD,
        amount=-refund.amount,
        currency=original.currency,
        paid_on=timezone.localdate(occurred_at, timezone=STOCKHOLM),
        booked_at=now,
        reference=str(refund.stripe_refund_id or "")[:35],
        source_key=f"stripe-refund:{refund.stripe_refund_id}",
    )
    # only what of its surplus a credit balance has not spent (the rest paid other invoices)
    from_surplus = min(original.surplus - original.surplus_used, refund.amount)
    if from_surplus:
        original.surplus -= from_surplus
        original.save(update_fields=["surplus"])
        SurplusMove.objects.create(
            payment=original,
            kind=SurplusMoveKind.REFUND,
            amount=-from_surplus,
            moved_on=refund.booked.paid_on,
            refund=refund.booked,
            created_at=now,
        )
    balance = invoice_balance(invoice)
    invoice_status_follow(
        invoice=invoice, status=_status_after_refund(invoice, balance.open, balance.paid)
    )


def _refund_book_back(invoice: Invoice, refund: CardRefund, occurred_at: datetime) -> bool:
    """A booked refund that failed afterwards (the card could not take the money): the money
    is ours again, booked as a payment on the invoice like any other (once)."""
    source_key = f"stripe-refund-failed:{refund.stripe_refund_id}"
    if Payment.objects.filter(source_key=source_key).exists():
        return False
    payment_book_on_invoice(
        invoice=invoice,
        method=PaymentMethod.CARD,
        amount=refund.amount,
        currency=invoice.currency,
        paid_on=timezone.localdate(occurred_at, timezone=STOCKHOLM),
        source_key=source_key,
        reference=str(refund.stripe_refund_id or ""),
    )
    return True
