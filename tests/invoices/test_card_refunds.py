"""Giving card payments back: finance staff review, then confirm; the refund goes through
Stripe under a saved idempotency key, and the invoice has that money open again."""

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import stripe
import time_machine
from django.contrib.auth.models import Permission, User
from django.test import Client

from core.errors import DomainError
from invoices.card_gateway import stripe_client
from invoices.models import (
    CardPayment,
    CardRefund,
    CardRefundStatus,
    InvoiceStatus,
    Payment,
)
from invoices.services.card_payments import (
    card_payment_start,
    card_refund_request,
    stripe_event_apply,
)
from invoices.services.payments import bgmax_import, invoice_balance
from tests import localstripe
from tests.billing.bgmax_files import Deposit, File, Paid, bgmax_file

pytestmark = pytest.mark.django_db

BEFORE_DUE = datetime(2026, 11, 20, 12, tzinfo=UTC)  # the October invoice is due 1 December
AFTER_DUE = datetime(2026, 12, 5, 12, tzinfo=UTC)


@pytest.fixture
def card_payment(client: Client, stripe_on, invoice) -> Payment:
    """The invoice paid in full by card, booked from Stripe's event."""
    attempt = card_payment_start(invoice_id=invoice.id, card_token=localstripe.card_token()).attempt
    localstripe.deliver(
        client, localstripe.event_of("payment_intent.succeeded", str(attempt.payment_intent_id))
    )
    return Payment.objects.get(card_payment=attempt)


@pytest.fixture
def finance(client: Client) -> Client:
    user = User.objects.create_user("finance", password="pw-for-tests-1", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_cardrefund", "view_payment"])
    )
    client.force_login(user)
    return client


def refund_url(payment: Payment) -> str:
    return f"/admin/invoices/payment/{payment.id}/refund/"


def stripe_refunds(payment: Payment) -> list[stripe.Refund]:
    intent = CardPayment.objects.get(payment=payment).payment_intent_id
    return stripe_client().v1.refunds.list(params={"payment_intent": str(intent)}).data


@time_machine.travel(BEFORE_DUE, tick=True)
def test_finance_staff_give_part_of_a_card_payment_back_after_a_review(
    finance: Client, card_payment, invoice
) -> None:
    # the payments list links to the refund of a card payment
    listed = finance.get("/admin/invoices/payment/").content.decode()
    assert refund_url(card_payment) in listed
    page = finance.get(refund_url(card_payment)).content.decode()
    assert "Högst 299,00 kr av den kan betalas tillbaka till kortet." in page
    key = page.split('name="key" value="')[1].split('"')[0]
    # when they ask for 100 kr, they read what it does before anything is done
    review = finance.post(refund_url(card_payment), {"amount": "100,00", "key": key})
    text = review.content.decode()
    assert "100,00 kr betalas tillbaka till kundens kort via Stripe." in text
    assert (
        f"Faktura {invoice.display_number} har sedan 100,00 kr öppet och är Delvis betald." in text
    )
    assert not CardRefund.objects.exists()
    assert stripe_refunds(card_payment) == []
    # when they confirm, Stripe gives it back and the invoice has it open again
    done = finance.post(
        refund_url(card_payment),
        {"amount": "100.00", "key": key, "reason": "Dubbeldebiterad", "confirmed": "True"},
    )
    assert done.status_code == 302
    refund = CardRefund.objects.get()
    assert (refund.amount, refund.status, refund.idempotency_key) == (
        Decimal("100.00"),
        CardRefundStatus.SUCCEEDED,
        key,
    )
    assert refund.requested_by.username == "finance"
    (at_stripe,) = stripe_refunds(card_payment)
    assert (at_stripe.id, at_stripe.amount) == (refund.stripe_refund_id, 10000)
    assert refund.booked.amount == Decimal("-100.00")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PARTLY_PAID
    assert invoice_balance(invoice).open == Decimal("100.00")
    # the same confirmation again (a second click) gives nothing back twice
    finance.post(
        refund_url(card_payment),
        {"amount": "100.00", "key": key, "reason": "Dubbeldebiterad", "confirmed": "True"},
    )
    assert CardRefund.objects.count() == 1
    assert len(stripe_refunds(card_payment)) == 1


