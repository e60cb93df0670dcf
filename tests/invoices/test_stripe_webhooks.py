"""Stripe's events booking card payments: the webhook's signature check, each event applied
once (duplicates, two deliveries at once), events in any order, and the daily task for events
whose delivery failed. The events are localstripe's own, signed with the test secret."""

import json
import threading
import time
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from invoices.card_gateway import stripe_client
from invoices.models import (
    CardPayment,
    CardPaymentStatus,
    CardRefund,
    CardRefundStatus,
    Invoice,
    InvoiceStatus,
    Payment,
    StripeEvent,
)
from invoices.services.card_payments import card_payment_start, stripe_events_catch_up
from invoices.services.payments import bgmax_import, invoice_balance
from tests import localstripe
from tests.billing.bgmax_files import Deposit, File, Paid, bgmax_file
from tests.chat.conftest import issue_october
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def paid_by_card(invoice: Invoice, number: str = localstripe.VISA) -> CardPayment:
    """A card payment Stripe has taken; its event not delivered yet."""
    return card_payment_start(
        invoice_id=invoice.id, card_token=localstripe.card_token(number)
    ).attempt


def succeeded(attempt: CardPayment) -> dict:
    return localstripe.event_of("payment_intent.succeeded", str(attempt.payment_intent_id))


# --- booking -----------------------------------------------------------------------------------


def test_the_succeeded_event_books_the_payment_once_and_the_invoice_is_paid(
    client: Client, stripe_on, invoice
) -> None:
    attempt = paid_by_card(invoice)
    event = succeeded(attempt)
    answer = localstripe.deliver(client, event)
    assert (answer.status_code, answer.json()) == (200, {"outcome": "applied"})
    payment = Payment.objects.get()
    assert payment.source_key == f"stripe:{attempt.payment_intent_id}"
    assert (payment.method, payment.amount, payment.surplus) == ("card", invoice.total, 0)
    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert (attempt.payment, invoice.status) == (payment, InvoiceStatus.PAID)
    logged = StripeEvent.objects.get()
    assert (logged.event_id, logged.outcome, logged.via) == (event["id"], "applied", "webhook")
    # when Stripe delivers it again, nothing more is booked
    again = localstripe.deliver(client, event)
    assert (again.status_code, again.json()) == (200, {"outcome": "duplicate"})
    assert Payment.objects.count() == 1
    assert StripeEvent.objects.count() == 1


def test_a_payment_beyond_what_is_open_keeps_the_rest_as_surplus(
    client: Client, stripe_on, invoice
) -> None:
    attempt = paid_by_card(invoice)
    # meanwhile the customer also paid 100 kr by bankgiro
    bgmax_import(data=bgmax_file(File([Deposit([Paid(10000, invoice.ocr)])])), name="a.txt")
    localstripe.deliver(client, succeeded(attempt))
    card = Payment.objects.get(method="card")
    assert (card.amount, card.surplus) == (invoice.total, Decimal("100.00"))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert invoice_balance(invoice).paid == invoice.total


def test_a_part_payment_by_card_leaves_the_rest_open(client: Client, stripe_on, invoice) -> None:
    attempt = paid_by_card(invoice)
    event = succeeded(attempt)
    event["data"]["object"]["amount_received"] = 10000  # Stripe took 100 kr of it
    localstripe.deliver(client, event)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PARTLY_PAID
    assert invoice_balance(invoice).open == invoice.total - Decimal("100.00")


