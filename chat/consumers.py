"""The chat's websockets: the customer's on an invoice page, the agent's in the console.

Both only receive what the database already holds: a socket keeps the number of the last
message it sent its client per conversation, forwards an announced message only when it is
the next one, and reads the gap from the database when announcements were missed. A client
that reconnects says the last number it saw (``resume``) and gets every message after it,
in order, without duplicates. A customer posts over the socket, or through HTTP
(``chat/views.py``) while the socket is down; both store the message before any bell rings,
so posting works with the channel layer down. Each ``ping`` also reads the gap, so a lost
announcement is made good within a heartbeat even when no later one comes; and when the
layer does not take a ping's doorbell (Redis away), the socket is closed with 4503, so its
page says it is reconnecting and polls until the layer is back.

A socket's right to its conversation is read again while it lives, not only when it opens:
the customer's invoice link (revoked or expired: closed with 4404) and the agent's standing
(deactivated or out of the support group: 4403), before anything is forwarded at most every
``RECHECK_SECONDS``, and at every ``resume`` and ``ping`` (a customer's ``post`` reads its link
with the post, as an HTTP post does). An address that has guessed too
many invoice links cannot open a customer socket (4429, as the page answers 429), and a
socket sending more frames than ``CHAT_SOCKET_FRAMES`` per ``CHAT_SOCKET_FRAMES_SECONDS`` is
closed (4408).

Client → server frames: {"type": "resume", "conversation": id|null, "after": n},
{"type": "typing"}, {"type": "read", "seq": n}, {"type": "ping"}; customers also
{"type": "post", "id": str, "body": str, "line": id|null, "lang": "sv"|"en"} (answered
"posted" or "post_refused"), agents {"type": "watch", "conversation": id, "after": n}.
Server → client frames are the payloads of ``chat.broadcast``, plus {"type": "hello", ...}
on connect; an agent's queue comes as {"type": "queue", "conversations": [summary, ...]}
from the process's hub (``chat.queue``).
"""

import time
from contextlib import suppress
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import translation

from chat import broadcast, queue
from chat.errors import error_text
from chat.models import Conversation, Message
from chat.parsing import parse_int
from chat.selectors import (
    REPLAY_LIMIT,
    conversation_current_for_invoice,
    conversation_get_for_agent_id,
    conversation_payload,
    is_support_agent,
    message_payload,
    messages_after,
    support_agent_get,
)
from chat.services import (
    agent_presence_connect,
    agent_presence_disconnect,
    agent_presence_heartbeat,
    agents_online,
    chat_message_post_customer,
    conversation_customer_seen,
    conversation_mark_read,
)
from chat.throttle import frame_bucket
from core.errors import DomainError
from invoices import guard
from invoices.models import InvoiceLink
from invoices.selectors import invoice_link_is_live, invoice_link_lookup

TYPING_EVERY_SECONDS = 2.0  # a client's typing frames are passed on at most this often
# A socket's right (the link, the agent) is read again before forwarding at most this often.
RECHECK_SECONDS = 30.0
RECHECKED_AT_ONCE = frozenset({"resume", "ping"})  # frames that read it again in any case
CLOSE_FORBIDDEN = 4403  # not (or no longer) a support agent
CLOSE_NOT_FOUND = 4404  # the invoice link is unknown, expired or revoked
CLOSE_TOO_MANY_FRAMES = 4408  # more frames than the socket's budget (chat.throttle)
CLOSE_TOO_MANY_GUESSES = 4429  # the address guessed too many links (invoices.guard)
CLOSE_LAYER_DOWN = 4503  # the channel layer (Redis) cannot be reached: the page polls meanwhile
HEALTH_GROUP = "chat.health"  # nobody listens: a ping rings it to see that the layer answers


