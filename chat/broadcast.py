"""What the chat sends over the channel layer, and to whom.

The layer is only a doorbell: every message is stored (with its sequence number) and
committed before it is announced, and a socket that missed an announcement catches up from
the database. Sending is best effort: with the layer down (Redis restarting) a post is still
stored and answered, and the sockets catch up when they reconnect.
"""

import logging
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

AGENTS_GROUP = "chat.agents"  # every agent console: the queue


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


class InvoiceChangedPayload(TypedDict):
    """Something on the invoice's page changed (a credit note from the chat): reload it."""

    type: Literal["invoice_changed"]
    invoice: int


Payload = (
    ChatMessagePayload | TypingPayload | ReadPayload | ConversationPayload | InvoiceChangedPayload
)


def send(group: str, payload: Payload, *, audience: str = "") -> None:
    """Ring ``group``'s bell with ``payload`` (for the customer's sockets only when
    ``audience`` is "customer"); logs and carries on when the layer is down."""
    layer = get_channel_layer()
    if layer is None:
        return
    event = {"type": "chat.event", "payload": payload, "audience": audience}
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:
        logger.warning("Chat broadcast to %s failed; sockets catch up on reconnect", group)
