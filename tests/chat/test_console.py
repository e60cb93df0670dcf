"""The agent console, /support/: who gets in, the queue, the conversation's endpoints and the
actions an agent takes for the customer, each said in the chat in the customer's language."""

import json
import re
from datetime import date
from decimal import Decimal
from unittest import mock

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from billing.models import PlanChange, PlanChangeStatus, SubscriptionEvent
from billing.services import ChangeTiming, plan_change_request
from chat.models import Author, CannedReply, Conversation, ConversationStatus, Message
from chat.selectors import canned_reply_fill
from chat.services import chat_message_post_customer, conversation_claim
from core.models import OneTimeCode
from invoices.models import Invoice, InvoiceLine, OutboundMessage, PageEvent, PageEventKind
from invoices.services.bill_run import bill_run_execute, bill_run_start
from offers.models import Campaign, Group, Offer, OfferStatus
from tests.chat.conftest import issue_october, make_agent
from tests.factories import SubscriptionFactory
from tests.offers.page_fixtures import NOW, billed_customer, campaigns, catalogue

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def ask(invoice: Invoice, body: str = "Varför kostar det mer?", **kwargs) -> Conversation:
    message = chat_message_post_customer(invoice_id=invoice.id, body=body, **kwargs)
    return Conversation.objects.get(id=message.conversation_id)


def url(conversation: Conversation, action: str = "") -> str:
    return f"/support/c/{conversation.id}/" + (f"{action}/" if action else "")


