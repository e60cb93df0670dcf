"""The chat's websockets through the real ASGI application (origin check, session auth,
routing): who may connect, what reaches whom, and replay after a reconnect."""

from collections.abc import Awaitable, Callable
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from chat.services import chat_message_post_customer, conversation_claim
from config.asgi import application
from invoices.services.links import invoice_link_create

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


def test_a_missed_doorbell_is_made_good_from_the_database(invoice) -> None:
    token = invoice_link_create(invoice=invoice)

    async def scenario() -> None:
        socket = customer_socket(token)
        assert (await socket.connect())[0]
        await receive_type(socket, "hello")
        # given a message whose announcement was lost (the layer was down for a moment)
        with mock.patch("chat.broadcast.send"):
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
        queued = await receive_type(console, "conversation")
        assert (queued["status"], queued["unread"], queued["invoice"]) == (
            "waiting",
            1,
            invoice.id,
        )
        assert queued["waiting_since"] is not None
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
        claimed = await receive_type(console, "conversation")
        assert (claimed["status"], claimed["agent_id"]) == ("assigned", agent.pk)
        seen = await receive_type(customer, "conversation")
        assert seen["status"] == "assigned"
        assert "unread" not in seen  # the agents' bookkeeping is not the customer's
        await customer.disconnect()
        await console.disconnect()

    run(scenario)
