"""The agent console's ways out: beside the invoice, "Grant postponement" and "Offer
instalments" with a review before the confirmation, the customer's disputes with their
resolution; each said in the chat in the customer's language, and the page told to reload."""

from datetime import date
from decimal import Decimal
from unittest import mock

import pytest

from chat.models import Conversation
from chat.services import chat_dispute_open_customer, conversation_claim
from dunning.models import (
    DisputeOutcome,
    DisputeStatus,
    DunningPolicy,
    GrantedBy,
    InstalmentPlan,
    Postponement,
)
from invoices.models import Invoice, InvoiceCharge, InvoiceLink
from tests.chat.conftest import issue_october, make_agent
from tests.chat.test_console import JSON, ask, client_for, system_messages, text, url
from tests.dunning.ways_out_fixtures import on_20_november  # noqa: F401
from tests.factories import SubscriptionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_20_november")]

ENGLISH = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def invoice() -> Invoice:
    """299 kr due 1 December 2026, in Swedish."""
    SubscriptionFactory(agreed_monthly_price=Decimal("299.00"), customer__name="Anna")
    (invoice,) = issue_october()
    return invoice


@pytest.fixture
def held(invoice, agent) -> Conversation:
    conversation = ask(invoice)
    conversation_claim(conversation_id=conversation.id, agent=agent)
    return conversation


def test_the_holder_sees_what_may_be_granted(held, agent) -> None:
    page = text(client_for(agent).get(url(held), **ENGLISH))
    assert "Postponement and instalments" in page
    assert "299.00 kr open, due 1 December 2026." in page
    assert "From 2 December 2026 to 31 December 2026 (the policy allows 30 days)." in page
    assert "Offer instalments" in page
    assert "The customer disputes no line." in page


def test_an_agent_not_holding_the_conversation_sees_no_grants(invoice, agent) -> None:
    conversation = ask(invoice)
    page = text(client_for(agent).get(url(conversation), **ENGLISH))
    assert "Grant postponement" not in page


