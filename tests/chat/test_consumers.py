"""The chat's websockets through the real ASGI application (origin check, session auth,
routing): who may connect, what reaches whom, and replay after a reconnect."""

import json
from collections.abc import Awaitable, Callable
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from chat.broadcast import invoice_group
from chat.models import Conversation, Message
from chat.selectors import message_payload
from chat.services import chat_message_post_customer, conversation_claim, conversation_close
from config.asgi import application
from invoices.services.credit_notes import credit_note_issue
from invoices.services.links import invoice_link_create, invoice_links_revoke

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def run(coroutine: Callable[[], Awaitable[Any]]) -> Any:
    return async_to_sync(coroutine)()


def customer_socket(token: str, origin: tuple[bytes, bytes] = ORIGIN) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/chat/{token}/", headers=[origin])


def agent_socket(user) -> WebsocketCommunicator:
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return WebsocketCommunicator(
        application, "/ws/support/", headers=[ORIGIN, (b"cookie", cookie.encode())]
    )


post = database_sync_to_async(chat_message_post_customer)


async def receive_type(socket: WebsocketCommunicator, kind: str) -> dict[str, Any]:
    """The next frame of ``kind`` (conversation summaries and the like may come between)."""
    for _ in range(20):
        frame = await socket.receive_json_from(timeout=3)
        if frame["type"] == kind:
            return frame
    raise AssertionError(f"no {kind} frame")


async def queued(console: WebsocketCommunicator, conversation_id: int) -> dict[str, Any]:
    """The next summary of ``conversation_id`` in the console's queue frames."""
    for _ in range(20):
        frame = await receive_type(console, "queue")
        found = [c for c in frame["conversations"] if c["id"] == conversation_id]
        if found:
            return found[-1]
    raise AssertionError(f"no summary of conversation {conversation_id}")


async def resumed_socket(token: str, conversation_id: int, *, after: int) -> WebsocketCommunicator:
    """A customer's socket, connected and resumed after message ``after`` of the conversation
    (its hello and the conversation's summary read)."""
    socket = customer_socket(token)
    assert (await socket.connect())[0]
    await receive_type(socket, "hello")
    await socket.send_json_to({"type": "resume", "conversation": conversation_id, "after": after})
    await receive_type(socket, "conversation")
    return socket


def test_an_unknown_link_cannot_open_a_chat() -> None:
    async def scenario() -> None:
        socket = customer_socket("x" * 43)
        connected, code = await socket.connect()
        assert (connected, code) == (False, 4404)

    run(scenario)


def test_a_socket_from_another_site_is_refused(invoice) -> None:
    token = invoice_link_create(invoice=invoice)

    async def scenario() -> None:
        socket = customer_socket(token, origin=(b"origin", b"https://evil.example"))
        connected, _code = await socket.connect()
        assert not connected

    run(scenario)


def test_a_customer_gets_the_messages_of_their_invoice_and_no_other(two_invoices) -> None:
    first, second = two_invoices
    mine, theirs = invoice_link_create(invoice=first), invoice_link_create(invoice=second)

    async def scenario() -> None:
        socket, other = customer_socket(mine), customer_socket(theirs)
        assert (await socket.connect())[0]
        assert (await other.connect())[0]
        assert (await socket.receive_json_from())["type"] == "hello"
        assert (await other.receive_json_from())["type"] == "hello"
        # when the customer writes on the first invoice (stored and committed, then announced)
        await post(invoice_id=first.id, body="Varför 299 kr?")
        # then their socket gets it, once, with its number
        message = await receive_type(socket, "message")
        assert (message["seq"], message["body"], message["author"]) == (
            1,
            "Varför 299 kr?",
            "customer",
        )
        # and the socket of another invoice gets nothing at all
        assert await other.receive_nothing(timeout=0.3)
        await socket.disconnect()
        await other.disconnect()

    run(scenario)


