"""The chat's services: numbering, the queue, read receipts, ratings, notifications and
retention — each change committed before it is announced."""

from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.utils import timezone

from chat.broadcast import AGENTS_GROUP, invoice_group
from chat.models import Author, Conversation, ConversationStatus, Message
from chat.services import (
    chat_message_post_agent,
    chat_message_post_customer,
    conversation_claim,
    conversation_close,
    conversation_customer_seen,
    conversation_mark_read,
    conversation_rate,
    conversation_transfer,
    conversations_delete_expired,
)
from core.errors import DomainError
from invoices.models import OutboundMessage
from tests.chat.conftest import make_agent

pytestmark = pytest.mark.django_db


def post(invoice, body="Varför kostar det mer?", **kwargs):
    return chat_message_post_customer(invoice_id=invoice.id, body=body, **kwargs)


def test_a_customer_message_opens_a_conversation_and_numbers_its_messages(invoice) -> None:
    first = post(invoice)
    second = post(invoice, "Och surfen?")
    conversation = Conversation.objects.get()
    assert (first.seq, second.seq) == (1, 2)
    assert first.conversation_id == second.conversation_id == conversation.id
    assert conversation.status == ConversationStatus.WAITING
    assert conversation.last_seq == 2
    assert conversation.waiting_since == first.created_at
    assert conversation.language == invoice.language


def test_the_doorbell_rings_only_after_commit(invoice, django_capture_on_commit_callbacks):
    with mock.patch("chat.broadcast.send_many") as send_many:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            post(invoice)
        assert send_many.call_count == 0
        for callback in callbacks:
            callback()
    ((sends,),) = [c.args for c in send_many.call_args_list]
    group = invoice_group(invoice.id)
    # the message to the invoice's sockets, then the summary to the customer's socket and the
    # agents' queue
    assert [(g, p["type"], audience) for g, p, audience in sends] == [
        (group, "message", ""),
        (group, "conversation", "customer"),
        (AGENTS_GROUP, "conversation", ""),
    ]
    assert sends[0][1]["seq"] == 1


def test_a_later_post_rings_the_customers_socket_with_the_message_alone(
    invoice, django_capture_on_commit_callbacks
) -> None:
    # given a conversation the customer's socket already follows
    post(invoice)
    # when the customer writes again
    with (
        mock.patch("chat.broadcast.send_many") as send_many,
        django_capture_on_commit_callbacks(execute=True),
    ):
        post(invoice, "Och en sak till")
    # then the socket gets the message (its number says the rest), the agents the summary
    ((sends,),) = [c.args for c in send_many.call_args_list]
    assert [(g, p["type"], audience) for g, p, audience in sends] == [
        (invoice_group(invoice.id), "message", ""),
        (AGENTS_GROUP, "conversation", ""),
    ]
    assert sends[1][1]["last_seq"] == 2


def test_a_message_id_is_stored_once_per_conversation_and_must_look_like_one(invoice) -> None:
    first = chat_message_post_customer(invoice_id=invoice.id, body="Hej", client_id="a-1")
    # when the page sends it again with the same id, the first is returned
    again = chat_message_post_customer(invoice_id=invoice.id, body="Hej", client_id="a-1")
    assert (again.id, again.seq) == (first.id, 1)
    # another id is another message
    assert chat_message_post_customer(invoice_id=invoice.id, body="Hej", client_id="a-2").seq == 2
    # and an id that no page makes is refused
    with pytest.raises(DomainError) as refused:
        chat_message_post_customer(invoice_id=invoice.id, body="Hej", client_id="x" * 37)
    assert refused.value.code == "client_id_invalid"
    assert Message.objects.count() == 2


def test_a_post_is_stored_and_answered_when_the_channel_layer_is_down(
    invoice, django_capture_on_commit_callbacks
) -> None:
    # given a channel layer that cannot be reached (Redis restarting)
    broken = mock.Mock()
    broken.group_send = mock.AsyncMock(side_effect=ConnectionError("redis down"))
    with (
        mock.patch("chat.broadcast.get_channel_layer", return_value=broken),
        django_capture_on_commit_callbacks(execute=True),
    ):
        message = post(invoice)
    # then the message is stored all the same
    assert Message.objects.get().id == message.id
    assert broken.group_send.await_count >= 1


@pytest.mark.parametrize(
    ("body", "code"),
    [("   ", "message_empty"), ("x" * 2001, "message_too_long"), ("hej\x00", "message_invalid")],
)
def test_bad_bodies_are_refused_with_a_reason_and_nothing_is_stored(invoice, body, code):
    with pytest.raises(DomainError) as refused:
        post(invoice, body)
    assert refused.value.code == code
    assert not Message.objects.exists()
    assert not Conversation.objects.exists()


def test_markup_is_stored_as_the_plain_text_it_is(invoice) -> None:
    message = post(invoice, "<script>alert(1)</script>")
    assert message.body == "<script>alert(1)</script>"  # escaped by every page on output


