"""The chat's websockets: the customer's on an invoice page, the agent's in the console.

Both only receive what the database already holds: a socket keeps the number of the last
message it sent its client per conversation, forwards an announced message only when it is
the next one, and reads the gap from the database when announcements were missed. A client
that reconnects says the last number it saw (``resume``) and gets every message after it,
in order, without duplicates. Posting goes through HTTP (``chat/views.py``), so it works
while the channel layer is down.

Client → server frames: {"type": "resume", "conversation": id|null, "after": n},
{"type": "typing"}, {"type": "read", "seq": n}, {"type": "ping"}; agents also
{"type": "watch", "conversation": id, "after": n}. Server → client frames are the payloads
of ``chat.broadcast``, plus {"type": "hello", ...} on connect.
"""

import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from chat import broadcast
from chat.models import Conversation
from chat.selectors import (
    conversation_current_for_invoice,
    conversation_payload,
    is_support_agent,
    message_payload,
    messages_after,
)
from chat.services import (
    agent_presence_connect,
    agent_presence_disconnect,
    agent_presence_heartbeat,
    agents_online,
    conversation_customer_seen,
    conversation_mark_read,
)
from invoices.selectors import invoice_get_by_token

TYPING_EVERY_SECONDS = 2.0  # a client's typing frames are passed on at most this often
CLOSE_NOT_FOUND = 4404
CLOSE_FORBIDDEN = 4403


class _ReplayingConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """What both sockets share: in-order, exactly-once delivery of one conversation."""

    conversation_id: int | None = None
    sent_seq: int = 0  # the newest message of ``conversation_id`` this client has
    last_typing: float = 0.0

    async def _replay(self, conversation_id: int, after: int) -> None:
        """Send the client every message after ``after`` (and keep doing so as they come)."""
        if conversation_id != self.conversation_id:
            self.conversation_id, self.sent_seq = conversation_id, 0
        self.sent_seq = max(0, after)
        await self._catch_up()

    async def _catch_up(self) -> None:
        if self.conversation_id is None:
            return
        while True:
            missed = await database_sync_to_async(messages_after)(
                self.conversation_id, self.sent_seq
            )
            for message in missed:
                await self.send_json(message_payload(message))
                self.sent_seq = message.seq
            if len(missed) < 500:
                return

    async def chat_event(self, event: dict[str, Any]) -> None:
        """A doorbell from the channel layer."""
        payload = event["payload"]
        kind = payload.get("type")
        if kind == "message":
            if payload["conversation"] != self.conversation_id:
                await self._on_other_conversation(payload)
                return
            if payload["seq"] <= self.sent_seq:
                return  # already sent (a replay overtook the doorbell)
            if payload["seq"] == self.sent_seq + 1:
                await self.send_json(payload)
                self.sent_seq = payload["seq"]
            else:
                await self._catch_up()  # announcements were missed: read the gap
            return
        if kind == "typing" and self._is_own_typing(payload):
            return
        if kind in {"typing", "read"} and payload["conversation"] != self.conversation_id:
            return
        await self._forward(payload)

    async def _on_other_conversation(self, payload: dict[str, Any]) -> None:
        return None

    def _is_own_typing(self, payload: dict[str, Any]) -> bool:
        return False

    async def _forward(self, payload: dict[str, Any]) -> None:
        await self.send_json(payload)

    def _typing_allowed(self) -> bool:
        now = time.monotonic()
        if now - self.last_typing < TYPING_EVERY_SECONDS:
            return False
        self.last_typing = now
        return True


