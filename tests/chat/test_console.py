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

from billing.models import PlanChange
from chat.models import Author, CannedReply, Conversation, ConversationStatus, Message
from chat.selectors import canned_reply_fill
from chat.services import chat_message_post_customer, conversation_claim
from invoices.models import Invoice, InvoiceLine, OutboundMessage, PageEvent, PageEventKind
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
    assert {"type": "invoice_changed", "invoice": invoice.id} in payloads


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


@time_machine.travel(NOW, tick=False)
def test_a_dearer_plan_says_so_and_needs_the_customers_agreement(plans, agent) -> None:
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
    assert 'id="plan-change-agreed"' in review.content.decode()
    assert not PlanChange.objects.exists()
    # when the agent confirms without ticking that the customer agreed
    form = {
        "subscription": billed.subscription.id,
        "plan": plans.large.id,
        "timing": "next_period",
        "binding_months": 0,
        "idempotency_key": _key(review),
        "confirmed": "yes",
    }
    refused = client.post(url(conversation, "plan-change"), form, **JSON)
    assert refused.json()["code"] == "customer_agreement_required"
    assert not PlanChange.objects.exists()
    # then with it: one change, however often it is clicked
    for _ in range(2):
        done = client.post(
            url(conversation, "plan-change"), {**form, "customer_agreed": "1"}, **JSON
        )
        assert done.status_code == 200
    change = PlanChange.objects.get()
    assert (change.requested_via, change.requested_by) == ("chat", "agnes")
    assert change.to_plan == plans.large
    assert change.effective_date == date(2026, 12, 1)
    assert change.idempotency_key.startswith(f"chat:{conversation.id}:")
    said = system_messages(conversation)
    assert len(said) == 1
    assert said[0].startswith("Ditt abonnemang för Anna byts från Mobil 10 GB till Mobil 30 GB")
    assert "1 december 2026" in said[0]
    # the customer has the receipt with its undo link
    assert OutboundMessage.objects.filter(to=billed.customer.email).exists()
    # and offers computed for the plan they had are no longer shown
    offer.refresh_from_db()
    assert offer.status == OfferStatus.SUPERSEDED


@time_machine.travel(NOW, tick=False)
def test_a_plan_change_adding_a_binding_period_says_so_in_english(plans, agent) -> None:
    billed, conversation = _plan_chat(plans, agent, language="en")
    client = client_for(agent)
    review = _review(client, conversation, billed, plans.small, binding_months=12)
    assert "It adds a binding period until 30 November 2027." in text(review)
    done = client.post(
        url(conversation, "plan-change"),
        {
            "subscription": billed.subscription.id,
            "plan": plans.small.id,
            "timing": "next_period",
            "binding_months": 12,
            "idempotency_key": _key(review),
            "customer_agreed": "1",
            "confirmed": "yes",
        },
        **JSON,
    )
    assert done.status_code == 200, done.content
    (said,) = system_messages(conversation)
    assert said.startswith(
        "Your plan for Anna changes from Mobil 10 GB to Mobil 3 GB on 1 December 2026"
    )
    assert "with a binding period until 30 November 2027" in said


@time_machine.travel(NOW, tick=False)
def test_a_cheaper_plan_without_binding_needs_no_agreement(plans, agent) -> None:
    billed, conversation = _plan_chat(plans, agent)
    client = client_for(agent)
    review = _review(client, conversation, billed, plans.small)
    assert 'id="plan-change-agreed"' not in review.content.decode()
    done = client.post(
        url(conversation, "plan-change"),
        {
            "subscription": billed.subscription.id,
            "plan": plans.small.id,
            "timing": "next_period",
            "binding_months": 0,
            "idempotency_key": _key(review),
            "confirmed": "yes",
        },
    )
    assert done.status_code == 302
    assert PlanChange.objects.get().to_plan == plans.small


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