@time_machine.travel(AFTER_DUE, tick=True)
def test_a_paid_invoice_given_back_in_full_after_its_due_date_is_overdue(
    finance: Client, card_payment, invoice
) -> None:
    admin_user = User.objects.get(username="finance")
    card_refund_request(
        payment_id=card_payment.id, amount=invoice.total, by=admin_user, idempotency_key="k-1"
    )
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OVERDUE
    assert invoice_balance(invoice).open == invoice.total


@time_machine.travel(BEFORE_DUE, tick=True)
def test_a_refund_takes_what_the_payment_had_beyond_the_invoice_first(
    client: Client, stripe_on, invoice
) -> None:
    attempt = card_payment_start(invoice_id=invoice.id, card_token=localstripe.card_token()).attempt
    bgmax_import(data=bgmax_file(File([Deposit([Paid(10000, invoice.ocr)])])), name="a.txt")
    localstripe.deliver(
        client, localstripe.event_of("payment_intent.succeeded", str(attempt.payment_intent_id))
    )
    card = Payment.objects.get(card_payment=attempt)
    assert card.surplus == Decimal("100.00")
    user = User.objects.create(username="f")
    card_refund_request(payment_id=card.id, amount=Decimal("100.00"), by=user, idempotency_key="k")
    card.refresh_from_db()
    invoice.refresh_from_db()
    # the 100 kr paid twice went back: the invoice stays paid
    assert (card.surplus, invoice.status) == (Decimal("0.00"), InvoiceStatus.PAID)
    assert invoice_balance(invoice).open == 0


def test_no_more_than_was_paid_goes_back(finance: Client, card_payment) -> None:
    page = finance.post(refund_url(card_payment), {"amount": "300,00", "key": "k"})
    assert "At most 299.00 kr of this payment can go back to the card." in page.content.decode()
    assert not CardRefund.objects.exists()
    user = User.objects.get(username="finance")
    card_refund_request(
        payment_id=card_payment.id, amount=Decimal("200.00"), by=user, idempotency_key="a"
    )
    with pytest.raises(DomainError, match=r"At most 99\.00 kr"):
        card_refund_request(
            payment_id=card_payment.id, amount=Decimal("100.00"), by=user, idempotency_key="b"
        )