def test_asking_about_a_line_quotes_it_as_the_customer_saw_it(invoice) -> None:
    line = invoice.lines.get(kind="fee", amount="199.50")
    message = post(invoice, "Vad är detta?", line_id=line.id)
    assert message.quote == {
        "position": line.position,
        "title": line.texts["sv"]["title"],
        "amount": "199.50",
    }


def test_a_line_of_another_invoice_cannot_be_quoted(two_invoices) -> None:
    first, second = two_invoices
    other_line = second.lines.first()
    with pytest.raises(DomainError) as refused:
        post(first, line_id=other_line.id)
    assert refused.value.code == "line_not_found"


def test_a_customer_posting_very_fast_is_slowed_down(invoice, settings) -> None:
    settings.CHAT_CUSTOMER_MESSAGES_PER_MINUTE = 3
    for n in range(3):
        post(invoice, f"meddelande {n}")
    with pytest.raises(DomainError) as refused:
        post(invoice, "ett till")
    assert refused.value.code == "chat_rate_limited"
    assert Message.objects.count() == 3


def test_two_agents_cannot_claim_the_same_conversation(invoice, agent, other_agent) -> None:
    conversation = post(invoice).conversation
    conversation_claim(conversation_id=conversation.id, agent=agent)
    with pytest.raises(DomainError) as refused:
        conversation_claim(conversation_id=conversation.id, agent=other_agent)
    assert refused.value.code == "already_claimed"
    # claiming one's own again changes nothing
    assert conversation_claim(conversation_id=conversation.id, agent=agent).agent == agent


def test_staff_outside_the_support_group_are_no_agents(invoice) -> None:
    conversation = post(invoice).conversation
    outsider = make_agent("finance", support=False)
    with pytest.raises(DomainError) as refused:
        conversation_claim(conversation_id=conversation.id, agent=outsider)
    assert refused.value.code == "not_an_agent"


def test_an_agent_answers_only_a_conversation_they_hold(invoice, agent, other_agent) -> None:
    conversation = post(invoice).conversation
    with pytest.raises(DomainError) as refused:
        chat_message_post_agent(conversation_id=conversation.id, agent=agent, body="Hej!")
    assert refused.value.code == "not_your_conversation"
    conversation_claim(conversation_id=conversation.id, agent=agent)
    answer = chat_message_post_agent(conversation_id=conversation.id, agent=agent, body="Hej!")
    conversation.refresh_from_db()
    assert (answer.seq, answer.author, answer.agent) == (2, Author.AGENT, agent)
    assert conversation.waiting_since is None  # answered: no longer waiting
    assert conversation.agent_read_seq == 2


