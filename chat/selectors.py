"""Reads the chat's edges share: who may act as an agent, the scoped getters, replay, the
queue, and the payloads sockets receive."""

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import F, QuerySet

from chat.broadcast import ChatMessagePayload, ConversationPayload, QuotePayload
from chat.models import Conversation, ConversationStatus, Message

REPLAY_LIMIT = 500  # messages a socket gets in one catch-up; it asks again for more


def is_support_agent(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """Active staff in the support group (``CHAT_SUPPORT_GROUP``), or a superuser."""
    if user is None or not user.is_authenticated or not getattr(user, "is_active", False):
        return False
    if getattr(user, "is_superuser", False):
        return True
    return bool(
        getattr(user, "is_staff", False)
        and user.groups.filter(name=settings.CHAT_SUPPORT_GROUP).exists()  # type: ignore[attr-defined]
    )


def conversation_current_for_invoice(invoice_id: int) -> Conversation | None:
    """The invoice's open conversation, else its latest closed one (to rate), else None."""
    return (
        Conversation.objects.filter(invoice_id=invoice_id)
        .order_by(F("closed_at").desc(nulls_first=True), "-id")
        .first()
    )


def conversation_get_for_agent(
    conversation_id: int, user: AbstractBaseUser | AnonymousUser | None
) -> Conversation | None:
    """A conversation as an agent may open it; None for a non-agent and for an unknown id
    alike."""
    if not is_support_agent(user):
        return None
    return (
        Conversation.objects.select_related("invoice", "invoice__series", "customer", "agent")
        .filter(id=conversation_id)
        .first()
    )


def messages_after(conversation_id: int, after_seq: int) -> list[Message]:
    """The conversation's messages numbered after ``after_seq``, in order (at most
    ``REPLAY_LIMIT``)."""
    return list(
        Message.objects.filter(conversation_id=conversation_id, seq__gt=after_seq)
        .select_related("agent")
        .order_by("seq")[:REPLAY_LIMIT]
    )


def conversations_queue() -> QuerySet[Conversation]:
    """Every conversation not closed: waiting ones first, the longest waiting first."""
    return (
        Conversation.objects.exclude(status=ConversationStatus.CLOSED)
        .select_related("invoice", "invoice__series", "customer", "agent")
        .order_by(F("waiting_since").asc(nulls_last=True), "id")
    )


def agent_display_name(user: AbstractBaseUser | None) -> str:
    """What a customer sees of an agent: their first name, else their username."""
    if user is None:
        return ""
    return str(getattr(user, "first_name", "") or user.get_username())


def message_payload(message: Message) -> ChatMessagePayload:
    quote: QuotePayload | None = None
    if message.quote:
        quote = {
            "position": int(message.quote["position"]),
            "title": str(message.quote["title"]),
            "amount": str(message.quote["amount"]),
        }
    return {
        "type": "message",
        "conversation": message.conversation_id,
        "seq": message.seq,
        "author": message.author,
        "agent_name": agent_display_name(message.agent) if message.agent_id else "",
        "body": message.body,
        "quote": quote,
        "created_at": message.created_at.isoformat(),
    }


def conversation_payload(conversation: Conversation) -> ConversationPayload:
    invoice = conversation.invoice
    return {
        "type": "conversation",
        "id": conversation.id,
        "invoice": conversation.invoice_id,
        "invoice_number": invoice.display_number,
        "customer_name": str(invoice.buyer.get("name", "")),
        "status": conversation.status,
        "agent_id": conversation.agent_id,
        "agent_name": agent_display_name(conversation.agent) if conversation.agent_id else "",
        "waiting_since": conversation.waiting_since.isoformat()
        if conversation.waiting_since
        else None,
        "last_seq": conversation.last_seq,
        "unread": conversation.last_seq - conversation.agent_read_seq,
        "customer_read_seq": conversation.customer_read_seq,
    }
