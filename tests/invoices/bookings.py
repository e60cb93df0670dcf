"""Money booked through the real services, as the bank and Stripe deliver it.

- bankgiro: a BgMax file of one payment (``bgmax_import``);
- card payments and refunds: Stripe's events as Stripe sends them, applied by
  ``stripe_event_apply``, so no Stripe server is needed: an attempt with its PaymentIntent's
  id, then "payment_intent.succeeded"; a refund made in Stripe's dashboard, then
  "refund.updated".
"""

import itertools
from datetime import UTC, datetime
from decimal import Decimal

from django.utils import timezone

from invoices.models import CardPayment, CardPaymentStatus, Invoice, Payment
from invoices.services.card_payments import stripe_event_apply
from invoices.services.payments import bgmax_import
from tests.billing.bgmax_files import Deposit, File, Paid, bgmax_file

_serials = itertools.count(1)


def _event(kind: str, obj: dict[str, object], at: datetime | None) -> dict[str, object]:
    created = int((at or timezone.now()).timestamp())
    return {
        "id": f"evt_{next(_serials)}",
        "type": kind,
        "created": created,
        "data": {"object": obj},
    }


def card_paid(invoice: Invoice, kronor: str, *, at: datetime | None = None) -> Payment:
    """``kronor`` paid by card on ``invoice`` (on ``at``'s day, Europe/Stockholm)."""
    n = next(_serials)
    ore = int(Decimal(kronor) * 100)
    now = timezone.now()
    CardPayment.objects.create(
        invoice=invoice,
        amount=Decimal(kronor),
        idempotency_key=f"key-{n}",
        payment_intent_id=f"pi_{n}",
        status=CardPaymentStatus.PROCESSING,
        created_at=now,
        updated_at=now,
    )
    intent = {
        "id": f"pi_{n}",
        "object": "payment_intent",
        "status": "succeeded",
        "amount": ore,
        "amount_received": ore,
        "currency": "sek",
        "metadata": {},
    }
    assert stripe_event_apply(event=_event("payment_intent.succeeded", intent, at), via="webhook")
    return Payment.objects.get(source_key=f"stripe:pi_{n}")


def card_refunded(payment: Payment, kronor: str, *, at: datetime | None = None) -> Payment:
    """``kronor`` of a card payment given back (from Stripe's dashboard): the booked refund."""
    n = next(_serials)
    intent = CardPayment.objects.get(payment=payment).payment_intent_id
    refund = {
        "id": f"re_{n}",
        "object": "refund",
        "payment_intent": intent,
        "amount": int(Decimal(kronor) * 100),
        "status": "succeeded",
        "metadata": {},
    }
    stripe_event_apply(event=_event("refund.updated", refund, at), via="webhook")
    return Payment.objects.get(source_key=f"stripe-refund:re_{n}")


def noon(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 11, tzinfo=UTC)


def bank_paid(reference: str, kronor: str, *, day: str = "20261201") -> Payment:
    """``kronor`` paid by bankgiro with OCR reference ``reference`` (an invoice's, or one that
    names none), on ``day`` (YYYYMMDD): booked on the invoice, or left unmatched."""
    (paid,) = bank_deposit([(reference, kronor)], day=day)
    return paid


def bank_deposit(payments: list[tuple[str, str]], *, day: str = "20261201") -> list[Payment]:
    """One deposit of payments (reference, kronor) by bankgiro on ``day``; a negative amount
    is a bank's deduction."""
    serials = [next(_serials) for _ in payments]
    made = File(
        [
            Deposit(
                [
                    Paid(
                        abs(int(Decimal(kronor) * 100)),
                        reference,
                        serial=f"{n:012d}",
                        deduction=kronor.startswith("-"),
                    )
                    for n, (reference, kronor) in zip(serials, payments, strict=True)
                ],
                serial=f"{serials[0] % 100000:05d}",
                payment_date=day,
            )
        ]
    )
    bgmax_import(data=bgmax_file(made), name=f"{serials[0]}.txt")
    return [
        Payment.objects.get(source_key__contains=f":{n:012d}:{abs(int(Decimal(kronor) * 100))}")
        for n, (_reference, kronor) in zip(serials, payments, strict=True)
    ]
