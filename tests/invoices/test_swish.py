"""Paying with Swish from the invoice page: the code and the link carry the payee, the amount
still open and the OCR reference, and none of them can be changed in the app."""

import json
from decimal import Decimal
from urllib.parse import unquote

import pytest
from django.test import Client

from invoices.models import Invoice
from invoices.services.links import invoice_link_create
from invoices.services.payments import bgmax_import
from invoices.swish import swish_payment
from tests.billing.bgmax_files import Deposit, File, Paid, bgmax_file
from tests.chat.conftest import issue_october
from tests.factories import SubscriptionFactory


@pytest.mark.parametrize(
    ("amount", "data"),
    [
        (Decimal("299.00"), "C1231181189;299;10012;0"),
        (Decimal("199.50"), "C1231181189;199.50;10012;0"),
    ],
)
def test_the_code_holds_payee_amount_and_reference_all_locked(amount: Decimal, data: str) -> None:
    swish = swish_payment(swish_number="123 118 11 89", amount=amount, ocr="10012")
    assert swish is not None
    assert swish.qr_data == data


def test_the_app_link_fills_in_the_same_payment_locked() -> None:
    swish = swish_payment(swish_number="1231181189", amount=Decimal("199.50"), ocr="10012")
    assert swish is not None
    assert swish.app_url.startswith("swish://payment?data=")
    data = json.loads(unquote(swish.app_url.split("data=", 1)[1]))
    assert data == {
        "version": 1,
        "payee": {"value": "1231181189", "editable": False},
        "amount": {"value": 199.5, "editable": False},
        "message": {"value": "10012", "editable": False},
    }


def test_no_swish_without_a_number_or_anything_to_pay() -> None:
    assert swish_payment(swish_number="", amount=Decimal("10"), ocr="10012") is None
    assert swish_payment(swish_number="1231181189", amount=Decimal("0"), ocr="10012") is None


def test_the_code_is_an_image_named_for_assistive_technology() -> None:
    swish = swish_payment(swish_number="1231181189", amount=Decimal("10"), ocr="10012")
    assert swish is not None
    svg = swish.qr_svg(title="Swish & pay")
    assert svg.startswith('<svg role="img" aria-label="Swish &amp; pay" ')
    assert "<path" in svg


@pytest.mark.django_db
def test_the_page_offers_swish_for_what_is_left_and_not_once_paid(client: Client) -> None:
    SubscriptionFactory(agreed_monthly_price=Decimal("299.00"))
    (invoice,) = issue_october()
    token = invoice_link_create(invoice=invoice)
    page = client.get(f"/i/{token}/?lang=en").content.decode()
    assert "Or pay with Swish" in page
    assert "%22value%22%3A299.0%2C" in page  # the amount open, in the app link
    assert 'class="swish-qr"' in page
    # when 100 kr is paid by bankgiro, the link asks for the rest
    paid = File([Deposit([Paid(10000, invoice.ocr)])])
    bgmax_import(data=bgmax_file(paid), name="a.txt")
    page = client.get(f"/i/{token}/?lang=en").content.decode()
    assert "%22value%22%3A199.0%2C" in page
    # and once all of it is paid, there is nothing to pay with Swish
    rest = File([Deposit([Paid(19900, invoice.ocr, serial="2")], serial="00002")])
    bgmax_import(data=bgmax_file(rest), name="b.txt")
    invoice = Invoice.objects.get(id=invoice.id)
    assert invoice.status == "paid"
    assert "Or pay with Swish" not in client.get(f"/i/{token}/?lang=en").content.decode()