def text(response) -> str:
    """The page's visible text, whitespace collapsed (tags, scripts and styles dropped)."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html).replace("\xa0", " "))


def system_messages(conversation: Conversation) -> list[str]:
    return list(
        Message.objects.filter(conversation=conversation, author=Author.SYSTEM)
        .order_by("seq")
        .values_list("body", flat=True)
    )


@pytest.fixture
def held(invoice, agent) -> Conversation:
    """A conversation the agent "agnes" has claimed."""
    conversation = ask(invoice)
    conversation_claim(conversation_id=conversation.id, agent=agent)
    return conversation


# --- who gets in ---------------------------------------------------------------------------


def test_anyone_not_logged_in_is_sent_to_the_console_login(invoice) -> None:
    conversation = ask(invoice)
    for path in ("/support/", "/support/queue/", url(conversation)):
        response = Client().get(path)
        assert response.status_code == 302
        assert response["Location"].startswith(f"/support/login/?next={path}")
    # and a post does nothing
    assert Client().post(url(conversation, "claim")).status_code == 302
    assert Conversation.objects.get().status == ConversationStatus.WAITING


def test_staff_outside_the_support_group_get_403(invoice) -> None:
    conversation = ask(invoice)
    finance = client_for(make_agent("finance", support=False))
    for path in (
        "/support/",
        "/support/queue/",
        url(conversation),
        f"/support/invoices/{invoice.id}/",
    ):
        assert finance.get(path).status_code == 403
    assert finance.post(url(conversation, "claim")).status_code == 403
    assert Conversation.objects.get().status == ConversationStatus.WAITING


def test_a_support_agent_gets_the_console(agent) -> None:
    response = client_for(agent).get("/support/")
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    assert 'id="queue-list"' in response.content.decode()


def test_an_agent_logs_in_and_lands_in_the_queue(agent) -> None:
    client = Client()
    page = client.get("/support/login/")
    assert page.status_code == 200
    assert "Logga in" in text(page)  # Swedish unless the browser asks for English
    response = client.post("/support/login/", {"username": "agnes", "password": "pw-for-tests-1"})
    assert response.status_code == 302
    assert response["Location"] == "/support/"
    assert client.get("/support/").status_code == 200


def test_the_login_speaks_the_browsers_language() -> None:
    page = Client().get("/support/login/", HTTP_ACCEPT_LANGUAGE="en")
    assert "Log in to the support console" in text(page)


def test_staff_outside_the_support_group_cannot_log_in_to_the_console() -> None:
    make_agent("finance", support=False)
    response = Client().post(
        "/support/login/",
        {"username": "finance", "password": "pw-for-tests-1"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert "This account is not a support agent" in text(response)


def test_logging_out_ends_the_session(agent) -> None:
    client = client_for(agent)
    response = client.post("/support/logout/")
    assert response["Location"] == "/support/login/"
    assert client.get("/support/").status_code == 302


# --- the queue -------------------------------------------------------------------------------


def test_the_queue_lists_waiting_conversations_with_their_unread_counts(
    two_invoices, agent
) -> None:
    first, second = two_invoices
    waiting = ask(first, "Hej")
    ask(first, "Är någon där?")
    answered = ask(second)
    conversation_claim(conversation_id=answered.id, agent=agent)
    response = client_for(agent).get("/support/", HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    item = re.search(rf'<li [^>]*id="queue-item-{waiting.id}"[^>]*>', html)
    assert item
    assert 'data-status="waiting"' in item.group(0)
    assert 'data-unread="2"' in item.group(0)
    assert f'id="queue-item-{answered.id}"' in html
    # the longest waiting first, and what each one is
    assert html.index(f"queue-item-{waiting.id}") < html.index(f"queue-item-{answered.id}")
    page = text(response)
    assert "2 unread" in page
    assert "With you" in page
    # the same as the socket's frames, for a reconnecting page
    queue = client_for(agent).get("/support/queue/").json()["conversations"]
    assert [(c["id"], c["unread"]) for c in queue] == [(waiting.id, 2), (answered.id, 1)]


QUEUE_QUERIES = 4  # the session, the user, whether they are in the support group, the queue


@pytest.mark.parametrize("conversations", [1, 20])
def test_the_queue_costs_the_same_queries_for_1_and_20_conversations(
    conversations, agent, django_assert_num_queries
) -> None:
    for _ in range(conversations):
        SubscriptionFactory()
    for invoice in issue_october():
        ask(invoice)
    client = client_for(agent)
    with django_assert_num_queries(QUEUE_QUERIES):
        response = client.get("/support/")
    assert response.content.decode().count('class="queue-item') == conversations


# --- claim, transfer, close ---------------------------------------------------------------


def test_an_agent_claims_a_conversation_and_a_second_claim_is_refused_plainly(
    invoice, agent, other_agent
) -> None:
    conversation = ask(invoice)
    page = client_for(agent).get(url(conversation))
    assert 'id="claim-button"' in page.content.decode()
    response = client_for(agent).post(url(conversation, "claim"), **JSON)
    assert response.status_code == 200
    assert response.json()["conversation"]["agent_id"] == agent.pk
    # when a second agent claims it too
    olle = client_for(other_agent)
    refused = olle.post(url(conversation, "claim"), **JSON)
    assert refused.status_code == 409
    assert refused.json()["code"] == "already_claimed"
    # and without the script: the page says so
    followed = olle.post(url(conversation, "claim"), follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert "Another agent has already claimed this conversation." in text(followed)
    assert Conversation.objects.get().agent == agent
    assert 'id="claim-button"' not in followed.content.decode()
    assert 'id="composer"' not in followed.content.decode()


def test_the_holder_transfers_to_another_agent_and_back_to_the_queue(
    held, agent, other_agent
) -> None:
    response = client_for(agent).post(url(held, "transfer"), {"to_agent": other_agent.pk}, **JSON)
    assert response.status_code == 200
    held.refresh_from_db()
    assert (held.status, held.agent) == (ConversationStatus.ASSIGNED, other_agent)
    # the former holder can no longer hand it on
    refused = client_for(agent).post(url(held, "transfer"), {"to_agent": ""}, **JSON)
    assert refused.json()["code"] == "not_your_conversation"
    # the new holder puts it back in the queue
    client_for(other_agent).post(url(held, "transfer"), {"to_agent": ""}, **JSON)
    held.refresh_from_db()
    assert (held.status, held.agent) == (ConversationStatus.WAITING, None)


def test_a_conversation_cannot_go_to_staff_outside_the_support_group(held, agent) -> None:
    finance = make_agent("finance", support=False)
    refused = client_for(agent).post(url(held, "transfer"), {"to_agent": finance.pk}, **JSON)
    assert refused.json()["code"] == "not_an_agent"


def test_the_holder_closes_the_conversation(held, agent) -> None:
    response = client_for(agent).post(url(held, "close"))
    assert response.status_code == 302
    held.refresh_from_db()
    assert held.status == ConversationStatus.CLOSED
    # a closed conversation is read only, and no longer in the queue
    page = client_for(agent).get(url(held)).content.decode()
    assert 'id="composer"' not in page
    assert f'id="queue-item-{held.id}"' not in page


# --- messages -------------------------------------------------------------------------------


def test_the_holder_answers_through_the_composer(held, agent) -> None:
    page = client_for(agent).get(url(held)).content.decode()
    assert 'id="composer-input"' in page
    response = client_for(agent).post(url(held, "messages"), {"body": "Hej Anna!"}, **JSON)
    assert response.status_code == 201
    assert response.json()["seq"] == 2
    assert response.json()["author"] == "agent"
    # a form post without the script goes back to the conversation
    plain = client_for(agent).post(url(held, "messages"), {"body": "Något mer?"})
    assert plain["Location"] == url(held) + "#composer"
    assert Message.objects.filter(author=Author.AGENT).count() == 2


def test_only_the_holder_answers(held, other_agent) -> None:
    refused = client_for(other_agent).post(url(held, "messages"), {"body": "Hej"}, **JSON)
    assert refused.status_code == 409
    assert refused.json()["code"] == "not_your_conversation"
    assert not Message.objects.filter(author=Author.AGENT).exists()


def test_an_empty_answer_is_refused_with_its_reason(held, agent) -> None:
    refused = client_for(agent).post(
        url(held, "messages"), {"body": "  "}, HTTP_ACCEPT_LANGUAGE="en", **JSON
    )
    assert refused.json() == {"code": "message_empty", "message": "Write a message first."}


def test_messages_are_shown_as_plain_text(invoice, agent) -> None:
    conversation = ask(invoice, '<script>alert("x")</script> & <b>fet</b>')
    html = client_for(agent).get(url(conversation)).content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;fet&lt;/b&gt;" in html


def test_a_question_about_a_line_quotes_it_and_marks_the_line_on_the_invoice(
    invoice, agent
) -> None:
    line = invoice.lines.exclude(kind="rounding").order_by("position").last()
    conversation = ask(invoice, "Vad är detta?", line_id=line.id)
    html = client_for(agent).get(url(conversation)).content.decode()
    assert f'data-quote-position="{line.position}"' in html
    assert f'href="#invoice-line-{line.position}"' in html
    marked = re.search(rf'<li class="([^"]*)" id="invoice-line-{line.position}"', html)
    assert marked
    assert "line-quoted" in marked.group(1)
    assert line.text("sv")["title"] in html


def test_the_page_shows_the_invoice_its_usage_binding_and_the_customers_history(
    invoice, agent
) -> None:
    conversation = ask(invoice)
    response = client_for(agent).get(url(conversation), HTTP_ACCEPT_LANGUAGE="en")
    page = text(response)
    assert f"Faktura {invoice.display_number}" in page  # as the customer sees it: Swedish
    assert "499,00 kr" in page
    assert "Usage" in page
    assert "Binding period" in page
    assert "Offers shown to the customer" in page
    # the customer's invoices, each to open read-only
    html = response.content.decode()
    assert 'id="invoice-line-1"' in html
    read_only = client_for(agent).get(f"/support/invoices/{invoice.id}/")
    assert read_only.status_code == 200
    assert 'data-action="credit-line"' not in read_only.content.decode()


def test_an_invoice_of_a_customer_who_never_wrote_is_not_open_to_agents(
    two_invoices, agent
) -> None:
    first, second = two_invoices
    ask(first)
    assert client_for(agent).get(f"/support/invoices/{second.id}/").status_code == 404


def test_earlier_conversations_of_the_customer_are_listed(invoice, agent) -> None:
    earlier = ask(invoice, "Första frågan")
    client_for(agent).post(url(earlier, "close"))
    later = ask(invoice, "Andra frågan")
    html = client_for(agent).get(url(later)).content.decode()
    assert f'href="/support/c/{earlier.id}/"' in html
    # and it opens read only
    old = client_for(agent).get(url(earlier)).content.decode()
    assert "Första frågan" in old
    assert 'id="composer"' not in old


# --- resend the invoice link ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("sv", "Vi har skickat en ny länk till faktura {number} via e-post."),
        ("en", "We have sent you a new link to invoice {number} by e-mail."),
    ],
)
def test_resending_the_link_sends_one_and_says_so_in_the_customers_language(
    language, said, agent
) -> None:
    SubscriptionFactory(customer__language=language, customer__delivery_method="email")
    (invoice,) = issue_october()
    conversation = ask(invoice)
    conversation_claim(conversation_id=conversation.id, agent=agent)
    sent_before = OutboundMessage.objects.filter(invoice=invoice).count()
    response = client_for(agent).post(url(conversation, "resend-link"), **JSON)
    assert response.status_code == 200
    assert OutboundMessage.objects.filter(invoice=invoice).count() == sent_before + 1
    assert PageEvent.objects.filter(invoice=invoice, kind=PageEventKind.LINK_RESENT).exists()
    assert system_messages(conversation) == [said.format(number=invoice.display_number)]
    assert response.json()["message"]["author"] == "system"


def test_only_the_holder_resends_the_link(held, other_agent, invoice) -> None:
    sent_before = OutboundMessage.objects.count()
    refused = client_for(other_agent).post(url(held, "resend-link"), **JSON)
    assert refused.json()["code"] == "not_your_conversation"
    assert OutboundMessage.objects.count() == sent_before
    assert system_messages(held) == []


# --- a credit note for a line -------------------------------------------------------------


def _first_line(invoice: Invoice) -> InvoiceLine:
    return invoice.lines.exclude(kind="rounding").order_by("position").first()


def test_crediting_a_line_is_reviewed_before_it_is_issued(held, agent, invoice) -> None:
    line = _first_line(invoice)
    client = client_for(agent)
    page = client.get(url(held)).content.decode()
    assert f'id="credit-line-{line.position}"' in page
    # the review names the line and the amount before anything is credited
    review = client.get(url(held) + f"?credit_line={line.id}", HTTP_ACCEPT_LANGUAGE="en")
    assert 'id="credit-note-confirm"' in review.content.decode()
    assert "Issue the credit note of 299,00 kr" in text(review)
    assert not Invoice.objects.filter(credited_invoice=invoice).exists()


@pytest.mark.parametrize(
    ("language", "said"),
    [
        (
            "sv",
            "Vi har krediterat 299,00 kr för ”{title}” på faktura {number} (kreditfaktura "
            "{note}). Anledning: Fel pris",
        ),
        (
            "en",
            "We have credited 299.00 kr for “{title}” on invoice {number} (credit note "
            "{note}). Reason: Fel pris",
        ),
    ],
)
def test_a_credit_note_for_a_line_is_issued_and_said_in_the_customers_language(
    language, said, agent, django_capture_on_commit_callbacks
) -> None:
    SubscriptionFactory(customer__language=language, agreed_monthly_price=Decimal("299.00"))
    (invoice,) = issue_october()
    conversation = ask(invoice)
    conversation_claim(conversation_id=conversation.id, agent=agent)
    line = _first_line(invoice)
    with (
        mock.patch("chat.broadcast.send") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client_for(agent).post(
            url(conversation, "credit-note"),
            {"line": line.id, "reason": "Fel pris", "confirmed": "yes"},
            **JSON,
        )
    assert response.status_code == 200, response.content
    note = Invoice.objects.get(credited_invoice=invoice)
    assert note.lines.get().credited_line_id == line.id
    assert note.credit_reason == "Fel pris"
    assert system_messages(conversation) == [
        said.format(
            title=line.text(language)["title"],
            number=invoice.display_number,
            note=note.display_number,
        ).replace("0 kr", "0\xa0kr")
    ]
    # the customer's page is told to show the credit note without a reload
    payloads = [c.args[1] for c in send.call_args_list]
    assert {"type": "invoice_changed", "invoice": invoice.id, "what": "credit_note"} in payloads


def test_a_credit_note_without_the_review_is_refused(held, agent, invoice) -> None:
    line = _first_line(invoice)
    refused = client_for(agent).post(
        url(held, "credit-note"), {"line": line.id, "reason": "Fel pris"}, **JSON
    )
    assert refused.json()["code"] == "confirmation_required"
    assert not Invoice.objects.filter(credited_invoice=invoice).exists()


def test_a_credit_note_needs_a_reason(held, agent, invoice) -> None:
    line = _first_line(invoice)
    refused = client_for(agent).post(
        url(held, "credit-note"), {"line": line.id, "reason": " ", "confirmed": "yes"}, **JSON
    )
    assert refused.json()["code"] == "credit_reason_required"
    assert not Invoice.objects.filter(credited_invoice=invoice).exists()


def test_only_the_holder_issues_a_credit_note(held, other_agent, invoice) -> None:
    line = _first_line(invoice)
    refused = client_for(other_agent).post(
        url(held, "credit-note"),
        {"line": line.id, "reason": "Fel pris", "confirmed": "yes"},
        **JSON,
    )
    assert refused.json()["code"] == "not_your_conversation"
    assert not Invoice.objects.filter(credited_invoice=invoice).exists()


def test_a_line_of_another_invoice_cannot_be_credited_from_this_chat(two_invoices, agent) -> None:
    first, second = two_invoices
    conversation = ask(first)
    conversation_claim(conversation_id=conversation.id, agent=agent)
    refused = client_for(agent).post(
        url(conversation, "credit-note"),
        {"line": _first_line(second).id, "reason": "Fel", "confirmed": "yes"},
        **JSON,
    )
    assert refused.json()["code"] == "line_not_found"
    assert not Invoice.objects.filter(credited_invoice__isnull=False).exists()


# --- a change of plan -------------------------------------------------------------------


@pytest.fixture
def plans():
    campaigns()
    return catalogue()


def _plan_chat(plans, agent, *, language: str = "sv"):
    """A customer on Mobil 10 GB (no binding) asking in the chat, held by agnes."""
    billed = billed_customer(plans.medium, consent=False, generate=False, language=language)
    conversation = ask(billed.invoice, "Kan jag få mer surf?")
    conversation_claim(conversation_id=conversation.id, agent=agent)
    return billed, conversation


def _review(client, conversation, billed, plan, **params) -> str:
    query = {"plan": f"{billed.subscription.id}:{plan.id}", "timing": "next_period", **params}
    return client.get(url(conversation), query, HTTP_ACCEPT_LANGUAGE="en")


def _key(response) -> str:
    match = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', response.content.decode())
    assert match
    return match.group(1)


def _form(billed, plan, review, **fields) -> dict:
    """The review's confirm form as the page posts it."""
    return {
        "subscription": billed.subscription.id,
        "plan": plan.id,
        "timing": "next_period",
        "binding_months": 0,
        "idempotency_key": _key(review),
        "confirmed": "yes",
        **fields,
    }


