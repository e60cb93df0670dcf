"""A customer chats with support from the invoice page on a phone: Debian Chromium through
Playwright against the ASGI server (``asgi_live_server``: websockets), with an axe-core audit
of the page with the chat panel open. The agent's side is played by the chat's services,
called in the server's event loop (``asgi_server_call``) so that their broadcasts reach the
browser's socket.

Run with ``pytest -m browser``. Without /usr/bin/chromium these tests skip locally and fail
in CI (``tests.conftest.require``). Screenshots are written to /tmp/chat-*.png.
"""

import json
import re
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import transaction

from chat import broadcast
from chat.models import Conversation, Message
from chat.services import (
    chat_message_post_agent,
    chat_message_post_customer,
    conversation_claim,
    conversation_close,
    conversation_mark_read,
    invoice_changed_announce,
)
from invoices.models import Invoice
from invoices.services.credit_notes import credit_note_issue
from invoices.services.links import invoice_link_create
from tests.chat.conftest import issue_october, make_agent
from tests.e2e.conftest import PHONE, SCREENSHOTS, audit, text_of
from tests.factories import SubscriptionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 10_000


@pytest.fixture
def anna() -> tuple[Invoice, str]:
    """Anna's October invoice (299 kr and 199.50 kr subscriptions) and a live link to it."""
    sub = SubscriptionFactory(agreed_monthly_price=Decimal("299.00"), customer__name="Anna")
    SubscriptionFactory(customer=sub.customer, agreed_monthly_price=Decimal("199.50"))
    (invoice,) = issue_october()
    return invoice, invoice_link_create(invoice=invoice)


@pytest.fixture
def agnes():
    agent = make_agent("agnes")
    agent.first_name = "Agnes"
    agent.save(update_fields=["first_name"])
    return agent


