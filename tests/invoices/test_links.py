from datetime import date, timedelta

import pytest
import time_machine
from django.utils import timezone

from invoices.models import Invoice, InvoiceLink
from invoices.selectors import invoice_get_by_token
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.links import (
    invoice_link_create,
    invoice_link_url,
    invoice_links_revoke,
)
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice() -> Invoice:
    SubscriptionFactory()
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    bill_run_execute(bill_run_id=run.id)
    return Invoice.objects.get()


def test_a_token_carries_at_least_128_random_bits_and_only_its_hash_is_stored(
    invoice: Invoice,
) -> None:
    token = invoice_link_create(invoice=invoice)
    assert len(token) >= 22  # 128 bits in URL-safe base64; ours carry 256
    stored = list(InvoiceLink.objects.values_list("token_hash", flat=True))
    assert token not in stored
    assert all(token not in h for h in stored)
    assert invoice_get_by_token(token) == invoice


def test_links_are_built_from_the_configured_base_url(settings: object) -> None:
    settings.TOUCHPOINT_BASE_URL = "https://faktura.example.se"  # type: ignore[attr-defined]
    assert invoice_link_url("abc") == "https://faktura.example.se/i/abc/"


def test_an_expired_link_finds_nothing(invoice: Invoice, settings: object) -> None:
    settings.INVOICE_LINK_TTL_DAYS = 10  # type: ignore[attr-defined]
    token = invoice_link_create(invoice=invoice)
    with time_machine.travel(timezone.now() + timedelta(days=10, seconds=1)):
        assert invoice_get_by_token(token) is None


def test_a_revoked_link_finds_nothing_and_a_new_one_works(invoice: Invoice) -> None:
    old = invoice_link_create(invoice=invoice)
    invoice_links_revoke(invoice_id=invoice.id, reason="leaked")
    new = invoice_link_create(invoice=invoice, reason="resent")
    assert invoice_get_by_token(old) is None
    assert invoice_get_by_token(new) == invoice


def test_an_unknown_token_finds_nothing(invoice: Invoice) -> None:
    invoice_link_create(invoice=invoice)
    assert invoice_get_by_token("x" * 43) is None
    assert invoice_get_by_token("") is None
