"""The customer's chat panel on the invoice page (chat/panel.py, templates/chat/panel.html) and
its plain-form posts: everything a customer without JavaScript can do, in Swedish and English.
"""

import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.test.client import RequestFactory
from django.utils import timezone

from billing.models import DeliveryMethod
from chat.models import AgentPresence, Conversation, Message
from chat.panel import chat_panel_html
from chat.services import (
    chat_message_post_agent,
    chat_message_post_customer,
    conversation_claim,
    conversation_close,
    conversation_mark_read,
)
from invoices.services.credit_notes import credit_note_issue
from invoices.services.links import invoice_link_create

pytestmark = pytest.mark.django_db

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def panel(response) -> str:
    """The chat panel's HTML on a page."""
    html = response.content.decode()
    match = re.search(r'<section class="card chat" id="chat".*?</section>', html, flags=re.S)
    assert match, "no chat panel on the page"
    return match.group(0)


def text(html: str) -> str:
    html = re.sub(r"<script[^>]*>.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html).replace("\xa0", " ")).strip()


def post(invoice, body="Varför kostar det mer?", **kwargs) -> Message:
    return chat_message_post_customer(invoice_id=invoice.id, body=body, **kwargs)


@pytest.fixture
def token(invoice) -> str:
    return invoice_link_create(invoice=invoice)


# --- on the page ----------------------------------------------------------------------------


def test_the_panel_is_on_the_invoice_page_in_swedish(client: Client, token) -> None:
    response = client.get(f"/i/{token}/")
    html = panel(response)
    assert 'aria-labelledby="chat-title"' in html
    assert "Chatta med kundtjänst" in html
    assert (
        '<form class="chat-form" id="chat-form" method="post" action="chat/messages/?lang=sv">'
        in html
    )
    assert 'name="csrfmiddlewaretoken"' in html
    assert '<label class="chat-label" for="chat-body">Ditt meddelande</label>' in html
    assert 'role="log" aria-live="polite"' in html
    assert '<script src="/static/chat.js" defer></script>' in html
    assert token not in response.content.decode()  # the script finds it in the page's path


def test_the_panel_speaks_english_with_the_page(client: Client, token) -> None:
    html = panel(client.get(f"/i/{token}/?lang=en"))
    assert "Chat with customer support" in html
    assert 'action="chat/messages/?lang=en"' in html
    assert ">Send</button>" in html


def test_the_conversation_is_listed_with_markup_shown_as_text(client: Client, invoice, token):
    post(invoice, "<script>alert(1)</script> & <b>hej</b>")
    html = panel(client.get(f"/i/{token}/?lang=en"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;hej&lt;/b&gt;" in html
    assert "<script>alert" not in html
    assert "<b>hej" not in html
    assert "Waiting for customer support." in text(html)
    assert '"lastSeq": 1' in html


def test_each_side_is_named_and_read_messages_are_marked(client, invoice, token, agent):
    mine = post(invoice, "Varför?")
    conversation_claim(conversation_id=mine.conversation_id, agent=agent)
    chat_message_post_agent(conversation_id=mine.conversation_id, agent=agent, body="Därför.")
    conversation_mark_read(conversation_id=mine.conversation_id, side="agent", seq=2)
    words = text(panel(client.get(f"/i/{token}/?lang=en")))
    assert "You" in words
    assert "agnes, customer support" in words
    assert "agnes from customer support is answering you." in words
    assert "Varför? Read" in words


def test_the_ask_links_are_on_every_line_but_rounding(client: Client, invoice, token) -> None:
    html = client.get(f"/i/{token}/?lang=en").content.decode()
    for line in invoice.lines.exclude(kind="rounding"):
        assert f'href="?lang=en&amp;ask={line.id}#chat" data-ask-line="{line.id}"' in html
    for line in invoice.lines.filter(kind="rounding"):
        assert f"ask={line.id}" not in html
    assert 'Ask about this line<span class="visually-hidden"> (' in html
    assert '<a class="button" href="#chat">Ask customer support</a>' in html


# --- without JavaScript: a plain form ---------------------------------------------------------


def test_a_plain_post_goes_back_to_the_chat_where_the_message_shows(invoice, token) -> None:
    # given a browser that checks CSRF, with the page's own token
    client = Client(enforce_csrf_checks=True)
    page = client.get(f"/i/{token}/?lang=en")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', panel(page)).group(1)
    # when the customer posts the form
    response = client.post(
        f"/i/{token}/chat/messages/?lang=en", {"body": "Hello <there>", "csrfmiddlewaretoken": csrf}
    )
    # then they are back at the chat panel, and their message is in it
    assert response.status_code == 302
    assert response["Location"] == "../../?lang=en#chat"
    assert token not in response["Location"]
    html = panel(client.get(f"/i/{token}/?lang=en"))
    assert "Hello &lt;there&gt;" in html
    assert Message.objects.get().body == "Hello <there>"


def test_a_refused_plain_post_says_why_next_to_the_field(client: Client, token) -> None:
    response = client.post(f"/i/{token}/chat/messages/?lang=en", {"body": "   "})
    assert response["Location"] == "../../?lang=en&chat_error=message_empty#chat"
    html = panel(client.get(f"/i/{token}/?lang=en&chat_error=message_empty"))
    assert '<p class="field-error" id="chat-error" role="alert">Write a message first.</p>' in html
    assert 'aria-invalid="true"' in html
    assert not Message.objects.exists()


def test_an_unknown_error_code_in_the_address_shows_nothing(client: Client, token) -> None:
    html = panel(client.get(f"/i/{token}/?lang=en&chat_error=<b>hacked</b>"))
    assert "hacked" not in html
    assert '<p class="field-error" id="chat-error" role="alert" hidden></p>' in html


def test_the_post_answers_json_to_the_script(client: Client, invoice, token) -> None:
    line = invoice.lines.exclude(kind="rounding").first()
    response = client.post(
        f"/i/{token}/chat/messages/",
        {"body": "Vad är detta?", "line": str(line.id)},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 201
    payload = response.json()
    assert (payload["type"], payload["seq"], payload["body"]) == ("message", 1, "Vad är detta?")
    assert payload["quote"]["amount"] == str(line.amount)


# --- "Ask about this line" without script --------------------------------------------------


def test_ask_quotes_the_line_above_the_field(client: Client, invoice, token) -> None:
    line = invoice.lines.get(amount=Decimal("199.50"))
    html = panel(client.get(f"/i/{token}/?lang=en&ask={line.id}"))
    assert '<div class="chat-ask" id="chat-ask">' in html  # not hidden
    assert line.text("en")["title"] in html
    assert "199.50\xa0kr" in html
    assert f'<input type="hidden" name="line" id="chat-line" value="{line.id}">' in html
    assert " autofocus" in html
    assert 'href="?lang=en#chat" data-chat-unquote' in html


def test_asking_about_another_invoices_line_is_ignored(client, two_invoices) -> None:
    first, second = two_invoices
    token = invoice_link_create(invoice=first)
    html = panel(client.get(f"/i/{token}/?lang=en&ask={second.lines.first().id}"))
    assert '<div class="chat-ask" id="chat-ask" hidden>' in html
    assert '<input type="hidden" name="line" id="chat-line" value="">' in html
    html = panel(client.get(f"/i/{token}/?lang=en&ask=not-a-number"))
    assert '<input type="hidden" name="line" id="chat-line" value="">' in html


def test_posting_another_invoices_line_is_refused(client, two_invoices) -> None:
    first, second = two_invoices
    token = invoice_link_create(invoice=first)
    other = second.lines.first()
    response = client.post(
        f"/i/{token}/chat/messages/?lang=en", {"body": "Och den här?", "line": str(other.id)}
    )
    assert response["Location"] == (f"../../?lang=en&chat_error=line_not_found&ask={other.id}#chat")
    assert not Message.objects.exists()
    html = panel(client.get(f"/i/{token}/?lang=en&chat_error=line_not_found&ask={other.id}"))
    assert "That line is not on this invoice." in html
    assert '<input type="hidden" name="line" id="chat-line" value="">' in html


def test_a_posted_question_about_a_line_shows_its_quote(client: Client, invoice, token) -> None:
    line = invoice.lines.get(amount=Decimal("199.50"))
    client.post(f"/i/{token}/chat/messages/?lang=sv", {"body": "Vad är detta?", "line": line.id})
    html = panel(client.get(f"/i/{token}/"))
    assert (
        '<p class="chat-quote"><span class="chat-quote-label">Om raden:</span> '
        f'<span class="chat-quote-title">{line.text("sv")["title"]}</span> '
        '<span class="chat-quote-amount">199,50\xa0kr</span></p>'
    ) in html


# --- no agent online -------------------------------------------------------------------------


@time_machine.travel(datetime(2026, 11, 3, 19, 30, tzinfo=STOCKHOLM), tick=False)
def test_with_no_agent_online_the_panel_says_when_we_answer_and_how(client, invoice) -> None:
    # given a Tuesday evening, support open weekdays 08-17, a customer who gets e-mail
    token = invoice_link_create(invoice=invoice)
    html = panel(client.get(f"/i/{token}/?lang=en"))
    assert '<p class="notice-box chat-offline" id="chat-offline">' in html
    assert (
        "No one in customer support is online right now. We answer from 08:00 tomorrow "
        "(Wednesday), and send the answer to you by e-mail too."
    ) in html


@time_machine.travel(datetime(2026, 11, 7, 12, 0, tzinfo=STOCKHOLM), tick=False)
def test_on_a_weekend_an_sms_customer_hears_of_monday_in_swedish(client, invoice) -> None:
    invoice.customer.delivery_method = DeliveryMethod.SMS
    invoice.customer.save(update_fields=["delivery_method"])
    token = invoice_link_create(invoice=invoice)
    html = panel(client.get(f"/i/{token}/"))
    assert "Vi svarar från kl. 08:00 på måndag och skickar svaret till dig med sms också." in html


def test_with_an_agent_online_the_notice_is_hidden(client, token, agent) -> None:
    AgentPresence.objects.create(agent=agent, last_seen=timezone.now(), connections=1)
    html = panel(client.get(f"/i/{token}/?lang=en"))
    assert '<p class="notice-box chat-offline" id="chat-offline" hidden>' in html


# --- rating after the conversation is closed --------------------------------------------------


def test_after_close_the_panel_asks_for_a_rating_and_thanks_for_it(client, invoice, token, agent):
    # given a conversation an agent has closed
    message = post(invoice)
    conversation_close(conversation_id=message.conversation_id, agent=agent)
    html = panel(client.get(f"/i/{token}/?lang=en"))
    # then the rating form is shown, 1 to 5 with words, and an optional comment
    assert '<div class="chat-rating" id="chat-rating">' in html
    assert 'action="chat/rating/?lang=en"' in html
    for label in ("1 – Very poor", "3 – OK", "5 – Very good"):
        assert label in html
    assert html.count('type="radio" name="rating"') == 5
    assert f'name="conversation" value="{message.conversation_id}"' in html
    assert "The conversation is closed." in text(html)
    # when the customer rates it
    response = client.post(
        f"/i/{token}/chat/rating/?lang=en",
        {"conversation": message.conversation_id, "rating": "5", "comment": "Snabbt!"},
    )
    assert response["Location"] == "../../?lang=en#chat"
    # then it is stored and the panel thanks them instead of asking again
    conversation = Conversation.objects.get()
    assert (conversation.rating, conversation.rating_comment) == (5, "Snabbt!")
    html = panel(client.get(f"/i/{token}/?lang=en"))
    assert '<div class="chat-rating" id="chat-rating" hidden>' in html
    assert '<p class="notice-box chat-thanks" id="chat-thanks" tabindex="-1">' in html
    assert "Thank you for your rating!" in html


def test_a_rating_without_a_choice_is_refused_next_to_the_rating(client, invoice, token, agent):
    message = post(invoice)
    conversation_close(conversation_id=message.conversation_id, agent=agent)
    response = client.post(
        f"/i/{token}/chat/rating/?lang=en", {"conversation": message.conversation_id}
    )
    assert response["Location"] == "../../?lang=en&rating_error=rating_invalid#chat"
    html = panel(client.get(f"/i/{token}/?lang=en&rating_error=rating_invalid"))
    assert 'id="chat-rating-error" role="alert">Choose from 1 to 5.</p>' in html
    assert Conversation.objects.get().rating is None


def test_writing_after_close_starts_a_new_conversation_on_the_panel(client, invoice, token, agent):
    first = post(invoice, "Första frågan")
    conversation_close(conversation_id=first.conversation_id, agent=agent)
    client.post(f"/i/{token}/chat/messages/?lang=en", {"body": "En ny fråga"})
    html = panel(client.get(f"/i/{token}/?lang=en"))
    assert "En ny fråga" in html
    assert "Första frågan" not in html
    assert '<div class="chat-rating" id="chat-rating" hidden>' in html
    assert Conversation.objects.count() == 2


# --- not on credit notes --------------------------------------------------------------------


def test_a_credit_note_has_no_chat_and_no_ask_links(client: Client, invoice) -> None:
    note = credit_note_issue(invoice_id=invoice.id, reason="Goodwill")
    html = client.get(f"/i/{invoice_link_create(invoice=note)}/?lang=en").content.decode()
    assert 'id="chat"' not in html
    assert "data-ask-line" not in html
    assert "chat.js" not in html


def test_the_invoice_page_of_a_credited_invoice_keeps_its_chat(client: Client, invoice, token):
    credit_note_issue(invoice_id=invoice.id, reason="Goodwill")
    assert 'id="chat"' in client.get(f"/i/{token}/").content.decode()


# --- what it costs ---------------------------------------------------------------------------


def test_the_panel_costs_two_queries_however_long_the_conversation(
    invoice, agent, django_assert_num_queries, settings
) -> None:
    settings.CHAT_CUSTOMER_MESSAGES_PER_MINUTE = 100
    first = post(invoice, "En")
    conversation_claim(conversation_id=first.conversation_id, agent=agent)
    for n in range(30):
        post(invoice, f"Fråga {n}")
        chat_message_post_agent(
            conversation_id=first.conversation_id, agent=agent, body=f"Svar {n}"
        )
    request = RequestFactory().get("/i/x/")
    assert invoice.customer  # the page's link look-up brings the customer along
    # the conversation with its newest messages, and whether an agent is online
    with django_assert_num_queries(2):
        html = chat_panel_html(request, invoice, "en")
    assert html.count('class="chat-msg ') == 61
    # "Ask about this line" adds the line
    line = invoice.lines.first()
    with django_assert_num_queries(3):
        chat_panel_html(request, invoice, "en", ask=str(line.id))