def test_a_postponement_is_reviewed_then_granted_and_said_in_the_chat(
    held, agent, invoice, django_capture_on_commit_callbacks
) -> None:
    client = client_for(agent)
    # when the agent chooses 20 December
    review = client.get(url(held) + "?postpone=2026-12-20", **ENGLISH)
    shown = text(review)
    # then the review says what it does, and nothing is granted yet
    assert "Postpone the payment from 1 December 2026 to 20 December 2026 (19 days)." in shown
    assert not Postponement.objects.exists()
    key = review.context["ways_out"]["postpone_review"]["idempotency_key"]
    form = {"new_due_date": "2026-12-20", "idempotency_key": key, "confirmed": "yes"}
    # when they confirm, twice
    with (
        mock.patch("chat.broadcast.send") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        first = client.post(url(held, "postponement"), form, **JSON)
        second = client.post(url(held, "postponement"), form, **JSON)
    # then one postponement, by the agent, with the terms sent and one message in the chat
    assert (first.status_code, first.json()["created"]) == (200, True)
    assert second.json()["created"] is False
    postponement = Postponement.objects.get()
    assert (postponement.granted_by, postponement.granted_by_user) == (GrantedBy.AGENT, agent)
    assert postponement.new_due_date == date(2026, 12, 20)
    assert InvoiceLink.objects.filter(invoice=invoice, reason="postponement").count() == 1
    assert system_messages(held) == [
        f"Vi har gett anstånd med betalningen av faktura {invoice.display_number} till "
        "20 december 2026. Ingen påminnelse skickas före dess. Vi har skickat villkoren till dig."
    ]
    payloads = [c.args[1] for c in send.call_args_list]
    assert {"type": "invoice_changed", "invoice": invoice.id, "what": "postponement"} in payloads


def test_without_the_review_nothing_is_granted(held, agent) -> None:
    refused = client_for(agent).post(
        url(held, "postponement"), {"new_due_date": "2026-12-20", "idempotency_key": "k"}, **JSON
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "confirmation_required"
    assert not Postponement.objects.exists()


def test_a_day_beyond_the_policy_is_refused_with_its_reason(held, agent) -> None:
    client = client_for(agent)
    assert "Choose a day within the window the policy allows." in text(
        client.get(url(held) + "?postpone=2027-02-01", **ENGLISH)
    )
    form = {"new_due_date": "2027-02-01", "idempotency_key": "k" * 32, "confirmed": "yes"}
    refused = client.post(url(held, "postponement"), form, **JSON)
    assert refused.json()["code"] == "postponement_date_invalid"
    # a plain form goes back to the review with the reason
    plain = client.post(url(held, "postponement"), form)
    assert plain["Location"] == url(held) + "?postpone=2027-02-01#ways-out"
    assert not Postponement.objects.exists()


def test_another_agent_cannot_grant_in_a_conversation_they_do_not_hold(held) -> None:
    other = make_agent("olle")
    form = {"new_due_date": "2026-12-20", "idempotency_key": "k" * 32, "confirmed": "yes"}
    refused = client_for(other).post(url(held, "postponement"), form, **JSON)
    assert refused.json()["code"] == "not_your_conversation"
    finance = make_agent("finance", support=False)
    assert client_for(finance).post(url(held, "postponement"), form).status_code == 403
    assert not Postponement.objects.exists()


def test_instalments_are_reviewed_then_made_with_the_fee_the_customer_agreed_to(
    held, agent, invoice, django_capture_on_commit_callbacks
) -> None:
    DunningPolicy.objects.filter(is_active=True).update(instalment_fee=Decimal("30.00"))
    client = client_for(agent)
    # the review without the fee, then with it
    assert "3 parts, 299.00 kr in all" in text(client.get(url(held) + "?parts=3", **ENGLISH))
    review = client.get(url(held) + "?parts=3&fee=1", **ENGLISH)
    shown = text(review)
    assert "3 parts, 329.00 kr in all (fee 30.00 kr included)" in shown
    assert "1 4 December 2026 110.00 kr" in shown
    assert not InstalmentPlan.objects.exists()
    made = review.context["ways_out"]["instalments_review"]
    form = {
        "parts": "3",
        "charge_fee": "on",
        "total": made["total_value"],
        "idempotency_key": made["idempotency_key"],
        "confirmed": "yes",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(held, "instalments"), form, **JSON)
    assert response.json()["created"] is True
    plan = InstalmentPlan.objects.get()
    assert (plan.fee, plan.amount, plan.granted_by_user) == (
        Decimal("30.00"),
        Decimal("329.00"),
        agent,
    )
    assert InvoiceCharge.objects.get(invoice=invoice).source_key == f"instalment-plan:{plan.id}"
    (said,) = system_messages(held)
    assert said.startswith(f"Vi har delat upp faktura {invoice.display_number} i 3 delar: ")
    assert "110,00\xa0kr senast 4 december 2026" in said
    assert "Totalt 329,00\xa0kr, varav 30,00\xa0kr är planens avgift." in said


def test_a_plan_is_made_without_the_fee_unless_ticked(held, agent) -> None:
    DunningPolicy.objects.filter(is_active=True).update(instalment_fee=Decimal("30.00"))
    client = client_for(agent)
    made = client.get(url(held) + "?parts=2").context["ways_out"]["instalments_review"]
    form = {
        "parts": "2",
        "total": made["total_value"],
        "idempotency_key": made["idempotency_key"],
        "confirmed": "yes",
    }
    assert client.post(url(held, "instalments"), form, **JSON).status_code == 200
    assert InstalmentPlan.objects.get().fee == Decimal("0.00")
    assert not InvoiceCharge.objects.exists()


def test_a_dispute_is_listed_and_upheld_with_a_credit_note(
    invoice, agent, django_capture_on_commit_callbacks
) -> None:
    # given the customer disputed the line from their page: the conversation it opened
    line = invoice.lines.get(kind="fee")
    opened = chat_dispute_open_customer(
        invoice_id=invoice.id, line_id=line.id, reason="Jag sa upp det i augusti"
    )
    conversation = Conversation.objects.get(id=opened.conversation_id)
    conversation_claim(conversation_id=conversation.id, agent=agent)
    client = client_for(agent)
    page = text(client.get(url(conversation), **ENGLISH))
    # (the invoice beside the chat is the customer's page, in their language)
    assert "Disputed by the customer: 299,00 kr, no reminder asks for it." in page
    assert "Jag sa upp det i augusti" in page
    # when the agent reviews upholding it, and confirms with an explanation
    review = text(client.get(url(conversation) + f"?dispute={opened.dispute.id}", **ENGLISH))
    assert "a credit note of 299.00 kr is issued" in review
    form = {
        "dispute": opened.dispute.id,
        "outcome": "upheld",
        "resolution": "Uppsagt 31 augusti, vi debiterade fel",
        "confirmed": "yes",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(conversation, "dispute"), form, **JSON)
    # then the line is credited and the customer reads it in the chat
    assert response.json()["created"] is True
    dispute = opened.dispute
    dispute.refresh_from_db()
    assert (dispute.status, dispute.outcome) == (DisputeStatus.RESOLVED, DisputeOutcome.UPHELD)
    note = Invoice.objects.get(credited_invoice=invoice)
    assert dispute.credit_note == note
    assert note.credit_reason == "Uppsagt 31 augusti, vi debiterade fel"
    said = system_messages(conversation)[-1]
    assert said.startswith("Du hade rätt om ")
    assert f"kreditfaktura {note.display_number}" in said
    # and a second click changes nothing
    again = client.post(url(conversation, "dispute"), form, **JSON)
    assert again.json()["created"] is False
    assert Invoice.objects.filter(credited_invoice=invoice).count() == 1


def test_a_rejected_dispute_is_explained_and_owed(invoice, agent) -> None:
    line = invoice.lines.get(kind="fee")
    opened = chat_dispute_open_customer(invoice_id=invoice.id, line_id=line.id, reason="Fel")
    conversation = Conversation.objects.get(id=opened.conversation_id)
    conversation_claim(conversation_id=conversation.id, agent=agent)
    form = {
        "dispute": opened.dispute.id,
        "outcome": "rejected",
        "resolution": "Abonnemanget löpte hela oktober.",
        "confirmed": "yes",
    }
    response = client_for(agent).post(url(conversation, "dispute"), form, **JSON)
    assert response.status_code == 200
    opened.dispute.refresh_from_db()
    assert opened.dispute.outcome == DisputeOutcome.REJECTED
    assert not Invoice.objects.filter(credited_invoice=invoice).exists()
    assert "Abonnemanget löpte hela oktober." in system_messages(conversation)[-1]


def test_a_resolution_needs_words_and_a_dispute_of_this_invoice(invoice, agent) -> None:
    line = invoice.lines.get(kind="fee")
    opened = chat_dispute_open_customer(invoice_id=invoice.id, line_id=line.id, reason="Fel")
    conversation = Conversation.objects.get(id=opened.conversation_id)
    conversation_claim(conversation_id=conversation.id, agent=agent)
    client = client_for(agent)
    form = {"dispute": opened.dispute.id, "outcome": "upheld", "resolution": "", "confirmed": "yes"}
    assert client.post(url(conversation, "dispute"), form, **JSON).json()["code"] == (
        "resolution_required"
    )
    # a dispute of another customer's invoice is not found from this conversation
    SubscriptionFactory(agreed_monthly_price=Decimal("99.00"))
    issue_october()
    other = Invoice.objects.exclude(id=invoice.id).get(credited_invoice__isnull=True)
    other_line = other.lines.get(kind="fee")
    elsewhere = chat_dispute_open_customer(invoice_id=other.id, line_id=other_line.id, reason="Fel")
    form.update(dispute=elsewhere.dispute.id, resolution="x")
    assert client.post(url(conversation, "dispute"), form, **JSON).json()["code"] == (
        "dispute_not_found"
    )
    elsewhere.dispute.refresh_from_db()
    assert elsewhere.dispute.status == DisputeStatus.OPEN