def test_only_staff_allowed_to_refund_may(client: Client, card_payment) -> None:
    clerk = User.objects.create_user("clerk", password="pw-for-tests-1", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client.force_login(clerk)
    assert client.get(refund_url(card_payment)).status_code == 403
    posted = client.post(
        refund_url(card_payment), {"amount": "10.00", "key": "k", "confirmed": "True"}
    )
    assert posted.status_code == 403
    assert not CardRefund.objects.exists()


def test_a_bankgiro_payment_has_no_card_refund(finance: Client, stripe_on, invoice) -> None:
    bgmax_import(data=bgmax_file(File([Deposit([Paid(10000, invoice.ocr)])])), name="a.txt")
    bankgiro = Payment.objects.get()
    answer = finance.post(refund_url(bankgiro), {"amount": "10,00", "key": "k"})
    assert "Only a card payment booked on an invoice goes back to the card." in (
        answer.content.decode()
    )


def test_a_refund_stripe_did_not_answer_is_sent_again_with_the_same_key(
    card_payment, monkeypatch
) -> None:
    from stripe._refund_service import RefundService

    create = RefundService.create
    sent: list[str] = []

    def times_out_first(self, params=None, options=None):
        sent.append(options["idempotency_key"])
        if len(sent) == 1:
            raise stripe.APIConnectionError("Request timed out")
        return create(self, params, options)

    monkeypatch.setattr(RefundService, "create", times_out_first)
    user = User.objects.create(username="f")
    with pytest.raises(DomainError) as unavailable:
        card_refund_request(
            payment_id=card_payment.id, amount=Decimal("50.00"), by=user, idempotency_key="key-1"
        )
    assert unavailable.value.code == "card_refund_unavailable"
    assert CardRefund.objects.get().status == CardRefundStatus.CREATED
    refund = card_refund_request(
        payment_id=card_payment.id, amount=Decimal("50.00"), by=user, idempotency_key="key-1"
    )
    assert sent == ["key-1", "key-1"]
    assert refund.status == CardRefundStatus.SUCCEEDED
    assert CardRefund.objects.count() == 1


def test_a_refund_event_after_the_refund_was_booked_books_nothing_more(card_payment) -> None:
    user = User.objects.create(username="f")
    refund = card_refund_request(
        payment_id=card_payment.id, amount=Decimal("50.00"), by=user, idempotency_key="k"
    )
    at_stripe = stripe_client().v1.refunds.retrieve(str(refund.stripe_refund_id))
    event = {
        "id": "evt_refund_updated",
        "type": "refund.updated",
        "created": int(time.time()),
        "data": {"object": at_stripe.to_dict()},
    }
    assert stripe_event_apply(event=event, via="webhook") == "ignored"
    assert Payment.objects.filter(amount__lt=0).count() == 1


def test_a_booked_refund_that_fails_afterwards_is_booked_back(card_payment, invoice) -> None:
    user = User.objects.create(username="f")
    refund = card_refund_request(
        payment_id=card_payment.id, amount=Decimal("50.00"), by=user, idempotency_key="k"
    )
    failed = stripe_client().v1.refunds.retrieve(str(refund.stripe_refund_id)).to_dict()
    failed.update(status="failed", failure_reason="expired_or_canceled_card")
    event = {
        "id": "evt_refund_failed",
        "type": "refund.failed",
        "created": int(time.time()),
        "data": {"object": failed},
    }
    assert stripe_event_apply(event=event, via="webhook") == "applied"
    refund.refresh_from_db()
    invoice.refresh_from_db()
    assert (refund.status, refund.failure_reason) == ("failed", "expired_or_canceled_card")
    assert invoice.status == InvoiceStatus.PAID
    assert invoice_balance(invoice).open == 0


@time_machine.travel(BEFORE_DUE, tick=True)
def test_what_a_credit_balance_spent_of_a_card_payment_does_not_go_back_to_the_card(
    finance: Client, card_payment, invoice
) -> None:
    # given the card payment's 299 kr made the customer's credit balance (the invoice was
    # credited) and November's invoice was paid from it
    from invoices.services.bill_run import bill_run_execute, bill_run_start
    from invoices.services.credit_notes import credit_note_issue

    credit_note_issue(invoice_id=invoice.id, reason="Fel kund")
    card_payment.refresh_from_db()
    assert card_payment.surplus == Decimal("299.00")
    bill_run_execute(
        bill_run_id=bill_run_start(
            period=datetime(2026, 11, 1).date(), invoice_date=datetime(2026, 12, 1).date()
        ).id
    )
    card_payment.refresh_from_db()
    assert card_payment.surplus_used == Decimal("299.00")
    # then none of it can go back to the card: it pays November
    page = finance.get(refund_url(card_payment)).content.decode()
    assert "Högst 0,00 kr av den kan betalas tillbaka till kortet." in page
    with pytest.raises(DomainError) as refused:
        card_refund_request(
            payment_id=card_payment.id,
            amount=Decimal("1.00"),
            by=User.objects.get(username="finance"),
            idempotency_key="k-spent",
        )
    assert refused.value.code == "refund_amount_invalid"
    assert not CardRefund.objects.exists()