def test_an_answer_to_a_customer_whose_page_is_closed_goes_by_sms_with_a_link(
    invoice, agent, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    # given a customer who wrote an hour ago and left the page
    with time_machine.travel(timezone.now() - timedelta(hours=1)):
        conversation = post(invoice).conversation
    conversation_claim(conversation_id=conversation.id, agent=agent)
    # when the agent answers (twice)
    with django_capture_on_commit_callbacks(execute=True):
        chat_message_post_agent(
            conversation_id=conversation.id, agent=agent, body="Avgiften gäller surf."
        )
    with django_capture_on_commit_callbacks(execute=True):
        chat_message_post_agent(conversation_id=conversation.id, agent=agent, body="Något mer?")
    # then one message tells them, with the answer and a new link to the chat
    sent = OutboundMessage.objects.filter(invoice=invoice)
    assert sent.count() >= 1
    assert len({m.created_at for m in sent}) == 1  # once, not for every answer
    texts = [text for _to, text in sms_outbox] or [m.body_text for m in sent]
    assert any("Avgiften gäller surf." in text and "/i/" in text for text in texts)
    assert all("#chat" in m.body_text for m in sent)


def test_no_notification_while_the_customer_has_the_chat_open(
    invoice, agent, django_capture_on_commit_callbacks
) -> None:
    conversation = post(invoice).conversation
    conversation_customer_seen(invoice_id=invoice.id)
    conversation_claim(conversation_id=conversation.id, agent=agent)
    with django_capture_on_commit_callbacks(execute=True):
        chat_message_post_agent(conversation_id=conversation.id, agent=agent, body="Hej!")
    assert not OutboundMessage.objects.exists()


def test_transfer_to_another_agent_or_back_to_the_queue(invoice, agent, other_agent) -> None:
    conversation = post(invoice).conversation
    conversation_claim(conversation_id=conversation.id, agent=agent)
    moved = conversation_transfer(
        conversation_id=conversation.id, agent=agent, to_agent=other_agent
    )
    assert (moved.status, moved.agent) == (ConversationStatus.ASSIGNED, other_agent)
    with pytest.raises(DomainError):
        conversation_transfer(conversation_id=conversation.id, agent=agent, to_agent=None)
    queued = conversation_transfer(
        conversation_id=conversation.id, agent=other_agent, to_agent=None
    )
    assert (queued.status, queued.agent) == (ConversationStatus.WAITING, None)


def test_closing_says_so_in_the_chat_and_the_customer_rates_it_once(invoice, agent) -> None:
    conversation = post(invoice).conversation
    conversation_claim(conversation_id=conversation.id, agent=agent)
    with pytest.raises(DomainError) as refused:
        conversation_rate(conversation_id=conversation.id, invoice_id=invoice.id, rating=5)
    assert refused.value.code == "conversation_open"
    conversation_close(conversation_id=conversation.id, agent=agent)
    closing = Message.objects.get(seq=2)
    assert closing.author == Author.SYSTEM
    assert closing.body.startswith("Samtalet är stängt.")  # in the customer's language
    with pytest.raises(DomainError) as refused:
        conversation_rate(conversation_id=conversation.id, invoice_id=invoice.id, rating=6)
    assert refused.value.code == "rating_invalid"
    rated = conversation_rate(
        conversation_id=conversation.id, invoice_id=invoice.id, rating=4, comment=" Snabbt "
    )
    assert (rated.rating, rated.rating_comment) == (4, "Snabbt")
    again = conversation_rate(conversation_id=conversation.id, invoice_id=invoice.id, rating=1)
    assert again.rating == 4


def test_writing_after_a_close_starts_a_new_conversation(invoice, agent) -> None:
    first = post(invoice).conversation
    conversation_claim(conversation_id=first.id, agent=agent)
    conversation_close(conversation_id=first.id, agent=agent)
    message = post(invoice, "En sak till")
    assert message.conversation_id != first.id
    assert message.seq == 1


def test_another_invoices_conversation_cannot_be_rated(two_invoices, agent) -> None:
    first, second = two_invoices
    conversation = post(first).conversation
    conversation_close(conversation_id=conversation.id, agent=agent)
    with pytest.raises(DomainError) as refused:
        conversation_rate(conversation_id=conversation.id, invoice_id=second.id, rating=5)
    assert refused.value.code == "conversation_not_found"


def test_read_receipts_only_move_forward(invoice) -> None:
    conversation = post(invoice).conversation
    post(invoice, "två")
    post(invoice, "tre")
    assert conversation_mark_read(conversation_id=conversation.id, side="agent", seq=2) == 2
    assert conversation_mark_read(conversation_id=conversation.id, side="agent", seq=1) == 2
    assert conversation_mark_read(conversation_id=conversation.id, side="agent", seq=99) == 3


def test_retention_deletes_old_conversations_with_their_messages(invoice, agent, settings):
    settings.CHAT_RETENTION_DAYS = 30
    with time_machine.travel(timezone.now() - timedelta(days=40)):
        old = post(invoice).conversation
        conversation_close(conversation_id=old.id, agent=agent)
    recent = post(invoice, "Ny fråga").conversation
    assert conversations_delete_expired() == 1
    assert list(Conversation.objects.values_list("id", flat=True)) == [recent.id]
    assert not Message.objects.filter(conversation_id=old.id).exists()


def test_an_agent_who_does_not_hold_the_conversation_moves_no_receipt(
    invoice, agent, other_agent
) -> None:
    conversation = post(invoice).conversation
    post(invoice, "två")
    conversation_claim(conversation_id=conversation.id, agent=agent)
    assert (
        conversation_mark_read(
            conversation_id=conversation.id, side="agent", seq=2, agent=other_agent
        )
        == 0
    )
    assert (
        conversation_mark_read(conversation_id=conversation.id, side="agent", seq=2, agent=agent)
        == 2
    )
    conversation.refresh_from_db()
    assert conversation.agent_read_seq == 2


def test_a_receipt_that_moves_nothing_is_one_read_and_no_transaction(
    invoice, django_assert_num_queries
) -> None:
    conversation = post(invoice).conversation
    conversation_mark_read(conversation_id=conversation.id, side="agent", seq=1)
    with django_assert_num_queries(1) as captured:
        assert conversation_mark_read(conversation_id=conversation.id, side="agent", seq=1) == 1
    assert "SAVEPOINT" not in captured.captured_queries[0]["sql"]


def test_posting_takes_a_fixed_number_of_queries(invoice, agent, django_assert_num_queries) -> None:
    # given a conversation an agent holds (its summary names the agent and the invoice)
    conversation = post(invoice).conversation
    conversation_claim(conversation_id=conversation.id, agent=agent)
    # savepoint, conversation (locked, with its agent), insert, update, release
    with django_assert_num_queries(5):
        post(invoice, "Och surfen?")
    # savepoint, the support group, conversation (locked, with invoice, series and agent),
    # insert, update, release
    with django_assert_num_queries(6):
        chat_message_post_agent(conversation_id=conversation.id, agent=agent, body="Hej!")