def _frames(page) -> list[dict]:
    """Every frame the page's chat socket receives, as it comes."""
    frames: list[dict] = []

    def on_socket(socket) -> None:
        socket.on("framereceived", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", on_socket)
    return frames


def _wait_until(page, condition: Callable[[], bool], what: str) -> None:
    """Let the page run (its events are handled meanwhile) until ``condition`` holds."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(50)


def test_customer_asks_about_a_line_and_the_answer_comes_live(
    asgi_live_server, asgi_server_call, phone, anna, agnes
):
    invoice, token = anna
    line = invoice.lines.get(amount=Decimal("199.50"))
    title = line.text("en")["title"]
    frames = _frames(phone)
    requests: list[str] = []
    phone.on("request", lambda request: requests.append(request.url))

    # given the customer has the invoice open on a phone
    phone.goto(f"{asgi_live_server}/i/{token}/?lang=en")
    phone.evaluate("window.sameDocument = true")  # gone if the page reloads
    chat = phone.get_by_role("region", name="Chat with customer support")
    field = chat.get_by_label("Your message")

    # when they ask about the 199.50 kr line
    phone.get_by_role("link", name=f"Ask about this line ({title}, 199.50 kr)").click()

    # then the panel quotes the line above the field, which has the focus
    quote = chat.locator("#chat-ask")
    quote.wait_for(state="visible")
    assert text_of(quote).startswith(f"About the line: {title} 199.50 kr")
    assert phone.evaluate("document.activeElement.id") == "chat-body"

    # when they write and send
    field.fill("Why do I pay for this one?")
    chat.get_by_role("button", name="Send").click()

    # then the message shows with its quote, the quote leaves the field, and it is stored
    # (a quote keeps the line's words in the conversation's language, the invoice's: Swedish)
    log = chat.get_by_role("log", name="Messages")
    mine = log.locator("li.chat-msg-customer")
    mine.wait_for()
    quoted = line.text("sv")["title"]
    assert text_of(mine).endswith(f"About the line: {quoted} 199.50 kr Why do I pay for this one?")
    assert text_of(mine).startswith("You ")
    assert quote.is_hidden()
    assert field.input_value() == ""
    message = Message.objects.get()
    assert (message.line_id, message.quote["amount"]) == (line.id, "199.50")
    assert "Waiting for customer support." in text_of(chat.locator("#chat-status"))
    # and the socket follows the new conversation (it was opened when they turned to the chat)
    _wait_until(phone, lambda: any(f["type"] == "message" for f in frames), "the socket")
    assert next(f for f in frames if f["type"] == "hello") == {
        "type": "hello",
        "agents_online": False,
    }

    # when an agent takes the conversation and reads the question
    conversation = message.conversation
    asgi_server_call(conversation_claim, conversation_id=conversation.id, agent=agnes)
    asgi_server_call(conversation_mark_read, conversation_id=conversation.id, side="agent", seq=1)

    # then the customer sees who answers, and that the question is read
    chat.get_by_text("Agnes from customer support is answering you.").wait_for()
    mine.locator(".chat-read").wait_for()
    assert text_of(mine.locator(".chat-read")) == "Read"

    # when the agent starts writing
    asgi_server_call(
        broadcast.send,
        broadcast.invoice_group(invoice.id),
        {"type": "typing", "conversation": conversation.id, "who": "agent", "agent_id": agnes.id},
    )

    # then the customer sees that support is writing
    typing = chat.locator("#chat-typing")
    chat.get_by_text("Support is writing…").wait_for()
    phone.screenshot(path=SCREENSHOTS / "chat-typing.png", full_page=False)

    # when the agent's answer is posted
    asgi_server_call(
        chat_message_post_agent,
        conversation_id=conversation.id,
        agent=agnes,
        body="It is the monthly fee of your second number, +4670…",
    )

    # then it appears without a reload, after the question, and the typing line goes
    answer = log.locator("li.chat-msg-agent")
    answer.wait_for()
    assert text_of(answer).startswith("Agnes, customer support ")
    assert "It is the monthly fee of your second number" in text_of(answer)
    assert log.locator("li.chat-msg").evaluate_all("items => items.map(i => i.dataset.seq)") == [
        "1",
        "2",
    ]
    assert text_of(typing) == ""
    assert phone.evaluate("window.sameDocument") is True
    # and the page, with the answer on screen, says it has read it
    _wait_until(
        phone,
        lambda: Conversation.objects.get().customer_read_seq == 2,
        "the customer's read receipt",
    )

    # and the page with the panel open fits the phone and passes the audit
    chat.scroll_into_view_if_needed()
    chat.screenshot(path=SCREENSHOTS / "chat-panel.png")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert audit(phone) == []
    assert token not in phone.content()
    assert all(url.startswith(asgi_live_server) for url in requests), requests


def test_with_the_socket_open_messages_go_over_it_and_one_whose_answer_is_lost_is_stored_once(
    asgi_live_server, phone, anna
):
    invoice, token = anna
    frames = _frames(phone)
    posts: list[str] = []
    phone.on(
        "request",
        lambda request: (
            posts.append(request.url)
            if request.method == "POST" and "/chat/messages/" in request.url
            else None
        ),
    )
    # the socket between page and server, where the server's answer to a post can be lost
    lose_answer = {"next": False}

    def route(socket) -> None:
        server = socket.connect_to_server()

        def to_page(message) -> None:
            if lose_answer["next"] and '"posted"' in str(message):
                lose_answer["next"] = False
                return
            socket.send(message)

        server.on_message(to_page)

    phone.route_web_socket(re.compile(r"/ws/chat/"), route)

    # given the customer has the chat open, its socket connected
    phone.goto(f"{asgi_live_server}/i/{token}/?lang=en")
    chat = phone.get_by_role("region", name="Chat with customer support")
    field = chat.get_by_label("Your message")
    field.click()
    _wait_until(phone, lambda: any(f["type"] == "hello" for f in frames), "the socket")

    # when they write and send
    field.fill("Is this the right amount?")
    chat.get_by_role("button", name="Send").click()

    # then the message goes over the socket, not by HTTP, with the page's id for it
    mine = chat.locator("li.chat-msg-customer")
    mine.wait_for()
    _wait_until(phone, lambda: any(f["type"] == "posted" for f in frames), "the answer")
    assert field.input_value() == ""
    assert posts == []
    first = Message.objects.get()
    assert len(first.client_id) == 36  # crypto.randomUUID()

    # when the socket's answer to the next message is lost on its way
    lose_answer["next"] = True
    field.fill("And when is it due?")
    chat.get_by_role("button", name="Send").click()

    # then after a few seconds the page sends it again by HTTP, with the same id, and it is
    # stored once and shown once
    _wait_until(phone, lambda: len(posts) == 1, "the post sent again by HTTP")
    _wait_until(phone, lambda: field.input_value() == "", "the field emptied")
    assert [m.body for m in Message.objects.order_by("seq")] == [
        "Is this the right amount?",
        "And when is it due?",
    ]
    assert mine.count() == 2
    assert chat.locator(".field-error:visible").count() == 0
    assert invoice.conversations.get().last_seq == 2


def test_a_credit_note_from_the_chat_updates_the_page_and_the_customer_rates_the_chat(
    asgi_live_server, asgi_server_call, phone, anna, agnes
):
    invoice, token = anna
    line = invoice.lines.get(amount=Decimal("199.50"))
    asked = chat_message_post_customer(
        invoice_id=invoice.id, body="Varför betalar jag för denna?", line_id=line.id
    )
    conversation_claim(conversation_id=asked.conversation_id, agent=agnes)
    frames = _frames(phone)

    # given the customer has the page open with the conversation, in Swedish
    phone.goto(f"{asgi_live_server}/i/{token}/")
    phone.evaluate("window.sameDocument = true")
    chat = phone.get_by_role("region", name="Chatta med kundtjänst")
    assert "Varför betalar jag för denna?" in text_of(chat.get_by_role("log"))
    assert "Agnes på kundtjänst svarar dig." in text_of(chat)
    # (an open conversation connects at once)
    _wait_until(phone, lambda: any(f["type"] == "hello" for f in frames), "the socket")
    _wait_until(phone, lambda: any(f["type"] == "conversation" for f in frames), "the resume")

    # when the agent credits the line from the chat
    def credit() -> None:
        with transaction.atomic():
            credit_note_issue(invoice_id=invoice.id, reason="Fel pris", line_ids=[line.id])
            invoice_changed_announce(invoice_id=invoice.id)

    asgi_server_call(credit)

    # then the page shows the credit note without a reload, keeps the chat, and says so
    phone.get_by_role("region", name="Kreditfakturor för den här fakturan").wait_for()
    announce = chat.locator("#chat-announce")
    announce.wait_for()
    assert text_of(announce) == "Din faktura har uppdaterats: en kreditfaktura har lagts till."
    assert phone.evaluate("window.sameDocument") is True
    assert "Varför betalar jag för denna?" in text_of(chat.get_by_role("log"))
    assert phone.locator("#chat").count() == 1
    phone.screenshot(path=SCREENSHOTS / "chat-invoice-updated.png", full_page=True)

    # when the agent closes the conversation
    asgi_server_call(conversation_close, conversation_id=asked.conversation_id, agent=agnes)

    # then the customer is asked to rate it, 1 to 5 in words
    rating = chat.get_by_role("group", name="Hur var ditt samtal med kundtjänst?")
    rating.wait_for()
    assert rating.get_by_role("radio").count() == 5
    chat.scroll_into_view_if_needed()
    chat.screenshot(path=SCREENSHOTS / "chat-rating.png")
    assert audit(phone) == []

    # when they choose "5 – Mycket bra", comment and send
    rating.get_by_label("5 – Mycket bra").check()
    chat.get_by_label("Något du vill lägga till? (frivilligt)").fill("Snabb hjälp!")
    chat.get_by_role("button", name="Skicka betyget").click()

    # then they are thanked, and the rating is stored
    thanks = chat.locator("#chat-thanks")
    thanks.wait_for()
    assert text_of(thanks).startswith("Tack för ditt betyg!")
    assert rating.is_hidden()
    conversation = Conversation.objects.get()
    assert (conversation.rating, conversation.rating_comment) == (5, "Snabb hjälp!")
    assert phone.evaluate("window.sameDocument") is True


def test_with_the_socket_down_posting_works_and_answers_come_by_polling(
    live_server, phone, anna, agnes
):
    # given the WSGI live server, which has no websockets
    _invoice, token = anna
    phone.goto(f"{live_server.url}/i/{token}/?lang=en")
    chat = phone.get_by_role("region", name="Chat with customer support")

    # when the customer asks about a line, thinks again and removes the quote
    phone.locator("a[data-ask-line]").first.click()
    chat.locator("#chat-ask").wait_for()
    chat.get_by_role("link", name="Remove the line you ask about").click()
    assert chat.locator("#chat-ask").is_hidden()
    assert phone.evaluate("document.activeElement.id") == "chat-body"

    # and writes (the socket cannot connect)
    chat.get_by_label("Your message").fill("Hello?")
    chat.get_by_role("button", name="Send").click()

    # then the message is posted all the same, without a quote, and the panel says it is
    # reconnecting
    chat.locator("li.chat-msg-customer").wait_for()
    chat.get_by_text("Reconnecting…").wait_for()
    assert chat.locator(".field-error:visible").count() == 0
    assert chat.locator("li.chat-msg-customer .chat-quote").count() == 0
    assert Message.objects.get().line_id is None

    # when an agent answers
    conversation = Conversation.objects.get()
    conversation_claim(conversation_id=conversation.id, agent=agnes)
    chat_message_post_agent(conversation_id=conversation.id, agent=agnes, body="Hi Anna!")

    # then the answer arrives by polling
    chat.locator("li.chat-msg-agent").wait_for(timeout=WAIT_MS)
    assert "Hi Anna!" in text_of(chat.locator("li.chat-msg-agent"))
    assert "Agnes from customer support is answering you." in text_of(chat)


def test_a_refusal_is_said_next_to_the_field_and_the_text_is_kept(live_server, phone, anna):
    _invoice, token = anna
    phone.goto(f"{live_server.url}/i/{token}/?lang=en")
    chat = phone.get_by_role("region", name="Chat with customer support")
    field = chat.get_by_label("Your message")
    too_long = "x" * 2100
    # the field's maxlength keeps a plain form within bounds; a script could still send more
    field.evaluate(
        "(el, value) => { el.removeAttribute('maxlength'); el.value = value; }", too_long
    )
    chat.get_by_role("button", name="Send").click()
    error = chat.get_by_role("alert")
    error.filter(has_text="too long").wait_for()
    assert text_of(error.filter(has_text="too long")) == (
        "The message is too long. Split it into shorter ones."
    )
    assert field.input_value() == too_long
    assert field.get_attribute("aria-invalid") == "true"
    assert not Message.objects.exists()


def test_without_javascript_the_customer_asks_about_a_line_with_a_plain_form(
    live_server, browser, anna
):
    invoice, token = anna
    line = invoice.lines.get(amount=Decimal("199.50"))
    title = line.text("en")["title"]
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}/i/{token}/?lang=en")
    page.get_by_role("link", name=f"Ask about this line ({title}, 199.50 kr)").click()
    page.wait_for_load_state()
    chat = page.get_by_role("region", name="Chat with customer support")
    assert text_of(chat.locator("#chat-ask")).startswith(f"About the line: {title} 199.50 kr")
    chat.get_by_label("Your message").fill("Why?")
    chat.get_by_role("button", name="Send").click()
    page.wait_for_load_state()
    assert page.url.endswith("#chat")
    assert text_of(chat.locator("li.chat-msg-customer")).endswith(
        f"About the line: {line.text('sv')['title']} 199.50 kr Why?"
    )
    assert Message.objects.get().line_id == line.id
    context.close()
