"""A customer takes an offer on a phone, and undoes it: Debian Chromium through Playwright,
with an axe-core audit of the offers part of the invoice page and of the plan pages.

Run with ``pytest -m browser``. Without /usr/bin/chromium these tests skip locally and fail
in CI (``tests.conftest.require``). Screenshots of each step are written to /tmp/offer-*.png.
"""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Consent, PlanChange, PlanChangeStatus, Subscription
from invoices.models import Invoice
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.links import invoice_link_create
from offers.models import Offer, OfferEvent
from offers.services import offers_generate
from tests.e2e.conftest import PHONE, SCREENSHOTS, audit, text_of
from tests.factories import CustomerFactory, SubscriptionFactory, UsageRecordFactory
from tests.offers.page_fixtures import campaigns, catalogue

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _months_before(today: date, count: int) -> list[date]:
    """The first days of the ``count`` complete months before ``today``'s, oldest first."""
    months = []
    first = today.replace(day=1)
    for _ in range(count):
        first = (first - timedelta(days=1)).replace(day=1)
        months.insert(0, first)
    return months


def _billed(plan, *, consent: bool, phone: str = "+46701234567") -> tuple[Invoice, str]:
    """Anna on ``plan``, 2 GB a month for the three months before this one, billed for the
    last of them, offers computed; returns the invoice and a live link."""
    sub = SubscriptionFactory(
        customer=CustomerFactory(name="Anna Andersson", phone=phone),
        plan=plan,
        label="Anna",
        identifier="+46701234567",
        binding_end=None,
        start_date=date(2025, 1, 1),
    )
    months = _months_before(timezone.localdate(), 3)
    for month in months:
        UsageRecordFactory(
            subscription=sub,
            quantity=Decimal(2048),
            occurred_at=datetime(month.year, month.month, 10, 10, tzinfo=UTC),
        )
    if consent:
        Consent.objects.create(
            customer=sub.customer,
            kind="personalised_offers",
            given_at=datetime(2026, 1, 1, tzinfo=UTC),
            source="crm",
        )
    run = bill_run_start(period=months[-1], invoice_date=timezone.localdate().replace(day=1))
    bill_run_execute(bill_run_id=run.id)
    offers_generate(customer_ids=[sub.customer_id])
    invoice = Invoice.objects.get(customer=sub.customer, period_start=months[-1])
    return invoice, invoice_link_create(invoice=invoice)


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_customer_takes_the_offer_on_a_phone_and_undoes_it(live_server, phone):
    # given a light user on Mobil 30 GB with consent, offered Mobil 3 GB
    campaigns()
    plans = catalogue()
    _invoice, token = _billed(plans.large, consent=True)
    offer = Offer.objects.get()
    requests: list[str] = []
    phone.on("request", lambda request: requests.append(request.url))

    # when the customer opens the invoice link in English
    phone.goto(f"{live_server.url}/i/{token}/?lang=en")

    # then the offer shows with its reason and the saving, and passes the audit
    section = phone.get_by_role("region", name="A plan that fits you")
    assert section.is_visible()
    assert offer.reason["en"].replace("\xa0", " ") in text_of(section)
    assert "With your usage you save 200 kr a month, 2,400 kr a year." in text_of(section)
    assert OfferEvent.objects.filter(offer=offer, kind="shown").count() == 1
    phone.screenshot(path=SCREENSHOTS / "offer-page.png", full_page=True)
    section.scroll_into_view_if_needed()
    section.screenshot(path=SCREENSHOTS / "offer-section.png")
    assert _fits(phone)
    assert audit(phone, "#offers") == []

    # when they tap "Change to Mobil 3 GB"
    section.get_by_role("link", name="Change to Mobil 3 GB").click()
    phone.wait_for_load_state()

    # then the confirmation says what changes and from when, before any further click
    assert phone.get_by_role("heading", name="Change to Mobil 3 GB", level=1).is_visible()
    main = text_of(phone.locator("main"))
    assert "−200 kr a month You pay 200 kr less a month." in main
    assert "You can undo the change until" in main
    next_period = phone.get_by_role("radio", name=re.compile("when your next period starts"))
    assert next_period.is_checked()
    assert _fits(phone)
    phone.screenshot(path=SCREENSHOTS / "offer-confirm.png", full_page=True)
    assert audit(phone) == []

    # when they confirm
    phone.get_by_role("button", name="Confirm the change to Mobil 3 GB").click()
    phone.wait_for_load_state()

    # then the receipt says what was changed and offers the undo
    assert phone.get_by_role("heading", name="Your plan change is confirmed").is_visible()
    change = PlanChange.objects.get()
    assert change.requested_via == "invoice_page"
    assert "You get Mobil 3 GB for 199 kr a month from" in text_of(phone.locator("main"))
    assert phone.get_by_role("status").is_visible()  # "Done. We have sent you a receipt …"
    phone.screenshot(path=SCREENSHOTS / "offer-receipt.png", full_page=True)
    assert audit(phone) == []

    # when they change their mind and undo
    phone.get_by_role("button", name="Undo the change").click()
    phone.wait_for_load_state()

    # then the change is undone, and the page says so
    assert phone.get_by_role("heading", name="The change is undone").is_visible()
    assert "You keep Mobil 30 GB for 399 kr a month." in text_of(phone.locator("main"))
    change.refresh_from_db()
    assert change.status == PlanChangeStatus.UNDONE
    phone.screenshot(path=SCREENSHOTS / "offer-undone.png", full_page=True)
    assert audit(phone) == []
    assert token not in phone.content()
    assert all(url.startswith(live_server.url) for url in requests), requests


