"""A customer who cannot pay by the due date, on a phone: postpones the payment from the
invoice page, and disputes a line, which opens the chat with the line quoted. Debian
Chromium through Playwright against the ASGI server (the chat's socket), with an axe-core
audit of every page they see.

Run with ``pytest -m browser``. Without /usr/bin/chromium these tests skip locally and fail
in CI (``tests.conftest.require``). Screenshots are written to /tmp/ways-out-*.png.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from chat.models import Author, Conversation, Message
from dunning.models import Dispute, Postponement
from invoices.models import Invoice
from invoices.page import long_date
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.links import invoice_link_create
from tests.dunning.ways_out_fixtures import seeded_policy  # noqa: F401
from tests.e2e.conftest import PHONE, SCREENSHOTS, audit, text_of
from tests.factories import SubscriptionFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("seeded_policy"),
]


@pytest.fixture
def anna() -> tuple[Invoice, str]:
    """Anna's invoice for last month (299 kr), issued on the first of this month, and a live
    link to it."""
    today = timezone.localdate()
    first = today.replace(day=1)
    period = (first - timedelta(days=1)).replace(day=1)
    sub = SubscriptionFactory(
        agreed_monthly_price=Decimal("299.00"),
        customer__name="Anna Andersson",
        customer__language="en",
        label="Anna",
    )
    run = bill_run_start(period=period, invoice_date=first)
    bill_run_execute(bill_run_id=run.id)
    invoice = Invoice.objects.get(customer=sub.customer)
    return invoice, invoice_link_create(invoice=invoice)


def english(day) -> str:
    with translation.override("en"):
        return long_date(day)


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_customer_postpones_the_payment_on_a_phone(asgi_live_server, phone, anna) -> None:
    invoice, token = anna
    latest = invoice.due_date + timedelta(days=30)
    chosen = invoice.due_date + timedelta(days=14)
    assert phone.viewport_size == PHONE

    # given the invoice open on a phone
    phone.goto(f"{asgi_live_server}/i/{token}/?lang=en")
    more_time = phone.get_by_role("region", name="Need more time?")
    more_time.wait_for()
    assert f"to {english(latest)} at the latest" in text_of(more_time)
    assert audit(phone, "#more-time") == []
    phone.screenshot(path=str(SCREENSHOTS / "ways-out-1-invoice.png"), full_page=True)

    # when they choose a new due date
    more_time.get_by_role("link", name="Choose a new due date").click()
    phone.wait_for_url("**/postpone/?lang=en")
    heading = phone.get_by_role("heading", name="Postpone the payment", level=1)
    heading.wait_for()
    # then the page says the window and the terms before anything is decided, on a phone
    assert "The postponement is free." in text_of(phone.locator("main"))
    assert _fits(phone)
    assert audit(phone) == []
    phone.screenshot(path=str(SCREENSHOTS / "ways-out-2-postpone.png"), full_page=True)
    assert not Postponement.objects.exists()

    # when they pick a day two weeks on and confirm
    phone.get_by_label("New due date").fill(chosen.isoformat())
    phone.get_by_role("button", name="Confirm the new due date").click()

    # then the receipt says the new due date and the terms
    phone.wait_for_url("**/postpone/done/?lang=en")
    receipt = phone.get_by_role("heading", level=1)
    assert text_of(receipt) == f"Your new due date is {english(chosen)}"
    assert "Done. The payment is postponed. We have sent you the terms." in text_of(
        phone.locator("main")
    )
    assert _fits(phone)
    assert audit(phone) == []
    phone.screenshot(path=str(SCREENSHOTS / "ways-out-3-receipt.png"), full_page=True)
    postponement = Postponement.objects.get()
    assert postponement.new_due_date == chosen

    # and back on the invoice, the new due date is the one asked for
    phone.get_by_role("link", name="Back to the invoice").first.click()
    phone.wait_for_url(f"**/i/{token}/?lang=en#more-time")
    assert f"You have postponed the payment to {english(chosen)}." in text_of(
        phone.get_by_role("region", name="Need more time?")
    )
    assert f"Due date {english(chosen)}" in text_of(phone.locator(".summary .due"))


def test_customer_disputes_a_line_and_the_chat_opens_with_it_quoted(
    asgi_live_server, phone, anna
) -> None:
    invoice, token = anna
    line = invoice.lines.get(kind="fee")
    title = line.text("en")["title"]

    # given the invoice open on a phone
    phone.goto(f"{asgi_live_server}/i/{token}/?lang=en")

    # when they say they do not recognise the line
    phone.get_by_role("link", name=f"I don’t recognise this ({title}, 299.00 kr)").click()
    phone.wait_for_url(f"**/dispute/{line.id}/?lang=en")
    main = phone.locator("main")
    assert title in text_of(main)
    assert "No reminder asks for these 299.00 kr while customer support looks into it." in (
        text_of(main)
    )
    assert _fits(phone)
    assert audit(phone) == []
    phone.screenshot(path=str(SCREENSHOTS / "ways-out-4-dispute.png"), full_page=True)
    phone.get_by_label("What is wrong? A few words are enough.").fill(
        "I cancelled this subscription in August"
    )
    phone.get_by_role("button", name="Send and pause the reminders").click()

    # then the invoice's chat opens with their words under the quoted line
    phone.wait_for_url(f"**/i/{token}/?lang=en#chat")
    chat = phone.get_by_role("region", name="Chat with customer support")
    log = chat.get_by_role("log", name="Messages")
    mine = log.locator("li.chat-msg-customer")
    mine.wait_for()
    assert text_of(mine).endswith(
        f"About the line: {title} 299.00 kr I cancelled this subscription in August"
    )
    said = text_of(log.locator("li.chat-msg-system"))
    assert "No reminder asks for this amount while customer support looks into it" in said
    assert audit(phone, "#chat") == []
    phone.screenshot(path=str(SCREENSHOTS / "ways-out-5-chat.png"), full_page=True)
    # and the page says what is disputed, and the agents' queue has the conversation
    assert f"“{title}”, 299.00 kr" in text_of(phone.get_by_role("region", name="Need more time?"))
    dispute = Dispute.objects.get()
    conversation = Conversation.objects.get(invoice=invoice)
    assert dispute.conversation_id == conversation.id
    assert list(
        Message.objects.filter(conversation=conversation).values_list("author", flat=True)
    ) == [Author.CUSTOMER, Author.SYSTEM]
