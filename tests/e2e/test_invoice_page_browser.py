"""A customer reads an invoice on a phone: Debian Chromium through Playwright, and axe-core.

Run with ``pytest -m browser``. Without /usr/bin/chromium these tests skip locally and fail
in CI (``tests.conftest.require``). A screenshot of each language is written to /tmp.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from invoices.models import Invoice
from invoices.page import long_date
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.links import invoice_link_create
from tests.e2e.conftest import PHONE, SCREENSHOTS, audit, text_of
from tests.factories import SubscriptionFactory, UsageRecordFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def _bill(period: date) -> None:
    run = bill_run_start(period=period, invoice_date=period.replace(day=28) + timedelta(days=4))
    bill_run_execute(bill_run_id=run.id)


@pytest.fixture
def october_link() -> tuple[Invoice, str, date]:
    """A 10 GB plan: 8 GB in September, 14.2 GB in October (5 started GB beyond at 29 kr)."""
    binding_end = timezone.localdate() + timedelta(days=100)
    sub = SubscriptionFactory(label="Anna", binding_end=binding_end)
    for day, mb in (
        (datetime(2026, 9, 10, tzinfo=UTC), "8192"),
        (datetime(2026, 10, 5, tzinfo=UTC), "14540.8"),
    ):
        UsageRecordFactory(subscription=sub, quantity=Decimal(mb), occurred_at=day)
    _bill(date(2026, 9, 1))
    _bill(date(2026, 10, 1))
    invoice = Invoice.objects.get(customer=sub.customer, period_start=date(2026, 10, 1))
    return invoice, invoice_link_create(invoice=invoice), binding_end


def test_customer_reads_the_invoice_on_a_phone_and_switches_language(
    live_server, phone, october_link
):
    invoice, token, binding_end = october_link
    requests: list[str] = []
    phone.on("request", lambda request: requests.append(request.url))

    # given the customer opens the link from the SMS on a phone
    phone.goto(f"{live_server.url}/i/{token}/")

    # then they read what to pay, the lines and when the binding period ends, in Swedish
    assert phone.locator("html").get_attribute("lang") == "sv"
    assert text_of(phone.locator(".amount-value")) == "444,00 kr"
    lines = phone.get_by_role("region", name="Vad du betalar och varför")
    for line in invoice.lines.all():
        assert line.text("sv")["title"] in text_of(lines)
    binding = text_of(phone.get_by_role("region", name="Bindningstid och uppsägning"))
    with translation.override("sv"):
        assert f"Din bindningstid slutar {long_date(binding_end)}." in binding
    assert "100 dagar kvar" in binding
    assert "145,00 kr mer än förra månaden" in text_of(phone.locator("main"))
    # nothing wider than the phone, nothing loaded from anywhere else
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.screenshot(path=SCREENSHOTS / "page.png", full_page=True)
    assert audit(phone) == []

    # when they switch to English
    phone.get_by_role("link", name="English").click()
    phone.wait_for_load_state()

    # then the same invoice reads in English, and passes the audit too
    assert phone.locator("html").get_attribute("lang") == "en"
    assert text_of(phone.locator(".amount-value")) == "444.00 kr"
    assert phone.get_by_role("heading", name="What you pay and why").is_visible()
    assert "100 days left" in text_of(phone.locator("main"))
    phone.screenshot(path=SCREENSHOTS / "page-en.png", full_page=True)
    assert audit(phone) == []
    assert all(url.startswith(live_server.url) for url in requests), requests


def test_the_invoice_reads_without_javascript(live_server, browser, october_link):
    _invoice, token, _binding_end = october_link
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}/i/{token}/?lang=en")
    assert text_of(page.locator(".amount-value")) == "444.00 kr"
    page.get_by_text("Show the figures as a table").click()  # <details> opens without script
    assert page.get_by_role("table", name="Usage per month").is_visible()
    context.close()


def test_not_found_page_passes_the_audit(live_server, phone):
    phone.goto(f"{live_server.url}/i/{'x' * 43}/")
    assert phone.get_by_role("heading", name="Vi hittade inte fakturan").is_visible()
    assert audit(phone) == []


def test_a_family_invoice_with_roaming_and_a_credit_note_passes_the_audit(live_server, phone):
    # given three numbers over six months: one with a discount that ends, one that roams
    # outside the EU/EEA, one that starts in October, and a credit note on October
    from billing.models import Discount
    from invoices.services.credit_notes import credit_note_issue
    from tests.factories import CustomerFactory, PlanFactory, RoamingZoneFactory

    RoamingZoneFactory()
    customer = CustomerFactory(name="Familjen Svensson")
    anna = SubscriptionFactory(customer=customer, label="Anna")
    Discount.objects.create(
        subscription=anna,
        description="Välkomstrabatt",
        monthly_amount=Decimal("50.00"),
        valid_from=date(2026, 1, 1),
        valid_until=date(2026, 9, 30),
    )
    bo = SubscriptionFactory(
        customer=customer,
        label="Bo",
        plan=PlanFactory(
            code="mobil-3",
            name="Mobil 3 GB",
            monthly_fee=Decimal("149.00"),
            data_included_gb=Decimal("3"),
            voice_included_minutes=300,
            sms_included=100,
        ),
    )
    for month in range(5, 11):
        start = datetime(2026, month, 3, tzinfo=UTC)
        UsageRecordFactory(
            subscription=anna, quantity=Decimal(1024 * (5 + month % 4)), occurred_at=start
        )
        UsageRecordFactory(subscription=bo, quantity=Decimal(900 * month // 3), occurred_at=start)
        UsageRecordFactory(
            subscription=bo, kind="voice", quantity=Decimal(60 * 40 * month), occurred_at=start
        )
    UsageRecordFactory(
        subscription=bo,
        quantity=Decimal(120),
        occurred_at=datetime(2026, 10, 9, tzinfo=UTC),
        country="US",
    )
    SubscriptionFactory(customer=customer, label="Cilla", start_date=date(2026, 10, 12))
    for month in range(5, 11):
        _bill(date(2026, month, 1))
    invoice = Invoice.objects.get(customer=customer, period_start=date(2026, 10, 1))
    roaming = invoice.lines.filter(kind="roaming").first()
    credit_note_issue(invoice_id=invoice.id, reason="Roaming debited twice", line_ids=[roaming.id])
    token = invoice_link_create(invoice=invoice)
    # when the page is opened on a phone
    phone.goto(f"{live_server.url}/i/{token}/?lang=en")
    # then it reads, fits the screen and passes the audit
    assert phone.get_by_role("region", name="Credit notes for this invoice").is_visible()
    assert phone.locator(".usage-chart rect").count() == 6
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.screenshot(path=SCREENSHOTS / "page-family.png", full_page=True)
    assert audit(phone) == []
    # and still fits the narrowest phones in use (320 CSS pixels)
    phone.set_viewport_size({"width": 320, "height": 640})
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