def test_customer_moves_up_from_the_plan_list_with_the_code_sent_to_the_phone(
    live_server, phone, sms_outbox
):
    # given a customer on Mobil 10 GB without consent
    campaigns()
    plans = catalogue()
    _invoice, token = _billed(plans.medium, consent=False, phone="+46709876567")
    phone.goto(f"{live_server.url}/i/{token}/?lang=sv")

    # then the page gives the general best-tariff information and asks for consent
    section = phone.get_by_role("region", name="Ett abonnemang som passar dig")
    assert section.get_by_role("button", name=re.compile("Använd min användning")).is_visible()
    section.scroll_into_view_if_needed()
    section.screenshot(path=SCREENSHOTS / "offer-section-no-consent.png")
    assert audit(phone, "#offers") == []

    # when they open the plan list and choose the bigger plan
    section.get_by_role("link", name="Se alla abonnemang och priser").click()
    phone.wait_for_load_state()
    assert phone.get_by_role("heading", name="Alla våra abonnemang").is_visible()
    assert _fits(phone)
    phone.screenshot(path=SCREENSHOTS / "offer-plans.png", full_page=True)
    assert audit(phone) == []
    phone.get_by_role("link", name="Välj Mobil 30 GB").click()
    phone.wait_for_load_state()

    # then the price rise is said before any click, and a code is asked for
    assert "+100 kr i månaden Du betalar 100 kr mer i månaden." in text_of(phone.locator("main"))
    phone.get_by_role("button", name="Skicka koden till mig").click()
    phone.wait_for_load_state()
    code = re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1)
    field = phone.get_by_label("Koden (6 siffror)")
    assert field.is_visible()
    phone.screenshot(path=SCREENSHOTS / "offer-code.png", full_page=True)
    assert audit(phone) == []

    # a wrong code is said plainly, next to the field
    field.fill("000000" if code != "000000" else "111111")
    phone.get_by_role("button", name="Bekräfta bytet till Mobil 30 GB").click()
    phone.wait_for_load_state()
    assert "Koden stämmer inte." in text_of(phone.get_by_role("alert"))
    phone.screenshot(path=SCREENSHOTS / "offer-code-wrong.png", full_page=True)
    assert audit(phone) == []
    assert not PlanChange.objects.exists()

    # when the right code is entered, the change is made
    phone.get_by_label("Koden (6 siffror)").fill(code)
    phone.get_by_role("button", name="Bekräfta bytet till Mobil 30 GB").click()
    phone.wait_for_load_state()
    assert phone.get_by_role("heading", name="Ditt byte är bekräftat").is_visible()
    change = PlanChange.objects.get()
    assert (change.to_plan_id, change.to_price) == (plans.large.id, Decimal("399.00"))


def test_customer_chooses_a_binding_period_on_a_phone(live_server, phone, sms_outbox):
    # given a customer on Mobil 30 GB choosing Mobil 10 GB, sold without binding or with 12 or
    # 24 months
    campaigns()
    plans = catalogue()
    _invoice, token = _billed(plans.large, consent=False)
    sub_id = Subscription.objects.get().id
    phone.goto(f"{live_server.url}/i/{token}/change/{sub_id}/{plans.medium.id}/?lang=en")

    # then the binding periods are links, "No binding period" the current one
    choice = phone.get_by_role("list", name="Choose a binding period")
    assert choice.get_by_role("link", name="No binding period").get_attribute("aria-current") == (
        "true"
    )
    assert _fits(phone)
    assert audit(phone) == []

    # when they choose 24 months
    choice.get_by_role("link", name="24 months").click()
    phone.wait_for_load_state()

    # then the page says the new binding end and asks for a code, 24 months marked
    choice = phone.get_by_role("list", name="Choose a binding period")
    assert choice.get_by_role("link", name="24 months").get_attribute("aria-current") == "true"
    main = text_of(phone.locator("main"))
    # (from the next period or today: each says the binding end it gives)
    assert "A new binding period, ending on the date shown" in main
    assert main.count("(binding period until") == 2
    assert "This change adds a binding period, so we confirm it with a code." in main
    phone.screenshot(path=SCREENSHOTS / "offer-binding.png", full_page=True)
    assert audit(phone) == []

    # when they ask for the code and confirm with it
    phone.get_by_role("button", name="Send me the code").click()
    phone.wait_for_load_state()
    assert "binding period of 24 months" in sms_outbox[-1][1]
    code = re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1)
    phone.get_by_label("The code (6 digits)").fill(code)
    phone.get_by_role("button", name="Confirm the change to Mobil 10 GB").click()
    phone.wait_for_load_state()

    # then the change binds the subscription for 24 months
    assert phone.get_by_role("heading", name="Your plan change is confirmed").is_visible()
    change = PlanChange.objects.get()
    assert change.to_binding_end == change.effective_date.replace(
        year=change.effective_date.year + 2
    ) - timedelta(days=1)


def test_form_posts_from_chromium_pass_the_csrf_origin_check_in_the_admin_too(live_server, browser):
    # "Referrer-Policy: no-referrer" made Chromium send "Origin: null" with every form POST,
    # which Django's CSRF check refuses (403): "strict-origin" sends the origin, never a path
    from django.contrib.auth.models import User

    User.objects.create_superuser("finance", "finance@example.se", "a-long-enough-password")
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    origins: list[str | None] = []
    page.on(
        "request",
        lambda request: (
            origins.append(request.headers.get("origin")) if request.method == "POST" else None
        ),
    )
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "finance")
    page.fill("#id_password", "a-long-enough-password")
    page.click("input[type=submit]")
    page.wait_for_load_state()
    assert origins == [live_server.url]
    assert page.url == f"{live_server.url}/admin/"
    context.close()