class _ReplayingConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """What both sockets share: in-order, exactly-once delivery of one conversation; the
    frames both sides send (typing, read, ping) within a budget; and reading the socket's
    right again while it lives. Each side says who it is (``side``), how it re-reads its
    right (``_allowed_now``), what its heartbeat does and which frames are its own."""

    side: str = ""  # customer, agent: the ``who`` of its typing, the ``side`` of its receipts
    close_code: int = CLOSE_FORBIDDEN  # what a socket whose right is gone is closed with
    group: str = ""  # the invoice group it hears its conversation's events in
    reader: User | None = None  # the agent whose receipts it sends (None: the customer)
    conversation_id: int | None = None
    sent_seq: int = 0  # the newest message of ``conversation_id`` this socket has sent
    last_typing: float = 0.0
    checked_at: float = 0.0  # time.monotonic() when the right was last read
    gone: bool = False  # closed by the server: nothing more is sent or done

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames = frame_bucket()

    # --- what each side fills in -----------------------------------------------------------

    async def _allowed_now(self) -> bool:
        """Read from the database whether this socket may still hear its conversation."""
        raise NotImplementedError

    async def _heartbeat(self) -> None:
        """A ``ping``: the client's page is still open."""

    async def _on_frame(self, kind: object, content: dict[str, Any]) -> None:
        """A frame only this side knows (``resume``, ``watch``); others are ignored."""

    async def _on_other_conversation(self, payload: dict[str, Any]) -> None:
        """A message of a conversation the socket does not follow."""

    async def _forward(self, payload: dict[str, Any], audience: str) -> None:
        await self.send_json(payload)

    # --- frames from the client --------------------------------------------------------------

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if self.gone or not isinstance(content, dict):
            return
        if not self.frames.take():
            await self._close(CLOSE_TOO_MANY_FRAMES)
            return
        kind = content.get("type")
        if not await self._still_allowed(at_once=kind in RECHECKED_AT_ONCE):
            return
        if kind == "typing":
            await self._typing()
        elif kind == "read":
            await self._read(parse_int(content.get("seq")))
        elif kind == "ping":
            if not await self._layer_answers():
                await self._close(CLOSE_LAYER_DOWN)
                return
            await self._heartbeat()
            await self._catch_up()  # a doorbell lost while the socket stayed up
        else:
            await self._on_frame(kind, content)

    async def _layer_answers(self) -> bool:
        """Whether the channel layer takes a doorbell now. With Redis away a socket would hear
        nothing and say nothing of it: closed, its page says it is reconnecting and polls
        (an agent's console reads the whole queue again when it is back)."""
        try:
            await self.channel_layer.group_send(HEALTH_GROUP, {"type": "chat.health"})
        except Exception:
            return False
        return True

    async def _typing(self) -> None:
        if not (self.conversation_id and self.group and self._typing_allowed()):
            return
        payload: broadcast.TypingPayload = {
            "type": "typing",
            "conversation": self.conversation_id,
            "who": self.side,
        }
        await self.channel_layer.group_send(self.group, {"type": "chat.event", "payload": payload})

    async def _read(self, seq: int | None) -> None:
        if seq is None or not self.conversation_id:
            return
        with suppress(DomainError):  # the conversation was deleted meanwhile (retention)
            await database_sync_to_async(conversation_mark_read)(
                conversation_id=self.conversation_id, side=self.side, seq=seq, agent=self.reader
            )

    # --- the socket's right ----------------------------------------------------------------

    async def _still_allowed(self, *, at_once: bool = False) -> bool:
        """Whether this socket may still hear its conversation, read again from the database
        when ``at_once`` or when the last reading is ``RECHECK_SECONDS`` old. A socket that
        may not is closed with ``close_code``."""
        if self.gone:
            return False
        if at_once or time.monotonic() - self.checked_at >= RECHECK_SECONDS:
            if not await self._allowed_now():
                await self._close(self.close_code)
                return False
            self.checked_at = time.monotonic()
        return True

    async def _close(self, code: int) -> None:
        self.gone = True
        await self.close(code=code)

    # --- delivery ------------------------------------------------------------------------------

    async def _replay(self, conversation_id: int, after: int) -> None:
        """Send the client every message after ``after`` (and keep doing so as they come).

        Within one socket a number never goes back: of the conversation it already follows,
        what it has sent is not sent again (a doorbell may have come before ``resume``)."""
        if conversation_id != self.conversation_id:
            self.conversation_id, self.sent_seq = conversation_id, max(0, after)
        else:
            self.sent_seq = max(self.sent_seq, after)
        await self._catch_up()

    async def _catch_up(self) -> None:
        """Send what the database holds after ``sent_seq`` (one indexed query when nothing
        was missed)."""
        if self.conversation_id is None:
            return
        while True:
            missed = await database_sync_to_async(messages_after)(
                self.conversation_id, self.sent_seq
            )
            for message in missed:
                await self.send_json(message_payload(message))
                self.sent_seq = message.seq
            if len(missed) < REPLAY_LIMIT:
                return

    async def chat_events(self, event: dict[str, Any]) -> None:
        """The doorbells of one change (``broadcast.send_many``), in order."""
        for item in event["items"]:
            await self.chat_event(item)

    async def chat_event(self, event: dict[str, Any]) -> None:
        """A doorbell from the channel layer."""
        if not await self._still_allowed():
            return
        payload = event["payload"]
        kind = payload.get("type")
        if kind == "message":
            if payload["conversation"] != self.conversation_id:
                await self._on_other_conversation(payload)
            elif payload["seq"] == self.sent_seq + 1:
                await self.send_json(payload)
                self.sent_seq = payload["seq"]
            elif payload["seq"] > self.sent_seq:
                await self._catch_up()  # announcements were missed: read the gap
            # else: already sent (a replay overtook the doorbell)
            return
        if kind in {"typing", "read"}:
            if payload["conversation"] != self.conversation_id:
                return
            if kind == "typing" and payload.get("who") == self.side:
                return  # this side's own typing
        await self._forward(payload, event.get("audience", ""))

    def _typing_allowed(self) -> bool:
        now = time.monotonic()
        if now - self.last_typing < TYPING_EVERY_SECONDS:
            return False
        self.last_typing = now
        return True