def test_a_reconnecting_customer_gets_every_missed_message_in_order_once(invoice) -> None:
    token = invoice_link_create(invoice=invoice)

    async def scenario() -> None:
        first = await post(invoice_id=invoice.id, body="ett")
        await post(invoice_id=invoice.id, body="två")
        await post(invoice_id=invoice.id, body="tre")
        # given a page that saw message 1 and lost its connection
        socket = customer_socket(token)
        assert (await socket.connect())[0]
        await receive_type(socket, "hello")
        # when it reconnects with the last number it saw
        await socket.send_json_to(
            {"type": "resume", "conversation": first.conversation_id, "after": 1}
        )
        # then it gets 2 and 3, in order
        assert (await receive_type(socket, "message"))["body"] == "två"
        assert (await receive_type(socket, "message"))["body"] == "tre"
        # and a new message arrives once, numbered after them
        await post(invoice_id=invoice.id, body="fyra")
        assert (await receive_type(socket, "message"))["seq"] == 4
        while not await socket.receive_nothing(timeout=0.3):
            frame = await socket.receive_json_from()
            assert frame["type"] != "message", frame
        await socket.disconnect()

    run(scenario)


def test_a_customer_posts_over_the_socket_and_the_agent_hears_it(invoice, agent) -> None:
    token = invoice_link_create(invoice=invoice)
    console = agent_socket(agent)

    async def scenario() -> None:
        assert (await console.connect())[0]
        await receive_type(console, "hello")
        socket = customer_socket(token)
        assert (await socket.connect())[0]
        await receive_type(socket, "hello")
        # when the page posts over its socket, asking about a line
        line = await database_sync_to_async(lambda: invoice.lines.exclude(kind="rounding")[0])()
        await socket.send_json_to({"type": "post", "id": "m-1", "body": "Vad är detta?",
                                   "line": line.id})  # fmt: skip
        # then the message comes back once, then the answer to the post
        message = await socket.receive_json_from(timeout=3)
        assert (message["type"], message["seq"], message["body"]) == ("message", 1, "Vad är detta?")
        assert message["quote"]["position"] == line.position
        posted = await socket.receive_json_from(timeout=3)
        assert posted == {
            "type": "posted",
            "id": "m-1",
            "conversation": message["conversation"],
            "seq": 1,
        }
        # and the agents' queue shows it waiting
        summary = await queued(console, message["conversation"])
        assert (summary["status"], summary["unread"]) == ("waiting", 1)
        # and no second copy comes when the doorbell rings (the new conversation's summary
        # does)
        while not await socket.receive_nothing(timeout=0.3):
            frame = await socket.receive_json_from()
            assert frame["type"] == "conversation", frame
        await socket.disconnect()
        await console.disconnect()

    run(scenario)


def test_a_post_sent_again_with_its_id_is_stored_once(invoice) -> None:
    token = invoice_link_create(invoice=invoice)
    client = Client()

    async def scenario() -> None:
        socket = await resumed_socket_for_new(token)
        await socket.send_json_to({"type": "post", "id": "same-id", "body": "Hej"})
        assert (await receive_type(socket, "posted"))["seq"] == 1
        # when the page did not hear the answer and sends it again over the socket
        await socket.send_json_to({"type": "post", "id": "same-id", "body": "Hej"})
        assert (await receive_type(socket, "posted"))["seq"] == 1
        await socket.disconnect()

    run(scenario)
    # and by HTTP, as the page does when the socket closed before answering
    again = client.post(
        f"/i/{token}/chat/messages/",
        {"body": "Hej", "client_id": "same-id"},
        HTTP_ACCEPT="application/json",
    )
    assert again.status_code == 201
    assert again.json()["seq"] == 1
    assert Message.objects.filter(conversation__invoice=invoice).count() == 1


def test_a_refused_post_over_the_socket_says_why_in_the_pages_language(invoice) -> None:
    token = invoice_link_create(invoice=invoice)

    async def scenario() -> None:
        socket = await resumed_socket_for_new(token)
        await socket.send_json_to({"type": "post", "id": "m-2", "body": "   "})
        refused = await receive_type(socket, "post_refused")
        assert (refused["id"], refused["code"]) == ("m-2", "message_empty")
        assert refused["message"] == "Skriv ett meddelande först."
        # or in the page's, when the customer reads it in English
        await socket.send_json_to({"type": "post", "id": "m-3", "body": "", "lang": "en"})
        assert (await receive_type(socket, "post_refused"))["message"] == "Write a message first."
        await socket.disconnect()

    run(scenario)
    assert not Message.objects.exists()


