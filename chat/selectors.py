"""Reads the chat's edges share: who may act as an agent, the scoped getters, replay, the
queue, and the payloads sockets receive."""

import re
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db.models import F, Q, QuerySet, Subquery
from django.utils import timezone, translation

from chat.broadcast import ChatMessagePayload, ConversationPayload, QuotePayload
from chat.models import CannedReply, Conversation, ConversationStatus, Message
from invoices.models import Invoice

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


def message_by_client_id(invoice_id: int, client_id: str) -> Message | None:
    """The customer's message the page gave ``client_id``, on this invoice."""
    return (
        Message.objects.filter(conversation__invoice_id=invoice_id, client_id=client_id)
        .select_related("agent", "conversation")
        .first()
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
    """The conversation's summary (the queue's row; with ``agent`` loaded, no query)."""
    return {
        "type": "conversation",
        "id": conversation.id,
        "invoice": conversation.invoice_id,
        "invoice_number": conversation.invoice_number,
        "customer_name": conversation.customer_name,
        "status": conversation.status,
        "agent_id": conversation.agent_id,
        "agent_name": agent_display_name(conversation.agent) if conversation.agent_id else "",
        "waiting_since": conversation.waiting_since.isoformat()
        if conversation.waiting_since
        else None,
        "last_seq": conversation.last_seq,
        "unread": conversation.last_seq - conversation.agent_read_seq,
        "customer_read_seq": conversation.customer_read_seq,
        "version": conversation.version,
    }


# --- the agent console ----------------------------------------------------------------------


def support_agents_online(*, exclude_id: int | None = None) -> list[User]:
    """The support agents with the console open now (to transfer a conversation to), by
    name. One query."""
    from chat.services import PRESENCE_SECONDS

    since = timezone.now() - timedelta(seconds=PRESENCE_SECONDS)
    agents = (
        User.objects.filter(
            is_active=True,
            chat_presence__connections__gt=0,
            chat_presence__last_seen__gte=since,
        )
        .filter(Q(is_superuser=True) | Q(is_staff=True, groups__name=settings.CHAT_SUPPORT_GROUP))
        .distinct()
        .order_by("first_name", "username")
    )
    if exclude_id is not None:
        agents = agents.exclude(id=exclude_id)
    return list(agents)


def customer_conversations_earlier(
    conversation: Conversation, *, limit: int = 10
) -> list[Conversation]:
    """The customer's other conversations, newest first (any invoice). One query."""
    return list(
        Conversation.objects.filter(customer_id=conversation.customer_id)
        .exclude(id=conversation.id)
        .select_related("invoice", "invoice__series", "agent")
        .order_by("-created_at")[:limit]
    )


def customer_invoices_for_agent(customer_id: int, *, limit: int = 12) -> list[Invoice]:
    """The customer's invoices and credit notes, newest first. One query."""
    return list(
        Invoice.objects.filter(customer_id=customer_id)
        .select_related("series")
        .order_by("-invoice_date", "-id")[:limit]
    )


def invoice_get_for_agent(
    invoice_id: int, user: AbstractBaseUser | AnonymousUser | None
) -> Invoice | None:
    """An invoice as an agent may open it (read-only): one of a customer who has talked to
    support. None for a non-agent and an unknown or other invoice alike."""
    if not is_support_agent(user):
        return None
    return (
        Invoice.objects.select_related("series")
        .filter(id=invoice_id, customer__conversations__isnull=False)
        .distinct()
        .first()
    )


CANNED_PLACEHOLDERS = re.compile(r"\{(name|amount|due_date|invoice_number)\}")


def canned_reply_fill(reply: CannedReply, conversation: Conversation) -> str:
    """The reply in the conversation's language (Swedish, else English), its placeholders
    filled from the conversation's invoice as the customer reads it: {name} the buyer's
    name, {amount} the invoice's total, {due_date} its due date, {invoice_number} its
    number. Other braces are left as they are."""
    from invoices.page import long_date, money

    invoice = conversation.invoice
    language = conversation.language
    body = reply.body_sv if language == "sv" else reply.body_en
    with translation.override(language):
        values = {
            "name": str(invoice.buyer.get("name", "")),
            "amount": money(invoice.total, language),
            "due_date": long_date(invoice.due_date),
            "invoice_number": invoice.display_number,
        }
    return CANNED_PLACEHOLDERS.sub(lambda match: values[match.group(1)], body)


def conversation_current_with_messages(
    invoice_id: int, *, limit: int
) -> tuple[Conversation | None, list[Message]]:
    """The invoice's current conversation (as ``conversation_current_for_invoice`` chooses it)
    with its newest ``limit`` messages in order, in one query: the invoice page's chat panel
    pays for itself with it."""
    current = (
        Conversation.objects.filter(invoice_id=invoice_id)
        .order_by(F("closed_at").desc(nulls_first=True), "-id")
        .values("id")[:1]
    )
    newest = list(
        Message.objects.filter(conversation_id=Subquery(current))
        .select_related("conversation", "conversation__agent", "agent")
        .order_by("-seq")[:limit]
    )
    if not newest:  # a conversation starts with its first message, so: none yet
        return None, []
    newest.reverse()
    return newest[0].conversation, newest


# --- long-lived connections -----------------------------------------------------------------


def support_agent_get(agent_id: int) -> User | None:
    """The user ``agent_id`` read afresh from the database, if they are still a support agent.

    For what outlives a request (the agent's socket): its session's user object is as old as
    the connection, so an agent deactivated or taken out of the support group since would
    still pass ``is_support_agent`` with it."""
    user = User.objects.filter(id=agent_id).first()
    return user if is_support_agent(user) else None


def conversation_get_for_agent_id(conversation_id: int, agent_id: int) -> Conversation | None:
    """``conversation_get_for_agent`` for the agent's socket, with the agent read afresh
    (``support_agent_get``); None for one who is no longer an agent and for an unknown id
    alike."""
    return conversation_get_for_agent(conversation_id, support_agent_get(agent_id))
