"""Outgoing webhooks: stored with the change that made them, sent after commit, signed,
retried with backoff for a day, logged, sent again by staff."""

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import time_machine
from django.db import transaction
from django.test import Client
from django.utils import timezone

from billing.services import subscription_save
from chat.services import chat_message_post_customer
from core.errors import DomainError
from core.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from core.webhooks import (
    RETRY_AFTER,
    webhook_deliveries_send_due,
    webhook_endpoint_create,
    webhook_event_emit,
)
from tests.chat.conftest import invoice  # noqa: F401
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


class Receiver:
    """An operator's receiver on a free local port: records each request, answers
    ``status`` (a list: one per request, the last repeating)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses = [200]
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses[min(len(receiver.requests), len(receiver.statuses)) - 1]
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()


def endpoint_at(url: str, *types: str) -> WebhookEndpoint:
    return webhook_endpoint_create(name="ERP", url=url, event_types=types)


def test_an_event_is_sent_after_commit_signed_with_the_endpoints_secret(
    receiver: Receiver, django_capture_on_commit_callbacks
) -> None:
    endpoint = endpoint_at(receiver.url)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event = webhook_event_emit(type="invoice.paid", data={"invoice": 7, "amount": "299.00"})
    assert event is not None
    assert receiver.requests == []  # nothing before commit
    for callback in callbacks:
        callback()
    ((headers, body),) = receiver.requests
    sent = json.loads(body)
    assert sent == {
        "id": f"evt_{event.id}",
        "type": "invoice.paid",
        "created": event.created_at.isoformat(),
        "data": {"invoice": 7, "amount": "299.00"},
    }
    assert headers["Touchpoint-Event-Id"] == f"evt_{event.id}"
    stamp, signature = (
        part.split("=", 1)[1] for part in headers["Touchpoint-Signature"].split(",")
    )
    expected = hmac.new(endpoint.secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(signature, expected.hexdigest())
    assert abs(int(stamp) - timezone.now().timestamp()) < 60
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)


def test_nothing_is_sent_when_the_change_rolls_back(receiver: Receiver) -> None:
    endpoint_at(receiver.url)

    @transaction.atomic
    def a_payment_that_fails() -> None:
        webhook_event_emit(type="invoice.paid", data={"invoice": 7})
        raise RuntimeError("the payment failed")

    with pytest.raises(RuntimeError):
        a_payment_that_fails()
    webhook_deliveries_send_due()
    assert receiver.requests == []
    assert not WebhookEvent.objects.exists()


def test_an_endpoint_hears_only_the_types_it_takes_and_no_endpoint_stores_nothing(
    receiver: Receiver,
) -> None:
    assert webhook_event_emit(type="invoice.paid", data={}) is None
    assert not WebhookEvent.objects.exists()
    endpoint_at(receiver.url, "invoice.overdue")
    assert webhook_event_emit(type="invoice.paid", data={}) is None
    assert webhook_event_emit(type="invoice.overdue", data={"invoice": 1}) is not None
    webhook_deliveries_send_due()
    assert [json.loads(b)["type"] for _h, b in receiver.requests] == ["invoice.overdue"]


def test_a_failing_receiver_is_tried_with_backoff_for_a_day_then_given_up(
    receiver: Receiver,
) -> None:
    receiver.statuses = [500]
    endpoint_at(receiver.url)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        webhook_event_emit(type="invoice.paid", data={"invoice": 7})
        webhook_deliveries_send_due()  # (what the commit's callback does)
        delivery = WebhookDelivery.objects.get()
        waits = []
        while True:
            delivery.refresh_from_db()
            if delivery.status != "pending":
                break
            waits.append(delivery.next_attempt_at - timezone.now())
            assert webhook_deliveries_send_due(now=timezone.now()) == 0  # not due yet
            clock.move_to(delivery.next_attempt_at)
            webhook_deliveries_send_due()
    assert waits == [*RETRY_AFTER, RETRY_AFTER[-1]]  # then the next try is beyond the day
    assert delivery.status == "failed"
    assert delivery.attempts == len(receiver.requests) == len(RETRY_AFTER) + 2
    assert delivery.last_attempt_at - start < timedelta(hours=24)
    assert [entry["status_code"] for entry in delivery.log] == [500] * delivery.attempts


def test_a_receiver_that_recovers_gets_the_event_once(receiver: Receiver) -> None:
    receiver.statuses = [503, 200]
    endpoint_at(receiver.url)
    webhook_event_emit(type="invoice.paid", data={"invoice": 7})
    webhook_deliveries_send_due()
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        webhook_deliveries_send_due()
        webhook_deliveries_send_due()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert len(receiver.requests) == 2


def test_an_unreachable_receiver_is_logged_with_the_reason() -> None:
    endpoint_at("http://127.0.0.1:9/hooks")  # the discard port: nothing listens
    webhook_event_emit(type="invoice.paid", data={"invoice": 7})
    webhook_deliveries_send_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert delivery.last_status_code is None
    assert "Connection refused" in delivery.last_error or "Error" in delivery.last_error


def test_staff_send_a_given_up_delivery_again(
    receiver: Receiver, admin_client: Client, django_capture_on_commit_callbacks
) -> None:
    receiver.statuses = [500, 200]
    endpoint_at(receiver.url)
    webhook_event_emit(type="invoice.paid", data={"invoice": 7})
    webhook_deliveries_send_due()
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(id=delivery.id).update(status="failed", next_attempt_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        page = admin_client.post(
            "/admin/core/webhookdelivery/",
            {"action": "send_again", "_selected_action": [delivery.id]},
            follow=True,
        )
    assert "skickas igen nu" in page.content.decode()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert len(delivery.log) == 2


def test_staff_add_an_endpoint_and_its_secret_is_made(admin_client: Client) -> None:
    admin_client.post(
        "/admin/core/webhookendpoint/add/",
        {
            "name": "ERP",
            "url": "https://erp.example.se/hooks",
            "event_types": ["invoice.paid"],
            "is_active": "on",
        },
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.event_types == ["invoice.paid"]
    refused = admin_client.post(
        "/admin/core/webhookendpoint/add/", {"name": "Bad", "url": "ftp://erp.example.se/"}
    )
    assert refused.status_code == 200
    assert WebhookEndpoint.objects.count() == 1


def test_an_endpoint_is_made_with_a_secret_of_its_own() -> None:
    # when two receivers are added
    first = webhook_endpoint_create(name="ERP", url="https://erp.example.se/hooks")
    second = webhook_endpoint_create(
        name="CRM", url="http://crm.local/in", event_types=["offer.accepted"], is_active=False
    )
    # then each signs with its own secret, of at least 256 random bits
    assert first.secret.startswith("whsec_")
    assert second.secret.startswith("whsec_")
    assert first.secret != second.secret
    assert len(first.secret.removeprefix("whsec_")) >= 43
    stored = WebhookEndpoint.objects.get(id=second.id)
    assert (stored.event_types, stored.is_active, stored.secret) == (
        ["offer.accepted"],
        False,
        second.secret,
    )
    assert first.takes("invoice.paid")
    assert not stored.takes("invoice.paid")


@pytest.mark.parametrize(
    ("url", "types", "code"),
    [
        ("ftp://erp.example.se/", [], "webhook_url_invalid"),
        ("erp.example.se/hooks", [], "webhook_url_invalid"),
        ("https://erp.example.se/", ["invoice.paid", "invoice.lost"], "webhook_event_type_unknown"),
    ],
)
def test_an_endpoint_that_could_not_be_sent_to_is_refused(
    url: str, types: list[str], code: str
) -> None:
    with pytest.raises(DomainError) as refused:
        webhook_endpoint_create(name="Bad", url=url, event_types=types)
    assert refused.value.code == code
    assert not WebhookEndpoint.objects.exists()


def test_changing_an_endpoint_in_the_admin_keeps_its_secret(admin_client: Client) -> None:
    endpoint = webhook_endpoint_create(name="ERP", url="https://erp.example.se/hooks")
    admin_client.post(
        f"/admin/core/webhookendpoint/{endpoint.id}/change/",
        {"name": "ERP 2", "url": "https://erp.example.se/v2", "is_active": "on"},
    )
    changed = WebhookEndpoint.objects.get(id=endpoint.id)
    assert (changed.name, changed.url, changed.secret) == (
        "ERP 2",
        "https://erp.example.se/v2",
        endpoint.secret,
    )


def test_a_new_subscription_and_a_first_chat_message_tell_the_operator(
    receiver: Receiver,
    invoice,  # noqa: F811
) -> None:
    endpoint_at(receiver.url, "subscription.changed", "conversation.opened")
    made = SubscriptionFactory.build(
        customer=invoice.customer,
        plan=SubscriptionFactory(customer=invoice.customer).plan,
        agreed_monthly_price=Decimal("149.00"),
    )
    subscription_save(subscription=made, via="api")
    chat_message_post_customer(invoice_id=invoice.id, body="Hej!")
    chat_message_post_customer(invoice_id=invoice.id, body="Hallå?")  # the same conversation
    webhook_deliveries_send_due()
    sent = [json.loads(body) for _headers, body in receiver.requests]
    assert [(e["type"], e["data"].get("change")) for e in sent] == [
        ("subscription.changed", "created"),
        ("conversation.opened", None),
    ]
    assert sent[0]["data"]["agreed_monthly_price"] == "149.00"
    assert sent[1]["data"]["invoice_number"] == invoice.display_number


def test_each_invoice_a_bill_run_issues_is_told_once(receiver: Receiver) -> None:
    from datetime import date

    from invoices.models import Invoice
    from invoices.services.bill_run import bill_run_execute, bill_run_start

    endpoint_at(receiver.url, "invoice.issued")
    SubscriptionFactory.create_batch(3, agreed_monthly_price=Decimal("199.00"))
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    bill_run_execute(bill_run_id=run.id)
    bill_run_execute(bill_run_id=run.id)  # again: nothing issued, nothing told
    webhook_deliveries_send_due()
    sent = sorted(
        (json.loads(body)["data"] for _h, body in receiver.requests), key=lambda d: d["invoice"]
    )
    invoices = list(Invoice.objects.order_by("id"))
    assert [d["invoice"] for d in sent] == [i.id for i in invoices]
    assert sent[0] | {"invoice": 0} == {
        "invoice": 0,
        "number": invoices[0].display_number,
        "customer": invoices[0].customer.customer_number,
        "period": "2026-10",
        "invoice_date": "2026-11-01",
        "due_date": invoices[0].due_date.isoformat(),
        "total": "199.00",
        "currency": "SEK",
        "ocr": invoices[0].ocr,
    }


def test_an_invoice_paid_by_a_bgmax_file_or_by_hand_is_told_once(receiver: Receiver) -> None:
    from invoices.models import Invoice
    from invoices.services.payments import bgmax_import
    from tests.billing.bgmax_files import Deposit, File, Paid, bgmax_file
    from tests.chat.conftest import issue_october

    endpoint_at(receiver.url, "invoice.paid")
    SubscriptionFactory.create_batch(2, agreed_monthly_price=Decimal("100.00"))
    first, second = issue_october()
    paid = File([Deposit([Paid(10000, first.ocr), Paid(5000, second.ocr, serial="2")])])
    bgmax_import(data=bgmax_file(paid), name="a.txt")
    webhook_deliveries_send_due()
    told = [json.loads(body)["data"] for _h, body in receiver.requests]
    assert [(d["invoice"], d["status"]) for d in told] == [(first.id, "paid")]
    assert Invoice.objects.get(id=second.id).status == "partly_paid"  # not told: not paid
