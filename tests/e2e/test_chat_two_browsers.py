"""A customer and a support agent talk, each in their own browser: the customer on the invoice
page on a phone, the agent in the console (/support/) on a laptop. Two Chromium contexts
(two people: separate cookies) against the ASGI server (``asgi_live_server``: pages and
websockets), nothing played by calling services: everything is done by clicking and typing.

They exchange messages, the agent credits the line the customer asked about, the customer's
page shows the credit note without a reload, the agent closes the conversation and the
customer rates it. Both pages pass an axe-core audit (serious and critical impacts fail).

Run with ``pytest -m browser``. Without /usr/bin/chromium these tests skip locally and fail
in CI (``tests.conftest.require``). Screenshots are written to /tmp/chat-two-*.png.
"""

import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from chat.models import Conversation, ConversationStatus
from invoices.models import DocumentKind, Invoice
from invoices.services.links import invoice_link_create
from tests.chat.conftest import issue_october
from tests.e2e.conftest import SCREENSHOTS, audit
from tests.factories import SubscriptionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 900}
# The longest anything may take to show, in the same browser or the other one (an upper
# bound for Playwright's auto-waiting expectations, not a wait).
LIVE_MS = 8_000
PASSWORD = "a-long-support-password-1"


@pytest.fixture
def anna() -> tuple[Invoice, str]:
    """Anna's October invoice from a bill run (299 kr and 199.50 kr subscriptions, in
    Swedish: the customer's language) and a live link to it."""
    sub = SubscriptionFactory(
        agreed_monthly_price=Decimal("299.00"), customer__name="Anna Andersson"
    )
    SubscriptionFactory(customer=sub.customer, agreed_monthly_price=Decimal("199.50"))
    (invoice,) = issue_october()
    return invoice, invoice_link_create(invoice=invoice)


@pytest.fixture
def agnes() -> User:
    """A support agent: active staff in the group ``CHAT_SUPPORT_GROUP``."""
    agent = User.objects.create_user("agnes", password=PASSWORD, first_name="Agnes", is_staff=True)
    group, _created = Group.objects.get_or_create(name=settings.CHAT_SUPPORT_GROUP)
    agent.groups.add(group)
    return agent


@pytest.fixture
def laptop(browser):  # type: ignore[no-untyped-def]
    """The agent's browser: a laptop window in English (the console follows the browser)."""
    context = browser.new_context(viewport=LAPTOP, locale="en-GB")
    page = context.new_page()
    yield page
    context.close()


def _notice(page, text: str):
    """The console's notice after an action (a status message at the top of the page)."""
    return page.get_by_role("status").filter(has_text=text)