def _send_code(client, conversation, billed, plan, capture, **fields):
    """The review's "Send the customer a code" button; the SMS goes out after commit."""
    with capture(execute=True):
        return client.post(
            url(conversation, "plan-change/code"),
            {
                "subscription": billed.subscription.id,
                "plan": plan.id,
                "timing": "next_period",
                "binding_months": 0,
                **fields,
            },
            HTTP_ACCEPT_LANGUAGE="en",
        )


def _sent_code(sms_outbox) -> str:
    return re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1)


@time_machine.travel(NOW, tick=False)
def test_a_dearer_plan_is_made_only_with_the_code_sent_to_the_customers_phone(
    plans, agent, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    # given a customer on Mobil 10 GB asking in the chat for Mobil 30 GB (100 kr a month more)
    billed, conversation = _plan_chat(plans, agent)
    offer = Offer.objects.create(
        campaign=Campaign.objects.get(code="right-size"),
        customer=billed.customer,
        subscription=billed.subscription,
        group=Group.TREATMENT,
        personalised=False,
        to_plan=plans.small,
        offered_price=plans.small.monthly_fee,
        current_monthly_cost=plans.medium.monthly_fee,
        offered_monthly_cost=plans.small.monthly_fee,
        monthly_saving=plans.medium.monthly_fee - plans.small.monthly_fee,
        yearly_saving=12 * (plans.medium.monthly_fee - plans.small.monthly_fee),
        reason={"sv": "billigare", "en": "cheaper"},
        valid_until=date(2026, 12, 31),
        created_at=timezone.now(),
    )
    client = client_for(agent)
    review = _review(client, conversation, billed, plans.large)
    page = text(review)
    assert "Mobil 10 GB" in page
    assert "Mobil 30 GB" in page
    assert "The monthly price goes up by 100 kr." in page
    assert "Send the customer a code" in page
    assert f"By SMS to {billed.customer.phone}." in page
    assert 'id="plan-change-code"' in review.content.decode()
    form = _form(billed, plans.large, review)
    # when the agent confirms without a code (whoever holds a forwarded link could ask)
    refused = client.post(url(conversation, "plan-change"), form, **JSON)
    # then nothing changes
    assert refused.status_code == 409
    assert refused.json()["code"] == "confirmation_code_required"
    assert not PlanChange.objects.exists()
    # when the agent sends the customer a code
    sent = _send_code(client, conversation, billed, plans.large, django_capture_on_commit_callbacks)
    # then it goes by SMS to the registered phone, and the chat asks for it in Swedish
    assert sent.status_code == 302
    assert "code=sent" in sent["Location"]
    assert sent["Location"].endswith("#plan-change")
    ((to, sms),) = sms_outbox
    assert to == billed.customer.phone
    assert "Mobil 30 GB" in sms
    assert system_messages(conversation) == [
        "För att bekräfta bytet av Anna till Mobil 30 GB har vi skickat en kod via sms till "
        f"ditt telefonnummer som slutar på {billed.customer.phone[-2:]}. Skriv koden till oss "
        "här. Den gäller i 10 minuter."
    ]
    code = _sent_code(sms_outbox)
    assert code not in system_messages(conversation)[0]
    again = client.get(sent["Location"], HTTP_ACCEPT_LANGUAGE="en")
    assert "Send the customer a new code" in text(again)
    # when the code the agent enters is wrong
    wrong = "000000" if code != "000000" else "111111"
    refused = client.post(
        url(conversation, "plan-change"),
        {**form, "code": wrong},
        HTTP_ACCEPT_LANGUAGE="en",
        **JSON,
    )
    # then it is refused plainly, nothing changes, and the attempt is counted
    assert refused.json() == {
        "code": "code_invalid",
        "message": "That is not the code we sent. Ask the customer to check the message and "
        "try again.",
    }
    assert not PlanChange.objects.exists()
    assert OneTimeCode.objects.get().attempts == 1
    # when the customer tells the right code: one change, however often it is clicked
    for _ in range(2):
        done = client.post(url(conversation, "plan-change"), {**form, "code": code}, **JSON)
        assert done.status_code == 200, done.content
    change = PlanChange.objects.get()
    assert (change.requested_via, change.requested_by) == ("chat", "agnes")
    assert change.to_plan == plans.large
    assert change.effective_date == date(2026, 12, 1)
    assert change.idempotency_key.startswith(f"chat:{conversation.id}:")
    assert OneTimeCode.objects.get().used_at is not None
    said = system_messages(conversation)
    assert len(said) == 2
    assert said[1].startswith("Ditt abonnemang för Anna byts från Mobil 10 GB till Mobil 30 GB")
    assert "1 december 2026" in said[1]
    # the customer has the receipt with its undo link
    assert OutboundMessage.objects.filter(to=billed.customer.email).exists()
    # and offers computed for the plan they had are no longer shown
    offer.refresh_from_db()
    assert offer.status == OfferStatus.SUPERSEDED


@time_machine.travel(NOW, tick=False)
def test_a_code_confirms_only_the_change_it_was_sent_for(
    plans, agent, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    # given a code sent for Mobil 30 GB without a binding period
    billed, conversation = _plan_chat(plans, agent)
    client = client_for(agent)
    _send_code(client, conversation, billed, plans.large, django_capture_on_commit_callbacks)
    code = _sent_code(sms_outbox)
    # when it is entered for Mobil 30 GB with 24 months' binding period
    review = _review(client, conversation, billed, plans.large, binding_months=24)
    refused = client.post(
        url(conversation, "plan-change"),
        _form(billed, plans.large, review, binding_months=24, code=code),
        **JSON,
    )
    # then no code was sent for that change, and nothing changes
    assert refused.json()["code"] == "code_expired"
    assert not PlanChange.objects.exists()
    # and without the script, the agent is back at the review with the reason
    plain = client.post(
        url(conversation, "plan-change"),
        _form(billed, plans.large, review, binding_months=24, code=code),
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )
    path, _status = plain.redirect_chain[-1]
    assert "binding_months=24" in path
    assert path.endswith("#plan-change")
    assert "Send the customer a new code" in text(plain)
    assert "The code has expired, or was entered wrong too many times." in text(plain)


@time_machine.travel(NOW, tick=False)
def test_a_plan_change_adding_a_binding_period_says_so_in_english(
    plans, agent, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    billed, conversation = _plan_chat(plans, agent, language="en")
    client = client_for(agent)
    review = _review(client, conversation, billed, plans.small, binding_months=12)
    assert "It adds a binding period until 30 November 2027." in text(review)
    sent = _send_code(
        client,
        conversation,
        billed,
        plans.small,
        django_capture_on_commit_callbacks,
        binding_months=12,
    )
    assert sent.status_code == 302
    assert "binding period of 12 months" in sms_outbox[0][1]
    done = client.post(
        url(conversation, "plan-change"),
        _form(billed, plans.small, review, binding_months=12, code=_sent_code(sms_outbox)),
        **JSON,
    )
    assert done.status_code == 200, done.content
    asked, said = system_messages(conversation)
    assert asked == (
        "To confirm the change of Anna to Mobil 3 GB, we have sent a code by SMS to your phone "
        f"number ending in {billed.customer.phone[-2:]}. Tell us the code here. It is valid for "
        "10 minutes."
    )
    assert said.startswith(
        "Your plan for Anna changes from Mobil 10 GB to Mobil 3 GB on 1 December 2026"
    )
    assert "with a binding period until 30 November 2027" in said


@time_machine.travel(NOW, tick=False)
def test_a_customer_without_a_phone_gets_the_code_by_e_mail(
    plans, agent, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    billed = billed_customer(
        plans.medium, consent=False, generate=False, language="en", phone="", email="anna@ex.se"
    )
    conversation = ask(billed.invoice)
    conversation_claim(conversation_id=conversation.id, agent=agent)
    client = client_for(agent)
    assert "By e-mail to anna@ex.se." in text(_review(client, conversation, billed, plans.large))
    _send_code(client, conversation, billed, plans.large, django_capture_on_commit_callbacks)
    assert [m.to for m in mailoutbox if "code" in m.subject] == [["anna@ex.se"]]
    assert system_messages(conversation) == [
        "To confirm the change of Anna to Mobil 30 GB, we have sent a code to your e-mail "
        "address a…@ex.se. Tell us the code here. It is valid for 10 minutes."
    ]


@time_machine.travel(NOW, tick=False)
def test_codes_for_a_change_are_rate_limited(
    plans, agent, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    billed, conversation = _plan_chat(plans, agent)
    client = client_for(agent)
    for _ in range(3):
        _send_code(client, conversation, billed, plans.large, django_capture_on_commit_callbacks)
    refused = client.post(
        url(conversation, "plan-change/code"),
        {"subscription": billed.subscription.id, "plan": plans.large.id},
        HTTP_ACCEPT_LANGUAGE="en",
        **JSON,
    )
    assert refused.json() == {
        "code": "code_rate_limited",
        "message": "Several codes were sent to the customer just now. Wait ten minutes and "
        "send a new one.",
    }
    assert len(sms_outbox) == 3
    assert len(system_messages(conversation)) == 3


@time_machine.travel(NOW, tick=False)
def test_only_the_holder_sends_a_code(
    plans, agent, other_agent, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    billed, conversation = _plan_chat(plans, agent)
    refused = _send_code(
        client_for(other_agent),
        conversation,
        billed,
        plans.large,
        django_capture_on_commit_callbacks,
    )
    assert refused.status_code == 302  # back to the page, which says why
    assert not OneTimeCode.objects.exists()
    assert sms_outbox == []
    assert system_messages(conversation) == []


@time_machine.travel(NOW, tick=False)
def test_a_cheaper_plan_without_binding_needs_no_code(plans, agent, sms_outbox) -> None:
    billed, conversation = _plan_chat(plans, agent)
    client = client_for(agent)
    review = _review(client, conversation, billed, plans.small)
    assert 'id="plan-change-send-code"' not in review.content.decode()
    assert 'id="plan-change-code"' not in review.content.decode()
    # a code is neither sent for it
    refused = client.post(
        url(conversation, "plan-change/code"),
        {"subscription": billed.subscription.id, "plan": plans.small.id},
        **JSON,
    )
    assert refused.json()["code"] == "code_not_needed"
    # nor asked for: the review's confirmation makes it
    done = client.post(url(conversation, "plan-change"), _form(billed, plans.small, review))
    assert done.status_code == 302
    assert PlanChange.objects.get().to_plan == plans.small
    assert sms_outbox == []
    assert not OneTimeCode.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_only_the_holder_changes_a_plan(plans, agent, other_agent) -> None:
    billed, conversation = _plan_chat(plans, agent)
    refused = client_for(other_agent).post(
        url(conversation, "plan-change"),
        {
            "subscription": billed.subscription.id,
            "plan": plans.small.id,
            "idempotency_key": "abc",
            "confirmed": "yes",
        },
        **JSON,
    )
    assert refused.json()["code"] == "not_your_conversation"
    assert not PlanChange.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_a_subscription_not_on_the_conversations_invoice_is_not_changed(plans, agent) -> None:
    _billed, conversation = _plan_chat(plans, agent)
    other = SubscriptionFactory(plan=plans.medium)
    refused = client_for(agent).post(
        url(conversation, "plan-change"),
        {
            "subscription": other.id,
            "plan": plans.small.id,
            "idempotency_key": "abc",
            "confirmed": "yes",
        },
        **JSON,
    )
    assert refused.json()["code"] == "subscription_not_on_invoice"
    assert not PlanChange.objects.exists()


# --- undoing a change of plan ----------------------------------------------------------


def _changed_to_small(client, conversation, billed, plans) -> PlanChange:
    review = _review(client, conversation, billed, plans.small)
    client.post(url(conversation, "plan-change"), _form(billed, plans.small, review), **JSON)
    return PlanChange.objects.get()


@time_machine.travel(NOW, tick=False)
def test_the_holder_undoes_a_scheduled_change_after_a_review(plans, agent) -> None:
    # given a change to Mobil 3 GB from 1 December, made in the chat
    billed, conversation = _plan_chat(plans, agent)
    client = client_for(agent)
    change = _changed_to_small(client, conversation, billed, plans)
    # then the console offers to undo it, next to the subscription
    page = client.get(url(conversation), HTTP_ACCEPT_LANGUAGE="en")
    assert f'id="plan-change-undo-{change.id}"' in page.content.decode()
    assert (
        "Changes from Mobil 10 GB to Mobil 3 GB (199 kr a month) on 1 December 2026. The "
        "customer can have it undone until 6 December 2026."
    ) in text(page)
    # and reviews it before anything is undone
    review = client.get(url(conversation), {"undo_change": change.id}, HTTP_ACCEPT_LANGUAGE="en")
    assert 'id="plan-change-undo-confirm"' in review.content.decode()
    assert "Undo the change to Mobil 3 GB" in text(review)
    refused = client.post(url(conversation, "plan-change/undo"), {"change": change.id}, **JSON)
    assert refused.json()["code"] == "confirmation_required"
    change.refresh_from_db()
    assert change.status == PlanChangeStatus.SCHEDULED
    # when the agent confirms: undone once, however often it is clicked
    for undone in (True, False):
        done = client.post(
            url(conversation, "plan-change/undo"), {"change": change.id, "confirmed": "yes"}, **JSON
        )
        assert done.status_code == 200, done.content
        assert done.json()["undone"] is undone
    change.refresh_from_db()
    assert change.status == PlanChangeStatus.UNDONE
    assert SubscriptionEvent.objects.filter(via="chat", details__undone=True).count() == 1
    said = system_messages(conversation)
    assert said[-1] == (
        "Vi har ångrat bytet av Anna till Mobil 3 GB. Du behåller Mobil 10 GB för 299,00\xa0kr "
        "i månaden, som tidigare."
    )
    assert len(said) == 2
    # and there is nothing left to undo
    after = client.get(url(conversation)).content.decode()
    assert f'id="plan-change-undo-{change.id}"' not in after


def test_undoing_a_change_in_an_invoiced_month_credits_it_and_says_so_in_english(
    plans, agent, django_capture_on_commit_callbacks
) -> None:
    # given Mobil 10 GB moved to Mobil 30 GB on 22 November, and November invoiced with it
    sub = SubscriptionFactory(
        plan=plans.medium,
        agreed_monthly_price=plans.medium.monthly_fee,
        binding_end=None,
        label="Anna",
        customer__language="en",
    )
    with time_machine.travel(NOW, tick=False):
        change = plan_change_request(
            subscription_id=sub.id,
            to_plan_id=plans.large.id,
            requested_via="invoice_page",
            idempotency_key="k1",
            timing=ChangeTiming.NOW,
            confirmed_by_code=True,
        ).change
    with time_machine.travel("2026-12-01 06:00 +01:00", tick=False):
        run = bill_run_start(period=date(2026, 11, 1), invoice_date=date(2026, 12, 1))
        bill_run_execute(bill_run_id=run.id)
    november = Invoice.objects.get(kind="invoice", period_start=date(2026, 11, 1))
    with time_machine.travel("2026-12-03 12:00 +01:00", tick=False):
        # when the customer asks on 3 December, and the agent undoes it
        conversation = ask(november, "I did not want this")
        conversation_claim(conversation_id=conversation.id, agent=agent)
        client = client_for(agent)
        page = client.get(url(conversation)).content.decode()
        assert f'id="plan-change-undo-{change.id}"' in page
        with (
            mock.patch("chat.broadcast.send") as send,
            django_capture_on_commit_callbacks(execute=True),
        ):
            done = client.post(
                url(conversation, "plan-change/undo"),
                {"change": change.id, "confirmed": "yes"},
                **JSON,
            )
    assert done.status_code == 200, done.content
    # then November's extra days are credited, and the chat says so in the customer's words
    note = Invoice.objects.get(credited_invoice=november)
    (said,) = system_messages(conversation)
    assert said.startswith(
        "We have undone the change of Anna to Mobil 30 GB. You keep Mobil 10 GB for "
        "299.00\xa0kr a month, as before. "
    )
    assert f"Invoice {november.display_number} included days of the change" in said
    assert f"(credit note {note.display_number})." in said
    # and the customer's page shows the credit note without a reload
    payloads = [c.args[1] for c in send.call_args_list]
    assert {"type": "invoice_changed", "invoice": november.id, "what": "credit_note"} in payloads


@time_machine.travel(NOW, tick=False)
def test_a_change_past_its_cooling_off_period_is_not_undone_from_the_chat(plans, agent) -> None:
    # given a change made today (22 November) that takes effect at once
    billed, conversation = _plan_chat(plans, agent)
    client = client_for(agent)
    review = _review(client, conversation, billed, plans.small, timing="now")
    client.post(
        url(conversation, "plan-change"),
        _form(billed, plans.small, review, timing="now"),
        **JSON,
    )
    change = PlanChange.objects.get()
    assert change.status == PlanChangeStatus.APPLIED
    # when the agent tries on 7 December, after the cooling-off period (to 6 December)
    with time_machine.travel("2026-12-07 12:00 +01:00", tick=False):
        client = client_for(agent)  # a fresh session: the first one is two weeks old
        page = client.get(url(conversation)).content.decode()
        assert f'id="plan-change-undo-{change.id}"' not in page
        refused = client.post(
            url(conversation, "plan-change/undo"),
            {"change": change.id, "confirmed": "yes"},
            HTTP_ACCEPT_LANGUAGE="en",
            **JSON,
        )
    # then it is refused in plain words
    assert refused.json() == {
        "code": "cooling_off_expired",
        "message": "The cooling-off period has ended: the change can no longer be undone.",
    }
    change.refresh_from_db()
    assert change.status == PlanChangeStatus.APPLIED


@time_machine.travel(NOW, tick=False)
def test_only_the_holder_undoes_a_change(plans, agent, other_agent) -> None:
    billed, conversation = _plan_chat(plans, agent)
    change = _changed_to_small(client_for(agent), conversation, billed, plans)
    refused = client_for(other_agent).post(
        url(conversation, "plan-change/undo"), {"change": change.id, "confirmed": "yes"}, **JSON
    )
    assert refused.json()["code"] == "not_your_conversation"
    assert (
        'id="plan-change-undo-'
        not in client_for(other_agent).get(url(conversation)).content.decode()
    )
    change.refresh_from_db()
    assert change.status == PlanChangeStatus.SCHEDULED


@time_machine.travel(NOW, tick=False)
def test_a_change_of_a_subscription_not_on_the_invoice_is_not_undone(plans, agent) -> None:
    _billed, conversation = _plan_chat(plans, agent)
    other = SubscriptionFactory(
        plan=plans.medium, agreed_monthly_price=plans.medium.monthly_fee, binding_end=None
    )
    change = plan_change_request(
        subscription_id=other.id,
        to_plan_id=plans.small.id,
        requested_via="invoice_page",
        idempotency_key="other",
    ).change
    refused = client_for(agent).post(
        url(conversation, "plan-change/undo"), {"change": change.id, "confirmed": "yes"}, **JSON
    )
    assert refused.json()["code"] == "subscription_not_on_invoice"
    change.refresh_from_db()
    assert change.status == PlanChangeStatus.SCHEDULED


# --- canned replies ------------------------------------------------------------------------


@pytest.fixture
def reply() -> CannedReply:
    return CannedReply.objects.create(
        title="Belopp",
        body_sv="Hej {name}! Faktura {invoice_number} på {amount} ska betalas {due_date}. {okänd}",
        body_en="Hi {name}! Invoice {invoice_number} for {amount} is due on {due_date}.",
    )


@pytest.mark.parametrize(
    ("language", "filled"),
    [
        ("sv", "Hej {name}! Faktura {number} på 499,00 kr ska betalas 1 december 2026. {{okänd}}"),
        ("en", "Hi {name}! Invoice {number} for 499.00 kr is due on 1 December 2026."),
    ],
)
def test_a_canned_reply_is_filled_from_the_invoice_in_the_customers_language(
    language, filled, reply
) -> None:
    sub = SubscriptionFactory(
        agreed_monthly_price=Decimal("299.00"), customer__name="Anna", customer__language=language
    )
    SubscriptionFactory(customer=sub.customer, agreed_monthly_price=Decimal("199.50"))
    (invoice,) = issue_october()
    conversation = ask(invoice)
    expected = filled.format(name="Anna", number=invoice.display_number).replace(" kr", "\xa0kr")
    assert canned_reply_fill(reply, conversation) == expected


def test_the_holder_gets_the_canned_replies_filled_in_for_the_composer(
    held, agent, reply, invoice
) -> None:
    html = client_for(agent).get(url(held)).content.decode()
    assert f'data-canned-id="{reply.id}"' in html
    assert f"Faktura {invoice.display_number} på 499,00" in html


def test_canned_replies_are_seeded_in_both_languages() -> None:
    # the data migration's replies (transactional tests flush them; these do not)
    replies = list(CannedReply.objects.all())
    assert len(replies) >= 4
    assert all(r.body_sv and r.body_en for r in replies)


# --- the page's script is given what it needs --------------------------------------------


def test_the_page_configures_its_socket_and_the_last_message_it_shows(held, agent) -> None:
    html = client_for(agent).get(url(held)).content.decode()
    config = json.loads(
        re.search(
            r'<script id="support-config" type="application/json">(.*?)</script>', html, re.S
        ).group(1)
    )
    assert config["socketPath"] == "/ws/support/"
    assert config["conversation"]["id"] == held.id
    assert config["conversation"]["lastSeq"] == 1
    assert config["conversation"]["holder"] is True
    assert '<script src="/static/support.js" defer></script>' in html
