"""An open invoice page learns over its socket that a payment was booked (by card, from a
BgMax file, matched by hand), with or without a chat, and no other invoice's page does."""

from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.utils import timezone

from invoices.models import Payment, PaymentStatus
from invoices.services.links import invoice_link_create
from invoices.services.payments import bgmax_import, payment_match, payment_register
from tests.billing.bgmax_files import Deposit, File, Paid, bgmax_file
from tests.chat.conftest import issue_october
from tests.chat.test_consumers import customer_socket, receive_type
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_invoices():
    for price in ("299.00", "199.00"):
        SubscriptionFactory(agreed_monthly_price=Decimal(price))
    return issue_october()


def test_a_page_without_a_chat_hears_its_bankgiro_payment_and_no_other(two_invoices) -> None:
    mine, theirs = two_invoices
    file = bgmax_file(File([Deposit([Paid(10000, mine.ocr)])]))
    my_link, their_link = invoice_link_create(invoice=mine), invoice_link_create(invoice=theirs)

    async def scenario() -> None:
        socket, other = customer_socket(my_link), customer_socket(their_link)
        assert (await socket.connect())[0]
        assert (await other.connect())[0]
        await receive_type(socket, "hello")
        await receive_type(other, "hello")
        # when a bankgiro file pays 100 kr of the first invoice (booked, committed, announced)
        await database_sync_to_async(bgmax_import)(data=file, name="a.txt")
        # then its page is told, with nothing but the invoice's id
        assert await receive_type(socket, "payments_changed") == {
            "type": "payments_changed",
            "invoice": mine.id,
        }
        assert await other.receive_nothing(timeout=0.3)
        await socket.disconnect()
        await other.disconnect()

    async_to_sync(scenario)()


def test_a_payment_matched_by_hand_reaches_the_invoices_page(two_invoices) -> None:
    mine, _theirs = two_invoices
    bgmax_import(data=bgmax_file(File([Deposit([Paid(5000, "1234567897")])])), name="unknown.txt")
    unmatched = Payment.objects.get(status=PaymentStatus.UNMATCHED)
    clerk = User.objects.create(username="finance")
    link = invoice_link_create(invoice=mine)

    async def scenario() -> None:
        socket = customer_socket(link)
        assert (await socket.connect())[0]
        await receive_type(socket, "hello")
        await database_sync_to_async(payment_match)(
            payment_id=unmatched.id, invoice_id=mine.id, by=clerk
        )
        assert (await receive_type(socket, "payments_changed"))["invoice"] == mine.id
        await socket.disconnect()

    async_to_sync(scenario)()


def test_a_payment_registered_by_hand_reaches_the_invoices_page(two_invoices) -> None:
    mine, _theirs = two_invoices
    link = invoice_link_create(invoice=mine)

    async def scenario() -> None:
        socket = customer_socket(link)
        assert (await socket.connect())[0]
        await receive_type(socket, "hello")
        await database_sync_to_async(payment_register)(
            invoice_id=mine.id,
            amount=Decimal("50.00"),
            paid_on=timezone.localdate(),
            external_id="shop-1",
        )
        assert (await receive_type(socket, "payments_changed"))["invoice"] == mine.id
        await socket.disconnect()

    async_to_sync(scenario)()
