"""A customer pays an invoice by card on a phone and sees it turn paid without a reload:
Debian Chromium through Playwright against the ASGI server (``asgi_live_server``), the card
form from localstripe's stand-in Stripe.js, the payment confirmed at localstripe, and its
result delivered by localstripe's own webhook (signed with the test secret) to our endpoint,
which books it and tells the page over its socket. With axe-core audits of the page before,
during (all but the card field, which is Stripe's: an iframe of its own in production) and
after.

Run with ``pytest -m browser``. Without /usr/bin/chromium or localstripe these tests skip
locally and fail in CI. Screenshots are written to /tmp/card-*.png.
"""

import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from invoices.models import CardPayment, Invoice, InvoiceStatus, Payment, StripeEvent
from invoices.services.links import invoice_link_create
from tests import localstripe
from tests.chat.conftest import issue_october
from tests.e2e.conftest import SCREENSHOTS, audit, text_of
from tests.factories import SubscriptionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 15_000


@pytest.fixture
def invoice() -> tuple[Invoice, str]:
    """An October invoice of 299 kr and a live link to it."""
    SubscriptionFactory(agreed_monthly_price=Decimal("299.00"), customer__name="Anna")
    (issued,) = issue_october()
    return issued, invoice_link_create(invoice=issued)


@pytest.fixture
def stripe_webhook(stripe_on: str, asgi_live_server: str) -> Iterator[str]:
    """localstripe delivers its events to the test server's webhook while the test runs."""
    localstripe.webhook_deliver_to(stripe_on, f"{asgi_live_server}/webhooks/stripe/")
    yield stripe_on
    localstripe.webhook_stop(stripe_on)


def _wait_until(page, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_MS / 1000
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(50)


def test_customer_pays_by_card_and_the_page_turns_paid_without_reload(
    asgi_live_server, stripe_webhook, phone, invoice
) -> None:
    issued, token = invoice
    frames: list[str] = []
    phone.on("websocket", lambda socket: socket.on("framereceived", lambda f: frames.append(f)))

    # given the customer has the invoice open on a phone: 299 kr to pay, by card too
    phone.goto(f"{asgi_live_server}/i/{token}/?lang=en")
    phone.evaluate("window.sameDocument = true")  # gone if the page reloads
    summary = phone.locator("#summary")
    assert text_of(summary.locator("p.status")) == "Status: Not paid yet"
    opener = phone.get_by_role("button", name="Pay 299.00 kr by card")
    opener.wait_for()
    assert audit(phone) == []

    # when they choose to pay by card, Stripe's card field appears
    opener.click()
    field = phone.locator("#card-element")
    field.locator("input").first.wait_for()
    assert opener.get_attribute("aria-expanded") == "true"
    assert audit(phone, {"exclude": [["#card-element"]]}) == []
    phone.screenshot(path=str(SCREENSHOTS / "card-form.png"), full_page=True)

    # and they type their card and pay
    field.get_by_placeholder("number").fill(localstripe.VISA)
    field.get_by_placeholder("exp_month").fill("12")
    field.get_by_placeholder("exp_year").fill("30")
    field.get_by_placeholder("cvc").fill("123")
    phone.get_by_role("button", name="Pay 299.00 kr", exact=True).click()

    # then the page thanks them at once, and turns paid when Stripe's event is booked
    status = summary.locator("p.status")
    _wait_until(phone, lambda: text_of(status) == "Status: Paid", "the summary to say paid")
    assert phone.evaluate("window.sameDocument") is True  # no reload
    assert any('"payments_changed"' in frame for frame in frames)  # heard over the socket
    assert "Nothing to pay. Thank you!" in text_of(summary)
    assert phone.locator("#card-pay").count() == 0  # no way to pay any more
    said = phone.get_by_role("status").filter(
        has_text="Your invoice was updated: a payment was booked."
    )
    said.wait_for(state="attached")  # said to a screen reader too
    phone.screenshot(path=str(SCREENSHOTS / "card-paid.png"), full_page=True)
    assert audit(phone) == []

    # booked once, from the webhook
    issued.refresh_from_db()
    attempt = CardPayment.objects.get()
    assert issued.status == InvoiceStatus.PAID
    assert Payment.objects.get().source_key == f"stripe:{attempt.payment_intent_id}"
    assert StripeEvent.objects.filter(via="webhook", outcome="applied").count() == 1


def _type_card(page, number: str) -> None:
    field = page.locator("#card-element")
    field.get_by_placeholder("number").fill(number)
    field.get_by_placeholder("exp_month").fill("12")
    field.get_by_placeholder("exp_year").fill("30")
    field.get_by_placeholder("cvc").fill("123")


def test_a_declined_card_is_said_and_a_card_the_bank_asks_about_pays_after_confirming(
    asgi_live_server, stripe_webhook, phone, invoice
) -> None:
    _issued, token = invoice
    # given the customer pays on the Swedish page with a card that is declined
    phone.goto(f"{asgi_live_server}/i/{token}/")
    phone.get_by_role("button", name="Betala 299,00 kr med kort").click()
    phone.locator("#card-element input").first.wait_for()
    _type_card(phone, localstripe.DECLINED)
    phone.get_by_role("button", name="Betala 299,00 kr", exact=True).click()
    # then the page says so, in Swedish, and they may try again
    refusal = phone.get_by_role("alert")
    refusal.wait_for()
    assert text_of(refusal) == (
        "Kortbetalningen gick inte igenom. Försök igen eller använd ett annat kort."
    )
    assert phone.locator("#card-submit").is_enabled()

    # when they use a card whose bank asks them to confirm, and they confirm
    _type_card(phone, localstripe.THREE_D_SECURE)
    phone.get_by_role("button", name="Betala 299,00 kr", exact=True).click()
    phone.get_by_role("button", name="Complete authentication").click()  # Stripe's dialog

    # then the invoice turns paid without a reload
    status = phone.locator("#summary p.status")
    _wait_until(phone, lambda: text_of(status) == "Status: Betald", "the summary to say paid")
    assert CardPayment.objects.filter(status="succeeded").count() == 1
    assert Payment.objects.count() == 1