def test_an_event_about_someone_elses_payment_intent_is_logged_and_ignored(
    client: Client, stripe_on, invoice
) -> None:
    stripe_client().v1.payment_intents.create(
        params={
            "amount": 5000,
            "currency": "sek",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    (event,) = localstripe.events("payment_intent.succeeded")
    assert localstripe.deliver(client, event).json() == {"outcome": "ignored"}
    assert not Payment.objects.exists()
    assert StripeEvent.objects.get().outcome == "ignored"


def test_a_failed_card_fails_the_attempt(client: Client, stripe_on, invoice) -> None:
    attempt = paid_by_card(invoice, localstripe.DECLINED)
    (event,) = localstripe.events("payment_intent.payment_failed")
    assert localstripe.deliver(client, event).json()["outcome"] in {"applied", "ignored"}
    attempt.refresh_from_db()
    assert attempt.status == CardPaymentStatus.FAILED
    assert attempt.payment_intent_id == event["data"]["object"]["id"]  # found by its key
    assert not Payment.objects.exists()


# --- events in any order -------------------------------------------------------------------------


def test_a_failed_event_after_succeeded_changes_nothing(client: Client, stripe_on, invoice) -> None:
    attempt = paid_by_card(invoice)
    event = succeeded(attempt)
    localstripe.deliver(client, event)
    # a late, older event of the same PaymentIntent saying it failed
    late = json.loads(json.dumps(event))
    late["id"] = "evt_late_failure"
    late["type"] = "payment_intent.payment_failed"
    late["data"]["object"]["status"] = "requires_payment_method"
    assert localstripe.deliver(client, late).json() == {"outcome": "ignored"}
    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert (attempt.status, invoice.status) == (CardPaymentStatus.SUCCEEDED, InvoiceStatus.PAID)
    assert Payment.objects.count() == 1


def test_a_refund_that_comes_before_its_payment_waits_and_is_booked_with_it(
    client: Client, stripe_on, invoice
) -> None:
    # (not yet due whatever day the suite runs: money open again on an invoice past its due
    # date makes it overdue, which test_card_refunds covers)
    Invoice.objects.filter(id=invoice.id).update(due_date=timezone.localdate() + timedelta(days=10))
    invoice.refresh_from_db()
    attempt = paid_by_card(invoice)
    # refunded (in Stripe's dashboard) before the payment's own event reached us
    refund = stripe_client().v1.refunds.create(
        params={"payment_intent": str(attempt.payment_intent_id), "amount": 9900}
    )
    refund_event = {
        "id": "evt_refund_first",
        "type": "charge.refund.updated",
        "created": int(time.time()),
        "data": {"object": refund.to_dict()},
    }
    assert localstripe.deliver(client, refund_event).json() == {"outcome": "waiting"}
    assert not Payment.objects.exists()
    waiting = CardRefund.objects.get()
    assert (waiting.status, waiting.booked, waiting.amount) == (
        CardRefundStatus.SUCCEEDED,
        None,
        Decimal("99.00"),
    )
    # then the payment's event: both are booked, and 99 kr is open again
    assert localstripe.deliver(client, succeeded(attempt)).json() == {"outcome": "applied"}
    waiting.refresh_from_db()
    assert waiting.booked is not None
    assert waiting.booked.amount == Decimal("-99.00")
    invoice.refresh_from_db()
    assert invoice_balance(invoice).open == Decimal("99.00")
    assert invoice.status == InvoiceStatus.PARTLY_PAID


# --- the signature --------------------------------------------------------------------------------


def test_an_event_with_a_wrong_signature_is_refused(client: Client, stripe_on, invoice) -> None:
    event = succeeded(paid_by_card(invoice))
    payload = json.dumps(event).encode()
    forged = localstripe.signature(payload, timestamp=int(time.time()), secret="whsec_other")
    answer = client.post(
        "/webhooks/stripe/", payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=forged
    )
    assert answer.status_code == 400
    assert answer.json() == {"error": "the signature does not match"}
    # and a body changed after signing
    honest = localstripe.signature(payload, timestamp=int(time.time()))
    changed = payload.replace(b'"amount": 29900', b'"amount": 1')
    answer = client.post(
        "/webhooks/stripe/", changed, content_type="application/json", HTTP_STRIPE_SIGNATURE=honest
    )
    assert answer.status_code == 400
    assert not StripeEvent.objects.exists()
    assert not Payment.objects.exists()


def test_an_event_signed_too_long_ago_is_refused(client: Client, stripe_on, invoice) -> None:
    event = succeeded(paid_by_card(invoice))
    answer = localstripe.deliver(client, event, timestamp=int(time.time()) - 301)
    assert (answer.status_code, answer.json()) == (400, {"error": "the signature is too old"})
    assert localstripe.deliver(client, event, timestamp=int(time.time()) - 290).status_code == 200


def test_an_event_signed_in_the_future_is_refused(client: Client, stripe_on, invoice) -> None:
    event = succeeded(paid_by_card(invoice))
    answer = localstripe.deliver(client, event, timestamp=int(time.time()) + 120)
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": "the signature is dated in the future"},
    )
    assert not Payment.objects.exists()


def test_a_request_without_signature_or_that_is_no_event_is_refused(
    client: Client, stripe_on
) -> None:
    unsigned = client.post("/webhooks/stripe/", "{}", content_type="application/json")
    assert unsigned.status_code == 400
    payload = b'{"hello": "world"}'
    header = localstripe.signature(payload, timestamp=int(time.time()))
    not_an_event = client.post(
        "/webhooks/stripe/", payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    assert (not_an_event.status_code, not_an_event.json()) == (
        400,
        {"error": "the body is not a Stripe event"},
    )
    assert client.get("/webhooks/stripe/").status_code == 405


def test_without_a_webhook_secret_there_is_no_webhook(client: Client, settings) -> None:
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert (
        client.post("/webhooks/stripe/", "{}", content_type="application/json").status_code == 404
    )


# --- the daily task -----------------------------------------------------------------------------


def test_the_daily_task_applies_the_events_whose_webhook_never_came(
    client: Client, stripe_on
) -> None:
    from invoices.tasks import stripe_events_catch_up_task

    for price in ("299.00", "199.00"):
        SubscriptionFactory(agreed_monthly_price=Decimal(price))
    first, second = issue_october()
    localstripe.deliver(client, succeeded(paid_by_card(first)))
    lost = paid_by_card(second)  # its webhook never reached us
    stripe_events_catch_up_task.delay()
    lost.refresh_from_db()
    assert lost.payment is not None
    second.refresh_from_db()
    assert second.status == InvoiceStatus.PAID
    assert StripeEvent.objects.get(event_id=succeeded(lost)["id"]).via == "catch_up"
    assert Payment.objects.count() == 2
    # run again: everything is known, nothing is booked twice
    again = stripe_events_catch_up(days=4)
    assert (again.applied, again.known) == (0, again.listed)
    assert Payment.objects.count() == 2


# --- the page learns it ---------------------------------------------------------------------------


def test_booking_tells_the_invoices_open_pages_after_commit(
    client: Client, stripe_on, invoice, django_capture_on_commit_callbacks
) -> None:
    attempt = paid_by_card(invoice)
    with mock.patch("chat.broadcast.send_many") as send_many:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            localstripe.deliver(client, succeeded(attempt))
        assert not send_many.called  # nothing before the commit
        for callback in callbacks:
            callback()
    ((sends,), _kwargs) = send_many.call_args
    assert sends == [
        (
            f"chat.invoice.{invoice.id}",
            {"type": "payments_changed", "invoice": invoice.id},
            "customer",
        )
    ]


# --- concurrency (PostgreSQL) ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_event_at_once_book_it_once(postgres, stripe_on) -> None:
    SubscriptionFactory(agreed_monthly_price=Decimal("299.00"))
    (invoice,) = issue_october()
    event = succeeded(paid_by_card(invoice))
    start = threading.Barrier(2)
    answers: list[dict] = []

    def deliver() -> None:
        try:
            start.wait(timeout=10)
            answers.append(localstripe.deliver(Client(), event).json())
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(answer["outcome"] for answer in answers) == ["applied", "duplicate"]
    assert Payment.objects.count() == 1
    assert StripeEvent.objects.count() == 1
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