def test_no_post_over_the_socket_of_a_credit_notes_link(invoice) -> None:
    note = credit_note_issue(invoice_id=invoice.id, reason="Fel kund")
    token = invoice_link_create(invoice=note)

    async def scenario() -> None:
        socket = await resumed_socket_for_new(token)
        await socket.send_json_to({"type": "post", "id": "m-3", "body": "Hej"})
        assert (await receive_type(socket, "post_refused"))["code"] == "chat_not_here"
        await socket.disconnect()

    run(scenario)
    assert not Message.objects.exists()


async def resumed_socket_for_new(token: str) -> WebsocketCommunicator:
    """A customer's socket on an invoice without a conversation yet, its hello read."""
    socket = customer_socket(token)
    assert (await socket.connect())[0]
    await receive_type(socket, "hello")
    return socket


def test_a_missed_doorbell_is_made_good_from_the_database(invoice) -> None:
    token = invoice_link_create(invoice=invoice)

    async def scenario() -> None:
        socket = customer_socket(token)
        assert (await socket.connect())[0]
        await receive_type(socket, "hello")
        # given a message whose announcement was lost (the layer was down for a moment)
        with mock.patch("chat.broadcast.send_many"):
            await post(invoice_id=invoice.id, body="borttappad")
        # when the next one is announced
        await post(invoice_id=invoice.id, body="nästa")
        # then the socket reads the gap first: both, in order
        assert (await receive_type(socket, "message"))["body"] == "borttappad"
        assert (await receive_type(socket, "message"))["body"] == "nästa"
        await socket.disconnect()

    run(scenario)


def test_an_agent_socket_needs_a_support_session(invoice, agent) -> None:
    from tests.chat.conftest import make_agent

    outsider = make_agent("finance", support=False)
    staff, socket = agent_socket(outsider), agent_socket(agent)  # log in outside the loop

    async def scenario() -> None:
        anonymous = WebsocketCommunicator(application, "/ws/support/", headers=[ORIGIN])
        assert await anonymous.connect() == (False, 4403)
        assert await staff.connect() == (False, 4403)
        assert (await socket.connect())[0]
        assert (await socket.receive_json_from())["type"] == "hello"
        await socket.disconnect()

    run(scenario)


def test_agents_see_the_queue_move_and_the_conversation_they_watch(invoice, agent) -> None:
    token = invoice_link_create(invoice=invoice)
    console = agent_socket(agent)

    async def scenario() -> None:
        assert (await console.connect())[0]
        await receive_type(console, "hello")
        # when a customer writes, the queue shows a waiting conversation with one unread
        message = await post(invoice_id=invoice.id, body="Hej, en fråga")
        summary = await queued(console, message.conversation_id)
        assert (summary["status"], summary["unread"], summary["invoice"]) == (
            "waiting",
            1,
            invoice.id,
        )
        assert summary["waiting_since"] is not None
        # and watching it brings its messages, then what comes next
        await console.send_json_to(
            {"type": "watch", "conversation": message.conversation_id, "after": 0}
        )
        assert (await receive_type(console, "message"))["body"] == "Hej, en fråga"
        customer = customer_socket(token)
        assert (await customer.connect())[0]
        await receive_type(customer, "hello")
        await customer.send_json_to(
            {"type": "resume", "conversation": message.conversation_id, "after": 1}
        )
        assert (await receive_type(customer, "conversation"))["status"] == "waiting"
        await customer.send_json_to({"type": "typing"})
        typing = await receive_type(console, "typing")
        assert typing["who"] == "customer"
        # claiming it shows in every console's queue, and on the customer's page
        await database_sync_to_async(conversation_claim)(
            conversation_id=message.conversation_id, agent=agent
        )
        claimed = await queued(console, message.conversation_id)
        assert (claimed["status"], claimed["agent_id"]) == ("assigned", agent.pk)
        seen = await receive_type(customer, "conversation")
        assert seen["status"] == "assigned"
        assert "unread" not in seen  # the agents' bookkeeping is not the customer's
        await customer.disconnect()
        await console.disconnect()

    run(scenario)