def test_customer_and_agent_chat_and_a_credit_note_reaches_the_customers_page_live(
    asgi_live_server, phone, laptop, anna, agnes
):
    invoice, token = anna
    line = invoice.lines.get(amount=Decimal("199.50"))
    title = line.text("sv")["title"]
    number = invoice.display_number
    customer, agent = phone, laptop

    # --- given the agent has logged in to the console, with nobody in the queue ------------
    agent.goto(f"{asgi_live_server}/support/")
    expect(agent.get_by_role("heading", name="Log in to the support console")).to_be_visible()
    agent.get_by_label("Username").fill("agnes")
    agent.get_by_label("Password").fill(PASSWORD)
    agent.get_by_role("button", name="Log in").click()
    expect(agent.get_by_role("heading", name="Support console")).to_be_visible()
    expect(agent.locator("#queue-empty")).to_have_text("No open conversations.")
    expect(agent.locator("#connection-status")).to_have_text("Connected", timeout=LIVE_MS)
    agent.evaluate("window.sameDocument = true")  # gone if the page reloads

    # --- and the customer has the invoice open on their phone ------------------------------
    customer.goto(f"{asgi_live_server}/i/{token}/")
    customer.evaluate("window.sameDocument = true")
    expect(customer.locator(".summary .amount")).to_have_text("Att betala 499,00 kr")
    chat = customer.get_by_role("region", name="Chatta med kundtjänst")
    customer_log = chat.get_by_role("log", name="Meddelanden")

    # --- when the customer asks about the 199.50 kr line and sends the question -------------
    customer.get_by_role("link", name=f"Fråga om raden ({title}, 199,50 kr)").click()
    expect(chat.locator("#chat-ask")).to_contain_text(f"Om raden: {title} 199,50 kr")
    chat.get_by_label("Ditt meddelande").fill("Varför betalar jag 199,50 kr för den här?")
    chat.get_by_role("button", name="Skicka", exact=True).click()

    # then it shows in their chat, quoted, waiting for support
    question = customer_log.locator("li.chat-msg-customer")
    expect(question).to_contain_text(f"Om raden: {title} 199,50 kr")
    expect(question).to_contain_text("Varför betalar jag 199,50 kr för den här?")
    expect(chat.locator("#chat-status")).to_contain_text("Väntar på kundtjänst.")

    # and the agent's queue shows the conversation without a reload: waiting, 1 unread
    queue = agent.get_by_role("complementary", name=re.compile(r"^Queue"))
    item = queue.get_by_role("link", name=re.compile("Anna Andersson"))
    expect(item).to_be_visible(timeout=LIVE_MS)
    expect(item).to_contain_text(number)
    expect(item).to_contain_text("Waiting")
    expect(item.locator(".queue-unread")).to_have_text("1 unread")
    expect(agent.locator("#queue-count")).to_have_text("1")
    expect(agent.locator("#queue-empty")).to_be_hidden()
    expect(agent).to_have_title(re.compile(r"^\(1\) "))
    assert agent.evaluate("window.sameDocument") is True

    # --- when the agent opens the conversation --------------------------------------------
    item.click()

    # then they see the question with the line it quotes, highlighted on the invoice beside
    conversation_pane = agent.locator("#conversation")
    expect(agent.get_by_role("heading", level=1)).to_contain_text(
        f"Anna Andersson · invoice {number}"
    )
    expect(agent.locator("#conversation-state")).to_contain_text("Waiting for an agent")
    expect(agent.locator("#conversation-state")).to_contain_text("writes in Swedish")
    asked = agent.locator("#messages li.message-customer")
    expect(asked.locator(".message-quote")).to_contain_text(f"About the line: {title} 199,50 kr")
    expect(asked).to_contain_text("Varför betalar jag 199,50 kr för den här?")
    quoted_line = agent.locator("#invoice-panel li.line-quoted")
    expect(quoted_line).to_have_count(1)
    expect(quoted_line).to_contain_text("199,50 kr")
    expect(quoted_line).to_contain_text("The customer asked about this line.")
    expect(conversation_pane.locator("#composer-locked")).to_contain_text("Claim the conversation")

    # --- when they claim it --------------------------------------------------------------
    agent.get_by_role("button", name="Claim").click()

    # then it is theirs, and the customer sees who answers and that the question is read
    expect(_notice(agent, "The conversation is yours.")).to_be_visible()
    expect(agent.locator("#conversation-state")).to_contain_text("With you")
    expect(chat.locator("#chat-status")).to_have_text(
        "Agnes på kundtjänst svarar dig.", timeout=LIVE_MS
    )
    expect(question.locator(".chat-read")).to_have_text("Läst", timeout=LIVE_MS)

    # --- when the agent starts writing ------------------------------------------------------
    answer_box = agent.get_by_label("Your answer")
    answer_box.fill("Det är månadsavgiften för ditt andra nummer. Jag kollar priset.")

    # then the customer sees that support is writing
    expect(chat.locator("#chat-typing")).to_have_text("Kundtjänst skriver …", timeout=LIVE_MS)

    # --- when the agent sends the answer ----------------------------------------------------
    agent.get_by_role("button", name="Send", exact=True).click()

    # then the customer reads it without a reload, after their question, and "writing" goes
    answer = customer_log.locator("li.chat-msg-agent")
    expect(answer).to_contain_text("Agnes, kundtjänst", timeout=LIVE_MS)
    expect(answer).to_contain_text("Det är månadsavgiften för ditt andra nummer.")
    expect(customer_log.locator("li.chat-msg")).to_have_count(2)
    expect(chat.locator("#chat-typing")).to_have_text("")
    # and the agent's answer is marked read by the customer, whose page has it on screen
    mine = agent.locator("#messages li.message-agent")
    expect(mine).to_contain_text("Det är månadsavgiften")
    expect(mine.locator(".message-receipt")).to_have_text("Read by the customer", timeout=LIVE_MS)
    expect(answer_box).to_have_value("")

    # --- when the customer answers back -------------------------------------------------------
    chat.get_by_label("Ditt meddelande").fill("Jag har bara ett nummer, det ska bort.")
    chat.get_by_role("button", name="Skicka", exact=True).click()

    # then the agent sees it without a reload
    expect(agent.locator("#messages li.message-customer")).to_have_count(2, timeout=LIVE_MS)
    expect(agent.locator("#messages li.message-customer").last).to_contain_text(
        "Jag har bara ett nummer, det ska bort."
    )
    assert customer.evaluate("window.sameDocument") is True

    # --- when the agent credits the line the customer asked about ---------------------------
    quoted_line.get_by_role("link", name="Credit this line…").click()

    # then a review says what is credited, before anything is
    review = agent.locator("#credit-note-form")
    expect(review.locator("#credit-note-summary")).to_contain_text(f"Credit “{title}”")
    expect(review.locator("#credit-note-summary")).to_contain_text(
        "199,50 kr. The credit note is rounded to whole kronor."
    )
    assert not Invoice.objects.filter(kind=DocumentKind.CREDIT_NOTE).exists()
    agent.screenshot(path=SCREENSHOTS / "chat-two-agent-review.png", full_page=True)
    assert audit(agent) == []

    # when they write the reason and confirm
    agent.get_by_label("Reason (the customer reads it on the credit note)").fill(
        "Numret var avslutat."
    )
    agent.get_by_role("button", name=re.compile(r"^Issue the credit note of 199,50")).click()

    # then the console says it is issued, and the chat says so in the customer's language
    # (199.50 kr, rounded to whole kronor as the review said)
    expect(_notice(agent, "The credit note is issued")).to_be_visible()
    note = Invoice.objects.get(kind=DocumentKind.CREDIT_NOTE)
    assert (note.total, note.credit_reason) == (Decimal("-200.00"), "Numret var avslutat.")
    said = agent.locator("#messages li.message-system").last
    expect(said).to_contain_text(
        f"Vi har krediterat 200,00 kr för ”{title}” på faktura {number} "
        f"(kreditfaktura {note.display_number}). Anledning: Numret var avslutat."
    )

    # and the customer's page shows the credit note without a reload
    credit_notes = customer.get_by_role("region", name="Kreditfakturor för den här fakturan")
    expect(credit_notes).to_be_visible(timeout=LIVE_MS)
    expect(credit_notes).to_contain_text(f"Kreditfaktura {note.display_number}")
    expect(credit_notes).to_contain_text("−200,00 kr")
    expect(credit_notes).to_contain_text("Anledning: Numret var avslutat.")
    expect(customer.locator(".credited-note")).to_have_text(
        "Fakturans belopp på 499,00 kr minskas med 200,00 kr genom kreditfakturor."
    )
    expect(customer.locator(".summary .amount")).to_have_text("Att betala 299,00 kr")
    expect(customer.locator(".line-credited")).to_have_text(
        f"Krediterad genom kreditfaktura {note.display_number}"
    )
    expect(chat.locator("#chat-announce")).to_have_text(
        "Din faktura har uppdaterats: en kreditfaktura har lagts till."
    )
    # and the system message about it comes into their chat
    system = customer_log.locator("li.chat-msg-system")
    expect(system).to_contain_text(
        f"Vi har krediterat 200,00 kr för ”{title}” på faktura {number} "
        f"(kreditfaktura {note.display_number}). Anledning: Numret var avslutat.",
        timeout=LIVE_MS,
    )
    # with the chat as it was, on the same page
    expect(customer_log.locator("li.chat-msg")).to_have_count(4)
    expect(customer.locator("#chat")).to_have_count(1)
    assert customer.evaluate("window.sameDocument") is True

    # and both pages pass the audit: the customer's with the chat panel open
    chat.scroll_into_view_if_needed()
    customer.screenshot(path=SCREENSHOTS / "chat-two-customer.png", full_page=True)
    assert audit(customer) == []
    agent.screenshot(path=SCREENSHOTS / "chat-two-agent.png", full_page=True)
    assert audit(agent) == []

    # --- when the agent closes the conversation ---------------------------------------------
    agent.get_by_role("button", name="Close the conversation").click()

    # then the console says so and the queue is empty
    expect(_notice(agent, "The conversation is closed.")).to_be_visible()
    expect(agent.locator("#queue-empty")).to_be_visible()

    # and the customer is told, and asked to rate the conversation, 1 to 5 in words
    expect(chat.locator("#chat-status")).to_have_text("Samtalet är stängt.", timeout=LIVE_MS)
    expect(customer_log.locator("li.chat-msg-system").last).to_contain_text(
        "Samtalet är stängt. Du kan betygsätta det här nedanför."
    )
    rating = chat.get_by_role("group", name="Hur var ditt samtal med kundtjänst?")
    expect(rating).to_be_visible()
    expect(rating.get_by_role("radio")).to_have_count(5)

    # --- when they choose "4 – Good", comment and send --------------------------------------
    rating.get_by_label("4 – Bra").check()
    chat.get_by_label("Något du vill lägga till? (frivilligt)").fill("Snabbt och vänligt.")
    chat.get_by_role("button", name="Skicka betyget").click()

    # then they are thanked, and the rating is stored with the conversation
    expect(chat.locator("#chat-thanks")).to_contain_text("Tack för ditt betyg!")
    expect(rating).to_be_hidden()
    chat.screenshot(path=SCREENSHOTS / "chat-two-customer-rated.png")
    conversation = Conversation.objects.get()
    assert conversation.status == ConversationStatus.CLOSED
    assert conversation.agent_id == agnes.id
    assert (conversation.rating, conversation.rating_comment) == (4, "Snabbt och vänligt.")
    assert customer.evaluate("window.sameDocument") is True