class CustomerChatConsumer(_ReplayingConsumer):
    """``/ws/chat/<token>/``: the invoice link's capability opens that invoice's chat only."""

    invoice_id: int | None = None
    group: str = ""

    async def connect(self) -> None:
        token = self.scope["url_route"]["kwargs"]["token"]
        invoice = await database_sync_to_async(invoice_get_by_token)(token)
        if invoice is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.invoice_id = invoice.id
        self.group = broadcast.invoice_group(invoice.id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await database_sync_to_async(conversation_customer_seen)(invoice_id=invoice.id)
        online = await database_sync_to_async(agents_online)()
        await self.send_json({"type": "hello", "agents_online": online})

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or self.invoice_id is None:
            return
        kind = content.get("type")
        if kind == "resume":
            await self._resume(content)
        elif kind == "typing" and self.conversation_id and self._typing_allowed():
            await self.channel_layer.group_send(
                self.group,
                {
                    "type": "chat.event",
                    "payload": {
                        "type": "typing",
                        "conversation": self.conversation_id,
                        "who": "customer",
                    },
                },
            )
        elif kind == "read" and self.conversation_id:
            seq = _int(content.get("seq"))
            if seq is not None:
                await database_sync_to_async(conversation_mark_read)(
                    conversation_id=self.conversation_id, side="customer", seq=seq
                )
        elif kind == "ping":
            await database_sync_to_async(conversation_customer_seen)(invoice_id=self.invoice_id)

    async def _resume(self, content: dict[str, Any]) -> None:
        if self.invoice_id is None:
            return
        current = await database_sync_to_async(conversation_current_for_invoice)(self.invoice_id)
        if current is None:
            return
        asked = _int(content.get("conversation"))
        after = _int(content.get("after")) or 0
        if asked != current.id:
            after = 0  # a conversation the client does not know yet: all of it
        summary = await database_sync_to_async(_summary)(current)
        await self.send_json(summary)
        await self._replay(current.id, after)

    async def _on_other_conversation(self, payload: dict[str, Any]) -> None:
        # A new conversation on this invoice (the old one was closed): follow it from its start.
        await self._replay(payload["conversation"], 0)

    def _is_own_typing(self, payload: dict[str, Any]) -> bool:
        return bool(payload.get("who") == "customer")

    async def _forward(self, payload: dict[str, Any]) -> None:
        if payload.get("type") == "conversation" and payload.get("id") == self.conversation_id:
            payload = _customer_view(payload)
        elif payload.get("type") == "conversation":
            return  # about another of this invoice's conversations
        await self.send_json(payload)


class AgentConsumer(_ReplayingConsumer):
    """``/ws/support/``: a staff session of the support group. Every agent gets the queue;
    the conversation an agent ``watch``es also streams its messages, typing and receipts."""

    group: str = ""
    agent_id: int | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        allowed = await database_sync_to_async(is_support_agent)(user)
        if not allowed:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.agent_id = user.pk
        await self.channel_layer.group_add(broadcast.AGENTS_GROUP, self.channel_name)
        await self.accept()
        await database_sync_to_async(agent_presence_connect)(agent_id=user.pk)
        await self.send_json({"type": "hello", "agent_id": user.pk})

    async def disconnect(self, code: int) -> None:
        if self.agent_id is None:
            return
        await self.channel_layer.group_discard(broadcast.AGENTS_GROUP, self.channel_name)
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await database_sync_to_async(agent_presence_disconnect)(agent_id=self.agent_id)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or self.agent_id is None:
            return
        kind = content.get("type")
        if kind == "watch":
            await self._watch(content)
        elif kind == "typing" and self.conversation_id and self._typing_allowed():
            await self.channel_layer.group_send(
                self.group,
                {
                    "type": "chat.event",
                    "payload": {
                        "type": "typing",
                        "conversation": self.conversation_id,
                        "who": "agent",
                        "agent_id": self.agent_id,
                    },
                },
            )
        elif kind == "read" and self.conversation_id:
            seq = _int(content.get("seq"))
            if seq is not None:
                await database_sync_to_async(conversation_mark_read)(
                    conversation_id=self.conversation_id, side="agent", seq=seq
                )
        elif kind == "ping":
            await database_sync_to_async(agent_presence_heartbeat)(agent_id=self.agent_id)

    async def _watch(self, content: dict[str, Any]) -> None:
        conversation_id = _int(content.get("conversation"))
        if conversation_id is None:
            return
        conversation = await database_sync_to_async(
            Conversation.objects.filter(id=conversation_id).first
        )()
        if conversation is None:
            await self.send_json({"type": "error", "code": "conversation_not_found"})
            return
        group = broadcast.invoice_group(conversation.invoice_id)
        if group != self.group:
            if self.group:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.channel_layer.group_add(group, self.channel_name)
            self.group = group
        await self._replay(conversation.id, _int(content.get("after")) or 0)

    async def chat_event(self, event: dict[str, Any]) -> None:
        payload = event["payload"]
        if payload.get("type") == "conversation":
            # the queue: every summary reaches every agent once, from the agents' group (the
            # invoice group's copy is for the customer's sockets)
            if event.get("audience") != "customer":
                await self.send_json(payload)
            return
        if payload.get("type") == "invoice_changed":
            return
        await super().chat_event(event)

    def _is_own_typing(self, payload: dict[str, Any]) -> bool:
        return bool(payload.get("who") == "agent")


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _summary(conversation: Conversation) -> dict[str, Any]:
    return _customer_view(dict(conversation_payload(conversation)))


def _customer_view(payload: dict[str, Any]) -> dict[str, Any]:
    """What a customer may see of a conversation's summary: not the agents' bookkeeping."""
    return {
        "type": "conversation",
        "id": payload["id"],
        "status": payload["status"],
        "agent_name": payload["agent_name"],
        "last_seq": payload["last_seq"],
    }