# --- the socket's right, read again while it lives ---------------------------------------


async def closed_with(socket: WebsocketCommunicator) -> tuple[int, list[dict[str, Any]]]:
    """The code the server closes ``socket`` with, and the frames it sent before."""
    frames: list[dict[str, Any]] = []
    for _ in range(30):
        output = await socket.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            return output.get("code", 1000), frames
        frames.append(json.loads(output["text"]))
    raise AssertionError(f"the socket stayed open ({frames})")


def from_address(socket: WebsocketCommunicator, address: str) -> WebsocketCommunicator:
    socket.scope["client"] = (address, 50000)
    return socket


def test_a_revoked_link_stops_its_open_socket(invoice, monkeypatch) -> None:
    token = invoice_link_create(invoice=invoice)
    first = chat_message_post_customer(invoice_id=invoice.id, body="ett")

    async def scenario() -> None:
        # given a page whose socket follows the conversation
        socket = await resumed_socket(token, first.conversation_id, after=1)
        # when the invoice's links are revoked and, once the socket's right is due to be
        # read again, a message is written
        await database_sync_to_async(invoice_links_revoke)(invoice_id=invoice.id, reason="leak")
        monkeypatch.setattr("chat.consumers.RECHECK_SECONDS", 0.0)
        await post(invoice_id=invoice.id, body="hemligt")
        # then the socket is closed as for an unknown link, and the message never reaches it
        code, frames = await closed_with(socket)
        assert code == 4404
        assert [f for f in frames if f["type"] == "message"] == []

    run(scenario)


def test_a_ping_reads_the_link_again_at_once(invoice) -> None:
    token = invoice_link_create(invoice=invoice)

    async def scenario() -> None:
        socket = customer_socket(token)
        assert (await socket.connect())[0]
        await receive_type(socket, "hello")
        await database_sync_to_async(invoice_links_revoke)(invoice_id=invoice.id, reason="leak")
        await socket.send_json_to({"type": "ping"})
        assert (await closed_with(socket))[0] == 4404

    run(scenario)


def test_guessing_tokens_over_websockets_is_limited_per_address(invoice, settings) -> None:
    settings.INVOICE_LINK_GUESS_LIMIT = 2
    token = invoice_link_create(invoice=invoice)

    async def scenario() -> None:
        # given two unknown tokens tried from one address
        for guess in ("x" * 43, "y" * 43):
            socket = from_address(customer_socket(guess), "203.0.113.9")
            assert await socket.connect() == (False, 4404)
        # then that address cannot open even a real link's socket for a while
        socket = from_address(customer_socket(token), "203.0.113.9")
        assert await socket.connect() == (False, 4429)
        # while another address can
        other = from_address(customer_socket(token), "198.51.100.7")
        assert (await other.connect())[0]
        await other.disconnect()

    run(scenario)


def test_an_old_link_over_a_websocket_is_no_guess(invoice, settings) -> None:
    settings.INVOICE_LINK_GUESS_LIMIT = 1
    old = invoice_link_create(invoice=invoice)
    invoice_links_revoke(invoice_id=invoice.id, reason="resent")
    token = invoice_link_create(invoice=invoice)

    async def scenario() -> None:
        for _ in range(2):
            socket = from_address(customer_socket(old), "203.0.113.9")
            assert await socket.connect() == (False, 4404)
        socket = from_address(customer_socket(token), "203.0.113.9")
        assert (await socket.connect())[0]
        await socket.disconnect()

    run(scenario)


