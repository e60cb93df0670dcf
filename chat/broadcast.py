"""What the chat sends over the channel layer, and to whom.

The layer is only a doorbell: every message is stored (with its sequence number) and
committed before it is announced, and a socket that missed an announcement catches up from
the database. Sending is best effort: with the layer down (Redis restarting) a post is still
stored and answered, and the sockets catch up when they reconnect.
"""

import asyncio
import logging
import os
import threading
from collections.abc import Iterable
from typing import Any, Literal, NotRequired, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)

# Every process's agents' queue hub (``chat.queue``), which passes the queue to the consoles
# of its process.
AGENTS_GROUP = "chat.agents"
SEND_TIMEOUT_SECONDS = 5.0  # a synchronous caller waits at most this long for the bell


def invoice_group(invoice_id: int) -> str:
    """The customer's sockets on one invoice and the agents who have its conversation open."""
    return f"chat.invoice.{invoice_id}"


class QuotePayload(TypedDict):
    position: int
    title: str
    amount: str


class ChatMessagePayload(TypedDict):
    type: Literal["message"]
    conversation: int
    seq: int
    author: str  # customer, agent, system
    agent_name: str
    body: str
    quote: QuotePayload | None
    created_at: str  # ISO 8601, UTC


class TypingPayload(TypedDict):
    type: Literal["typing"]
    conversation: int
    who: str  # customer, agent (never which agent: customers see only "support is writing")


class ReadPayload(TypedDict):
    type: Literal["read"]
    conversation: int
    side: str  # who read: customer, agent
    seq: int


class ConversationPayload(TypedDict):
    """A conversation as the queue and the customer's panel show it."""

    type: Literal["conversation"]
    id: int
    invoice: int
    invoice_number: str
    customer_name: str
    status: str
    agent_id: int | None
    agent_name: str
    waiting_since: str | None
    last_seq: int
    unread: int  # for the agents
    customer_read_seq: int
    version: int  # the conversation's changes so far: a higher one is newer


class InvoiceChangedPayload(TypedDict):
    """Something on the invoice's page changed (a credit note from the chat): reload it.
    ``what`` names it for the page's announcement (credit_note, postponement,
    instalment_plan, dispute)."""

    type: Literal["invoice_changed"]
    invoice: int
    what: NotRequired[str]


class PaymentsChangedPayload(TypedDict):
    """What the invoice's page shows of payments changed (a payment booked, a refund): the
    page reads its payment summary again through its own link. Nothing else is said, so
    nothing of the invoice travels over the layer."""

    type: Literal["payments_changed"]
    invoice: int


Payload = (
    ChatMessagePayload
    | TypingPayload
    | ReadPayload
    | ConversationPayload
    | InvoiceChangedPayload
    | PaymentsChangedPayload
)


Send = tuple[str, Payload, str]  # group, payload, audience ("customer" or "")


def send(group: str, payload: Payload, *, audience: str = "") -> None:
    """Ring ``group``'s bell with ``payload`` (for the customer's sockets only when
    ``audience`` is "customer"); logs and carries on when the layer is down."""
    send_many([(group, payload, audience)])


def payments_changed_send(*, invoice_ids: Iterable[int]) -> None:
    """Ring each invoice's group: its customers' open pages refresh their payment summary.
    The customer's socket joins its invoice's group when it opens, with or without a
    conversation, so a page with money open (which opens its socket at once) hears it."""
    sends: list[Send] = []
    for invoice_id in invoice_ids:
        payload: PaymentsChangedPayload = {"type": "payments_changed", "invoice": invoice_id}
        sends.append((invoice_group(invoice_id), payload, "customer"))
    send_many(sends)


def send_many(sends: Iterable[Send]) -> None:
    """Ring the bells of one change at once: one event per group holding its payloads in
    order (a socket handles them in that order), all sent in one hand-off to an event loop.
    Logs and carries on when the layer is down."""
    layer = get_channel_layer()
    if layer is None:
        return
    events: dict[str, dict[str, Any]] = {}
    for group, payload, audience in sends:
        event = events.setdefault(group, {"type": "chat.events", "items": []})
        event["items"].append({"payload": payload, "audience": audience})
    if not events:
        return

    async def ring() -> None:
        for group, event in events.items():
            await layer.group_send(group, event)

    try:
        _run(layer, ring)
    except Exception:
        logger.warning("Chat broadcast to %s failed; sockets catch up on reconnect", list(events))


def _run(layer: BaseChannelLayer, ring: Any) -> None:
    """Run ``ring()`` to its end from synchronous code (a view, a task).

    A layer outside the process (Redis) is rung from one event loop per process that lives
    as long as the process, so its connections are opened once, not per call as
    ``async_to_sync`` would (a new event loop, a new Redis connection each time: most of a
    post's cost in a WSGI worker). The in-memory layer has no connections and its queues
    belong to the loop of the sockets that read them: it is rung through ``async_to_sync``,
    which under an ASGI server runs in that loop."""
    if isinstance(layer, InMemoryChannelLayer):
        async_to_sync(ring)()
        return
    future = asyncio.run_coroutine_threadsafe(ring(), _bell_loop())
    try:
        future.result(timeout=SEND_TIMEOUT_SECONDS)
    except TimeoutError:
        future.cancel()
        raise


_bell: tuple[int, asyncio.AbstractEventLoop] | None = None  # (pid, loop)
_bell_lock = threading.Lock()


def _bell_loop() -> asyncio.AbstractEventLoop:
    """This process's bell loop, started on first use in a daemon thread (again in a forked
    child: a thread does not survive ``fork``, as with gunicorn's ``--preload``)."""
    global _bell
    with _bell_lock:
        if _bell is None or _bell[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="chat-bell", daemon=True).start()
            _bell = (os.getpid(), loop)
        return _bell[1]