class CustomerChatConsumer(_ReplayingConsumer):
    """``/ws/chat/<token>/``: the invoice link's capability opens that invoice's chat only,
    for as long as the link stays live."""

    side = "customer"
    close_code = CLOSE_NOT_FOUND
    invoice_id: int | None = None
    link_hash: str = ""  # the link's SHA-256 (``InvoiceLink.token_hash``), never the token
    language: str = "sv"  # the invoice's: the words of a refusal
    credit_note: bool = False  # no chat on a credit note (its invoice's page has one)

    async def connect(self) -> None:
        token = self.scope["url_route"]["kwargs"]["token"]
        address = guard.scope_client_address(self.scope)
        opened = await database_sync_to_async(_link_open)(token, address)
        if isinstance(opened, int):
            await self.close(code=opened)
            return
        self.link_hash = opened.token_hash
        self.checked_at = time.monotonic()
        self.invoice_id = opened.invoice_id
        self.language = opened.invoice.language
        self.credit_note = opened.invoice.is_credit_note
        self.group = broadcast.invoice_group(opened.invoice_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await database_sync_to_async(conversation_customer_seen)(invoice_id=opened.invoice_id)
        online = await database_sync_to_async(agents_online)()
        await self.send_json({"type": "hello", "agents_online": online})

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def _allowed_now(self) -> bool:
        return bool(await database_sync_to_async(invoice_link_is_live)(self.link_hash))

    async def _heartbeat(self) -> None:
        if self.invoice_id is not None:
            await database_sync_to_async(conversation_customer_seen)(invoice_id=self.invoice_id)

    async def _on_frame(self, kind: object, content: dict[str, Any]) -> None:
        if kind == "resume":
            await self._resume(content)
        elif kind == "post":
            await self._post(content)

    async def _post(self, content: dict[str, Any]) -> None:
        """The customer's message sent over the socket: stored as an HTTP post stores it,
        then answered with ``posted`` (its conversation and number; the message itself comes
        as every message does, once) or ``post_refused`` (the stable code and the customer's
        words). ``id`` is the page's for the message: if the answer is lost, the page sends
        it again by HTTP with the same id, and it is stored once."""
        client_id = content.get("id") if isinstance(content.get("id"), str) else ""
        body = content.get("body")
        try:
            if self.invoice_id is None or self.credit_note:
                raise DomainError(code="chat_not_here", message="No chat on a credit note.")
            message = await database_sync_to_async(_post_on_live_link)(
                self.link_hash,
                invoice_id=self.invoice_id,
                body=body if isinstance(body, str) else "",
                line_id=parse_int(content.get("line")),
                client_id=client_id,
            )
        except DomainError as error:
            # in the page's language when it says one we speak, else the invoice's
            language = content.get("lang")
            if not (isinstance(language, str) and language in dict(settings.LANGUAGES)):
                language = self.language
            with translation.override(language):
                text = error_text(error)
            await self.send_json(
                {"type": "post_refused", "id": client_id, "code": error.code, "message": text}
            )
            return
        if message is None:  # the link was revoked or has expired meanwhile
            await self._close(CLOSE_NOT_FOUND)
            return
        # as if its doorbell rang: the doorbell itself then finds it sent
        await self.chat_event({"payload": message_payload(message), "audience": ""})
        await self.send_json(
            {
                "type": "posted",
                "id": client_id,
                "conversation": message.conversation_id,
                "seq": message.seq,
            }
        )

    async def _resume(self, content: dict[str, Any]) -> None:
        if self.invoice_id is None:
            return
        current = await database_sync_to_async(conversation_current_for_invoice)(self.invoice_id)
        if current is None:
            return
        asked = parse_int(content.get("conversation"))
        after = parse_int(content.get("after")) or 0
        if asked != current.id:
            after = 0  # a conversation the client does not know yet: all of it
        summary = await database_sync_to_async(_summary)(current)
        await self.send_json(summary)
        await self._replay(current.id, after)

    async def _on_other_conversation(self, payload: dict[str, Any]) -> None:
        # The invoice's first conversation, or a newer one (the old one was closed): follow it
        # from its start. A late doorbell of an older, closed conversation never takes the
        # socket back to it.
        if self.conversation_id is not None and payload["conversation"] < self.conversation_id:
            return
        await self._replay(payload["conversation"], 0)

    async def _forward(self, payload: dict[str, Any], audience: str) -> None:
        kind = payload.get("type")
        if kind == "conversation":
            if payload.get("id") != self.conversation_id:
                return  # about another of this invoice's conversations
            payload = _customer_view(payload)
        elif kind == "typing":
            payload = {key: value for key, value in payload.items() if key != "agent_id"}
        await self.send_json(payload)


class AgentConsumer(_ReplayingConsumer):
    """``/ws/support/``: a staff session of the support group. Every agent gets the queue;
    the conversation an agent ``watch``es also streams its messages, typing and receipts.
    The agent is read afresh from the database while the socket lives: one deactivated or
    taken out of the support group is refused from then on."""

    side = "agent"
    close_code = CLOSE_FORBIDDEN
    agent_id: int | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        allowed = await database_sync_to_async(is_support_agent)(user)
        if not allowed:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.agent_id = user.pk
        self.reader = user  # only its id counts: the service checks who holds the conversation
        self.checked_at = time.monotonic()
        await queue.hub_for(self.channel_layer).join(self)
        try:
            await self.accept()
            await database_sync_to_async(agent_presence_connect)(agent_id=user.pk)
        except BaseException:
            # no disconnect() follows a connect() that failed: the hub lets go here
            await queue.hub_for(self.channel_layer).leave(self)
            raise
        await self.send_json({"type": "hello", "agent_id": user.pk})

    async def disconnect(self, code: int) -> None:
        if self.agent_id is None:
            return
        await queue.hub_for(self.channel_layer).leave(self)
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await database_sync_to_async(agent_presence_disconnect)(agent_id=self.agent_id)

    async def _allowed_now(self) -> bool:
        if self.agent_id is None:
            return False
        return await database_sync_to_async(support_agent_get)(self.agent_id) is not None

    async def _heartbeat(self) -> None:
        if self.agent_id is not None:
            await database_sync_to_async(agent_presence_heartbeat)(agent_id=self.agent_id)

    async def _on_frame(self, kind: object, content: dict[str, Any]) -> None:
        if kind == "watch":
            await self._watch(content)

    async def _watch(self, content: dict[str, Any]) -> None:
        conversation_id = parse_int(content.get("conversation"))
        if conversation_id is None or self.agent_id is None:
            return
        conversation = await database_sync_to_async(conversation_get_for_agent_id)(
            conversation_id, self.agent_id
        )
        if conversation is None:
            # no such conversation, or no longer an agent: then the socket closes
            if await self._still_allowed(at_once=True):
                await self.send_json({"type": "error", "code": "conversation_not_found"})
            return
        group = broadcast.invoice_group(conversation.invoice_id)
        if group != self.group:
            if self.group:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.channel_layer.group_add(group, self.channel_name)
            self.group = group
        await self._replay(conversation.id, parse_int(content.get("after")) or 0)

    async def queue_send(self, text: str) -> None:
        """The queue's changes, from this process's hub (``chat.queue``)."""
        if await self._still_allowed():
            await self.send(text_data=text)

    async def _forward(self, payload: dict[str, Any], audience: str) -> None:
        # Summaries reach the console through the queue's hub (the invoice group's copy is for
        # the customer's sockets); a change of the invoice or its payments is for the
        # customer's page.
        if payload.get("type") in {"conversation", "invoice_changed", "payments_changed"}:
            return
        await self.send_json(payload)


def _post_on_live_link(link_hash: str, **post: Any) -> Message | None:
    """The customer's post over the socket, if its link still opens the invoice (read as
    an HTTP post reads it, at every post); None when it no longer does."""
    if not invoice_link_is_live(link_hash):
        return None
    return chat_message_post_customer(**post)


def _link_open(token: str, address: str) -> InvoiceLink | int:
    """The live link ``token`` opens for a socket from ``address``, or the code to refuse the
    socket with, as ``invoices.views.with_invoice`` answers a page: an address that guessed
    too often is refused whatever it brings; an unknown token counts as its guess, an
    expired or revoked one (an old link from an e-mail) does not."""
    if guard.guesses_exhausted_for(address):
        return CLOSE_TOO_MANY_GUESSES
    lookup = invoice_link_lookup(token)
    if lookup.link is None:
        if not lookup.known:
            guard.record_miss_for(address)
        return CLOSE_NOT_FOUND
    return lookup.link


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