def test_an_agent_out_of_the_support_group_is_refused_from_then_on(invoice, agent) -> None:
    conversation_id = chat_message_post_customer(invoice_id=invoice.id, body="Hej").conversation_id
    console = agent_socket(agent)

    async def scenario() -> None:
        assert (await console.connect())[0]
        await receive_type(console, "hello")
        # when the agent is taken out of the support group while the console is open
        await database_sync_to_async(agent.groups.clear)()
        # then watching a conversation is refused and the socket closes
        await console.send_json_to({"type": "watch", "conversation": conversation_id, "after": 0})
        code, frames = await closed_with(console)
        assert code == 4403
        assert [f for f in frames if f["type"] == "message"] == []

    run(scenario)


def test_a_deactivated_agents_console_closes_at_its_next_ping(invoice, agent) -> None:
    console = agent_socket(agent)

    async def scenario() -> None:
        assert (await console.connect())[0]
        await receive_type(console, "hello")
        agent.is_active = False
        await database_sync_to_async(agent.save)(update_fields=["is_active"])
        await console.send_json_to({"type": "ping"})
        assert (await closed_with(console))[0] == 4403

    run(scenario)


def test_an_agent_who_does_not_hold_a_conversation_reads_it_for_no_one(
    invoice, agent, other_agent
) -> None:
    message = chat_message_post_customer(invoice_id=invoice.id, body="Hej")
    conversation_claim(conversation_id=message.conversation_id, agent=agent)
    console = agent_socket(other_agent)

    async def scenario() -> None:
        assert (await console.connect())[0]
        await receive_type(console, "hello")
        await console.send_json_to(
            {"type": "watch", "conversation": message.conversation_id, "after": 0}
        )
        await receive_type(console, "message")
        await console.send_json_to({"type": "read", "seq": 1})
        await console.send_json_to({"type": "ping"})  # answered after the read was handled
        assert await console.receive_nothing(timeout=0.3)
        await console.disconnect()

    run(scenario)
    assert Conversation.objects.get(id=message.conversation_id).agent_read_seq == 0


# --- delivery -------------------------------------------------------------------------------


def test_a_ping_makes_good_a_lost_doorbell(invoice) -> None:
    token = invoice_link_create(invoice=invoice)
    first = chat_message_post_customer(invoice_id=invoice.id, body="ett")

    async def scenario() -> None:
        socket = await resumed_socket(token, first.conversation_id, after=1)
        # given a message whose announcement was lost, and no message after it
        with mock.patch("chat.broadcast.send_many"):
            await post(invoice_id=invoice.id, body="borttappad")
        assert await socket.receive_nothing(timeout=0.3)
        # when the page's heartbeat comes, the socket reads the gap
        await socket.send_json_to({"type": "ping"})
        assert (await receive_type(socket, "message"))["body"] == "borttappad"
        await socket.disconnect()

    run(scenario)


def test_a_message_posted_between_connect_and_resume_arrives_once(invoice) -> None:
    token = invoice_link_create(invoice=invoice)
    first = chat_message_post_customer(invoice_id=invoice.id, body="ett")

    async def scenario() -> None:
        # given a page that has message 1 and opens its socket
        socket = customer_socket(token)
        assert (await socket.connect())[0]
        await receive_type(socket, "hello")
        # when message 2 is announced (and forwarded) before the page's resume arrives
        await post(invoice_id=invoice.id, body="två")
        seqs = []
        while 2 not in seqs:
            seqs.append((await receive_type(socket, "message"))["seq"])
        await socket.send_json_to(
            {"type": "resume", "conversation": first.conversation_id, "after": 1}
        )
        # then the resume does not send it again
        while not await socket.receive_nothing(timeout=0.5):
            frame = await socket.receive_json_from()
            if frame["type"] == "message":
                seqs.append(frame["seq"])
        await socket.disconnect()
        assert seqs.count(2) == 1, seqs

    run(scenario)


