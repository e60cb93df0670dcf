"""A customer reads an overdue invoice with a reminder fee and interest on a phone: each
charge says why and how to avoid the next one, and the page passes the accessibility audit.

Run with ``pytest -m browser``; skips locally without /usr/bin/chromium, fails in CI.
"""

import importlib
from datetime import date

import pytest
from django.apps import apps

from dunning.services.run import dunning_run
from invoices.services.links import invoice_link_create
from tests.dunning.conftest import make_invoice
from tests.e2e.conftest import SCREENSHOTS, audit, text_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_overdue_invoice_explains_its_fee_and_interest_on_a_phone(live_server, phone) -> None:
    # given the seeded policy (a flush may have removed it) and an invoice two reminders on
    importlib.import_module("dunning.migrations.0002_default_policy").seed(apps, None)
    invoice = make_invoice(agreed_on=date(2025, 1, 1))
    for day in (date(2026, 12, 2), date(2026, 12, 6), date(2026, 12, 21)):
        dunning_run(today=day)
    token = invoice_link_create(invoice=invoice)
    # when the customer opens the link from the reminder
    phone.goto(f"{live_server.url}/i/{token}/")
    # then the amount includes the fee and interest, and each says why
    assert text_of(phone.locator(".amount-value")) == "360,64 kr"
    added = text_of(phone.get_by_role("region", name="Tillagt efter förfallodagen"))
    assert "Påminnelseavgift" in added
    assert "lag 1981:739" in added
    assert "Dröjsmålsränta" in added
    assert "räntelagen § 6" in added
    assert "senast 4 januari 2027" in added
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.screenshot(path=SCREENSHOTS / "page-overdue.png", full_page=True)
    assert audit(phone) == []