def test_a_late_doorbell_of_a_closed_conversation_does_not_take_the_socket_back(
    invoice, agent
) -> None:
    token = invoice_link_create(invoice=invoice)
    old = chat_message_post_customer(invoice_id=invoice.id, body="gammal").conversation
    conversation_claim(conversation_id=old.id, agent=agent)
    conversation_close(conversation_id=old.id, agent=agent)
    late = message_payload(Message.objects.filter(conversation=old).order_by("-seq").first())
    new = chat_message_post_customer(invoice_id=invoice.id, body="ny").conversation

    async def scenario() -> None:
        socket = await resumed_socket(token, new.id, after=1)
        # when the closed conversation's last announcement arrives late
        await get_channel_layer().group_send(
            invoice_group(invoice.id), {"type": "chat.event", "payload": late, "audience": ""}
        )
        # then the socket stays with the new conversation
        await post(invoice_id=invoice.id, body="två")
        message = await receive_type(socket, "message")
        assert (message["conversation"], message["seq"]) == (new.id, 2)
        await socket.disconnect()

    run(scenario)


def test_customers_are_not_told_which_agent_is_typing(invoice, agent) -> None:
    token = invoice_link_create(invoice=invoice)
    message = chat_message_post_customer(invoice_id=invoice.id, body="Hej")
    conversation_claim(conversation_id=message.conversation_id, agent=agent)
    console = agent_socket(agent)

    async def scenario() -> None:
        customer = customer_socket(token)
        assert (await customer.connect())[0]
        await receive_type(customer, "hello")
        await customer.send_json_to(
            {"type": "resume", "conversation": message.conversation_id, "after": 1}
        )
        assert (await console.connect())[0]
        await receive_type(console, "hello")
        await console.send_json_to(
            {"type": "watch", "conversation": message.conversation_id, "after": 1}
        )
        await console.send_json_to({"type": "typing"})
        typing = await receive_type(customer, "typing")
        assert typing == {
            "type": "typing",
            "conversation": message.conversation_id,
            "who": "agent",
        }
        await customer.disconnect()
        await console.disconnect()

    run(scenario)


# --- the frame budget ----------------------------------------------------------------------


def test_a_socket_sending_too_many_frames_is_closed(invoice, settings) -> None:
    settings.CHAT_SOCKET_FRAMES = 3
    settings.CHAT_SOCKET_FRAMES_SECONDS = 60
    token = invoice_link_create(invoice=invoice)

    async def scenario() -> None:
        socket = customer_socket(token)
        assert (await socket.connect())[0]
        await receive_type(socket, "hello")
        for _ in range(4):
            await socket.send_json_to({"type": "read", "seq": 1})
        assert (await closed_with(socket))[0] == 4408

    run(scenario)


def test_a_post_over_the_socket_of_a_revoked_link_is_refused_at_once(invoice) -> None:
    token = invoice_link_create(invoice=invoice)

    async def scenario() -> None:
        socket = await resumed_socket_for_new(token)
        # when the link is stopped (leaked) and the open page posts a moment later
        await database_sync_to_async(invoice_links_revoke)(invoice_id=invoice.id, reason="leak")
        await socket.send_json_to({"type": "post", "id": "m-9", "body": "Hej"})
        # then the socket closes as the page would have answered: the link is gone
        code, frames = await closed_with(socket)
        assert code == 4404
        assert not [f for f in frames if f["type"] in {"message", "posted"}]

    run(scenario)
    assert not Message.objects.exists()


def test_a_socket_whose_layer_is_away_closes_at_its_ping_so_the_page_polls(invoice) -> None:
    token = invoice_link_create(invoice=invoice)
    layer = get_channel_layer()
    original = layer.group_send

    async def redis_away(group: str, event: dict[str, Any]) -> None:
        if group == "chat.health":
            raise ConnectionError("Redis is restarting")
        await original(group, event)

    async def scenario() -> None:
        socket = await resumed_socket_for_new(token)
        # while the layer answers, a ping keeps the socket
        await socket.send_json_to({"type": "ping"})
        assert await socket.receive_nothing(timeout=0.3)
        # when it does not, the next ping closes it: the page says it is reconnecting
        with mock.patch.object(layer, "group_send", redis_away):
            await socket.send_json_to({"type": "ping"})
            code, _frames = await closed_with(socket)
        assert code == 4503

    run(scenario)
