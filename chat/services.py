"""Every state change of the chat: messages, the queue (claim, transfer, close), read
receipts, ratings, presence and retention.

A change is committed first and announced after commit (``transaction.on_commit``), never
before: a socket is told only about what the database holds.
"""

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from billing.models import Plan, PlanChange, PlanChangeStatus, Subscription
from billing.services import ChangeTiming, PlanChangeQuote, plan_change_quote, plan_change_request
from chat import broadcast, throttle
from chat.models import (
    CONVERSATION_TRANSITIONS,
    AgentPresence,
    Author,
    Conversation,
    ConversationStatus,
    Message,
)
from chat.selectors import (
    conversation_payload,
    is_support_agent,
    message_by_client_id,
    message_payload,
)
from core.errors import DomainError
from core.money import ZERO
from core.services import one_time_code_verify
from core.webhooks import webhook_event_emit
from dunning.models import Dispute, GrantedBy, InstalmentPlan, Postponement
from dunning.services.ways_out import (
    dispute_open,
    dispute_reason_clean,
    dispute_resolve,
    instalment_plan_grant,
    postponement_grant,
)
from invoices.models import Invoice, InvoiceLine
from invoices.page import long_date, money, subscription_heading
from invoices.services.corrections import plan_change_undo_and_correct
from invoices.services.credit_notes import credit_note_issue
from invoices.services.delivery import invoice_resend
from offers.page import correction_text
from offers.services import (
    CodeSent,
    offers_section_forget,
    offers_supersede_for_change,
    plan_change_code_purpose,
    plan_change_code_send,
    plan_change_receipt_send,
)

# Anything but printable text, newlines and tabs is refused: bodies are plain text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def message_body_clean(body: str) -> str:
    """A message body as stored: plain text, trimmed, not empty, at most
    ``CHAT_MESSAGE_MAX_CHARS`` characters. Escaping is each page's job, on output."""
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise DomainError(code="message_empty", message="Write a message first.")
    if len(body) > settings.CHAT_MESSAGE_MAX_CHARS:
        raise DomainError(
            code="message_too_long",
            message=f"A message can be at most {settings.CHAT_MESSAGE_MAX_CHARS} characters.",
        )
    if _CONTROL.search(body):
        raise DomainError(code="message_invalid", message="The message has invalid characters.")
    return body


def _rate_limit(key: str, limit: int, window_seconds: int) -> None:
    """At most ``limit`` calls per ``window_seconds`` for ``key`` (a fixed window)."""
    if not throttle.counted(f"chat-rate:{key}", limit, window_seconds):
        raise DomainError(
            code="chat_rate_limited",
            message="You are sending messages very quickly. Wait a minute and try again.",
        )


def _announce(
    conversation: Conversation, *payloads: broadcast.Payload, to_customer: bool = True
) -> None:
    """After commit: the payloads to the invoice's sockets, the conversation's summary to
    the agents' queue and (``to_customer``) to the customer's socket."""
    group = broadcast.invoice_group(conversation.invoice_id)
    summary = conversation_payload(conversation)
    sends: list[broadcast.Send] = [(group, payload, "") for payload in payloads]
    if to_customer:
        sends.append((group, summary, "customer"))
    sends.append((broadcast.AGENTS_GROUP, summary, ""))

    def ring() -> None:
        broadcast.send_many(sends)

    transaction.on_commit(ring, robust=True)


def _save_changed(conversation: Conversation, *fields: str) -> None:
    """Save ``fields`` of a conversation locked in this transaction as one more change (its
    ``version``), to be announced."""
    conversation.version += 1
    conversation.save(update_fields=[*fields, "version"])


def _append(
    conversation: Conversation,
    *,
    author: str,
    body: str,
    agent: User | None = None,
    line: InvoiceLine | None = None,
    client_id: str = "",
) -> Message:
    """Precondition: ``conversation`` is locked in this transaction."""
    now = timezone.now()
    conversation.last_seq += 1
    conversation.last_message_at = now
    quote = {}
    if line is not None:
        quote = {
            "position": line.position,
            "title": line.text(conversation.language)["title"],
            "amount": str(line.amount),
        }
    message = Message.objects.create(
        conversation=conversation,
        seq=conversation.last_seq,
        author=author,
        agent=agent,
        body=body,
        line=line,
        quote=quote,
        created_at=now,
        client_id=client_id,
    )
    message.conversation = conversation
    return message


def _set_status(conversation: Conversation, status: str) -> None:
    if status == conversation.status and status != ConversationStatus.ASSIGNED:
        return
    if status not in CONVERSATION_TRANSITIONS[conversation.status]:
        raise DomainError(
            code="conversation_closed"
            if conversation.status == ConversationStatus.CLOSED
            else "invalid_conversation_transition",
            message=f"A {conversation.status} conversation cannot become {status}.",
        )
    conversation.status = status


# --- the customer ------------------------------------------------------------------------


def chat_message_post_customer(
    *, invoice_id: int, body: str, line_id: int | None = None, client_id: str = ""
) -> Message:
    """The customer writes on their invoice: into its open conversation, or a new one.

    "Ask about this line": ``line_id`` names a line of this invoice, quoted with the message.
    Rate-limited per invoice (``CHAT_CUSTOMER_MESSAGES_PER_MINUTE``). ``client_id``, the id
    the page gave the message: sent again (the page did not hear whether the first one was
    stored), the message stored the first time is returned, and nothing is stored twice.
    """
    body = message_body_clean(body)
    if client_id and not _CLIENT_ID.fullmatch(client_id):
        raise DomainError(code="client_id_invalid", message="A message id is 1–36 letters.")
    try:
        return _customer_message_store(
            invoice_id=invoice_id, body=body, line_id=line_id, client_id=client_id
        )
    except IntegrityError:
        # the database keeps a client id once per conversation: this one was stored already
        existing = message_by_client_id(invoice_id, client_id) if client_id else None
        if existing is None:
            raise
        return existing


_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")


@transaction.atomic
def _customer_message_store(
    *, invoice_id: int, body: str, line_id: int | None, client_id: str
) -> Message:
    line = None
    if line_id is not None:
        line = InvoiceLine.objects.filter(id=line_id, invoice_id=invoice_id).first()
        if line is None or line.kind == "rounding":
            raise DomainError(code="line_not_found", message="That line is not on this invoice.")
    _rate_limit(f"invoice:{invoice_id}", settings.CHAT_CUSTOMER_MESSAGES_PER_MINUTE, 60)
    now = timezone.now()
    conversation = _open_conversation_locked(invoice_id)
    created = conversation is None
    if conversation is None:
        # The invoice row serialises the creation of its one open conversation: whoever
        # waited for the lock finds the conversation the other post opened.
        invoice = (
            Invoice.objects.select_for_update(of=("self",))
            .select_related("series")
            .get(id=invoice_id)
        )
        conversation = _open_conversation_locked(invoice_id)
        created = conversation is None
        if conversation is None:
            conversation = Conversation.objects.create(
                invoice=invoice,
                customer_id=invoice.customer_id,
                language=invoice.language,
                invoice_number=invoice.display_number,
                customer_name=str(invoice.buyer.get("name", ""))[:200],
                created_at=now,
            )
            webhook_event_emit(
                type="conversation.opened",
                data={
                    "conversation": conversation.id,
                    "invoice": invoice.id,
                    "invoice_number": invoice.display_number,
                    "customer": invoice.customer_id,
                    "language": conversation.language,
                },
            )
    message = _append(
        conversation, author=Author.CUSTOMER, body=body, line=line, client_id=client_id
    )
    conversation.waiting_since = conversation.waiting_since or message.created_at
    conversation.customer_read_seq = message.seq
    conversation.customer_seen_at = now
    _save_changed(
        conversation,
        "last_seq",
        "last_message_at",
        "waiting_since",
        "customer_read_seq",
        "customer_seen_at",
    )
    # The customer's socket learns of its own message from the message; the summary only
    # when the conversation is new to it.
    _announce(conversation, message_payload(message), to_customer=created)
    return message


def _open_conversation_locked(invoice_id: int) -> Conversation | None:
    """The invoice's open conversation, locked, with what its summary shows (the agent's
    name). Only the rows named in ``of`` are locked: PostgreSQL refuses FOR UPDATE on the
    nullable side of an outer join (the agent)."""
    found = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("agent")
        .only(*_CONVERSATION_FIELDS, "agent__first_name", "agent__username")
        .filter(invoice_id=invoice_id)
        .exclude(status=ConversationStatus.CLOSED)
        .order_by()[:1]  # at most one is open (a constraint): no ORDER BY to build
    )
    return next(iter(found), None)


# A customer's post reads the conversation and the agent's name its summary shows: the most
# frequent write of the chat, and Django takes about as long to build a query as to run it,
# the longer the more columns it names.
_CONVERSATION_FIELDS = [field.name for field in Conversation._meta.concrete_fields]


@transaction.atomic
def conversation_rate(
    *, conversation_id: int, invoice_id: int, rating: int, comment: str = ""
) -> Conversation:
    """The customer rates a closed conversation of their invoice (CSAT 1–5), once."""
    conversation = (
        Conversation.objects.select_for_update()
        .filter(id=conversation_id, invoice_id=invoice_id)
        .first()
    )
    if conversation is None:
        raise DomainError(code="conversation_not_found", message="No such conversation.")
    if conversation.status != ConversationStatus.CLOSED:
        raise DomainError(
            code="conversation_open", message="A conversation is rated once it is closed."
        )
    if conversation.rated_at is not None:
        return conversation
    if not 1 <= rating <= 5:
        raise DomainError(code="rating_invalid", message="Choose 1 to 5.")
    comment = comment.strip()
    if len(comment) > settings.CHAT_MESSAGE_MAX_CHARS or _CONTROL.search(comment):
        raise DomainError(code="message_invalid", message="The comment is too long or invalid.")
    conversation.rating = rating
    conversation.rating_comment = comment
    conversation.rated_at = timezone.now()
    _save_changed(conversation, "rating", "rating_comment", "rated_at")
    _announce(conversation)
    return conversation


def conversation_customer_seen(*, invoice_id: int) -> None:
    """The customer's page has the chat open now (a socket connected, or its heartbeat)."""
    Conversation.objects.filter(invoice_id=invoice_id).exclude(
        status=ConversationStatus.CLOSED
    ).update(customer_seen_at=timezone.now())


# --- agents ---------------------------------------------------------------------------------


def _locked_for_agent(conversation_id: int, agent: User) -> Conversation:
    """The conversation locked, with what its summary shows (``_announce``) loaded."""
    if not is_support_agent(agent):
        raise DomainError(code="not_an_agent", message="Only support agents can do this.")
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("invoice", "invoice__series", "agent")
        .filter(id=conversation_id)
        .first()
    )
    if conversation is None:
        raise DomainError(code="conversation_not_found", message="No such conversation.")
    return conversation


def _require_holder(conversation: Conversation, agent: User) -> None:
    if conversation.status == ConversationStatus.CLOSED:
        raise DomainError(code="conversation_closed", message="The conversation is closed.")
    if conversation.agent_id != agent.pk:
        raise DomainError(
            code="not_your_conversation",
            message="Claim the conversation before you answer or act in it.",
        )


@transaction.atomic
def conversation_claim(*, conversation_id: int, agent: User) -> Conversation:
    """Take a waiting conversation. Two agents cannot both have it: the second is refused
    (``already_claimed``); claiming one's own again changes nothing."""
    conversation = _locked_for_agent(conversation_id, agent)
    if conversation.status == ConversationStatus.ASSIGNED:
        if conversation.agent_id == agent.pk:
            return conversation
        raise DomainError(code="already_claimed", message="Another agent has already claimed it.")
    _set_status(conversation, ConversationStatus.ASSIGNED)
    conversation.agent = agent
    conversation.assigned_at = timezone.now()
    _save_changed(conversation, "status", "agent", "assigned_at")
    _announce(conversation)
    return conversation


@transaction.atomic
def conversation_transfer(
    *, conversation_id: int, agent: User, to_agent: User | None
) -> Conversation:
    """Hand a conversation one holds to another agent, or back to the queue (None)."""
    conversation = _locked_for_agent(conversation_id, agent)
    _require_holder(conversation, agent)
    if to_agent is not None and not is_support_agent(to_agent):
        raise DomainError(code="not_an_agent", message="Transfer to a support agent.")
    if to_agent is None:
        _set_status(conversation, ConversationStatus.WAITING)
        conversation.agent = None
        conversation.assigned_at = None
        conversation.waiting_since = conversation.waiting_since or timezone.now()
    else:
        _set_status(conversation, ConversationStatus.ASSIGNED)
        conversation.agent = to_agent
        conversation.assigned_at = timezone.now()
    _save_changed(conversation, "status", "agent", "assigned_at", "waiting_since")
    _announce(conversation)
    return conversation


@transaction.atomic
def conversation_close(*, conversation_id: int, agent: User) -> Conversation:
    """End a conversation one holds (or a waiting one); the customer may then rate it.
    Closing a closed one changes nothing."""
    conversation = _locked_for_agent(conversation_id, agent)
    if conversation.status == ConversationStatus.CLOSED:
        return conversation
    if conversation.status == ConversationStatus.ASSIGNED:
        _require_holder(conversation, agent)
    with translation.override(conversation.language):
        text = gettext("The conversation is closed. You can rate it below.")
    message = _append(conversation, author=Author.SYSTEM, body=text, agent=agent)
    _set_status(conversation, ConversationStatus.CLOSED)
    conversation.closed_at = timezone.now()
    conversation.waiting_since = None
    _save_changed(
        conversation, "status", "closed_at", "waiting_since", "last_seq", "last_message_at"
    )
    _announce(conversation, message_payload(message))
    return conversation


@transaction.atomic
def chat_message_post_agent(*, conversation_id: int, agent: User, body: str) -> Message:
    """An agent answers a conversation they hold. When the customer's page is not open, the
    answer also goes to them by e-mail or SMS with a link back (at most every
    ``CHAT_NOTIFY_EVERY_MINUTES``)."""
    body = message_body_clean(body)
    conversation = _locked_for_agent(conversation_id, agent)
    _require_holder(conversation, agent)
    message = _append(conversation, author=Author.AGENT, body=body, agent=agent)
    conversation.waiting_since = None
    conversation.agent_read_seq = message.seq
    _save_changed(conversation, "last_seq", "last_message_at", "waiting_since", "agent_read_seq")
    _announce(conversation, message_payload(message))
    if not customer_online(conversation) and cache.add(
        f"chat-notified:{conversation.id}", 1, timeout=settings.CHAT_NOTIFY_EVERY_MINUTES * 60
    ):
        from chat.tasks import chat_answer_notify_task

        transaction.on_commit(
            partial(chat_answer_notify_task.delay, conversation_id=conversation.id), robust=True
        )
    return message


@transaction.atomic
def chat_system_message_post(
    *, conversation_id: int, agent: User, msgid: str, params: dict[str, str]
) -> Message:
    """What an action did, said in the conversation in the customer's language.

    ``msgid`` is a translatable %-format text; ``params`` fill it."""
    conversation = _locked_for_agent(conversation_id, agent)
    _require_holder(conversation, agent)
    with translation.override(conversation.language):
        body = gettext(msgid) % params
    message = _append(conversation, author=Author.SYSTEM, body=body, agent=agent)
    conversation.agent_read_seq = message.seq
    _save_changed(conversation, "last_seq", "last_message_at", "agent_read_seq")
    _announce(conversation, message_payload(message))
    return message


def invoice_changed_announce(*, invoice_id: int, what: str = "credit_note") -> None:
    """After commit: the invoice's page is to reload what changed (``what``: a credit note,
    a postponement, an instalment plan)."""
    transaction.on_commit(
        lambda: broadcast.send(
            broadcast.invoice_group(invoice_id),
            {"type": "invoice_changed", "invoice": invoice_id, "what": what},
        ),
        robust=True,
    )


def chat_answer_notify(*, conversation_id: int) -> None:
    """E-mail or SMS the customer that support has answered, with a new link to the invoice
    (its chat panel). Sent on the channels the customer gets invoices on; nothing for paper
    customers without an address."""
    from invoices.services.delivery import RenderedMessage, invoice_deliver

    conversation = Conversation.objects.select_related("invoice__customer", "invoice__series").get(
        id=conversation_id
    )
    latest = (
        Message.objects.filter(conversation=conversation, author=Author.AGENT)
        .order_by("-seq")
        .first()
    )
    if latest is None:
        return
    invoice = conversation.invoice
    excerpt = latest.body if len(latest.body) <= 140 else latest.body[:139] + "…"

    def render(channel: str, context: dict[str, object]) -> RenderedMessage:
        params = {
            "seller": invoice.seller.get("name", ""),
            "number": invoice.display_number,
            "answer": excerpt,
            "url": f"{context['url']}#chat",
        }
        subject = gettext("Customer support has answered you (invoice %(number)s)") % params
        text = (
            gettext(
                "%(seller)s customer support has answered your question about invoice "
                "%(number)s: “%(answer)s” Read and reply: %(url)s"
            )
            % params
        )
        return RenderedMessage(subject=subject if channel == "email" else "", text=text, html="")

    invoice_deliver(invoice=invoice, reason="chat_answer", render=render)


# --- read receipts and typing ---------------------------------------------------------------


def conversation_mark_read(
    *, conversation_id: int, side: str, seq: int, agent: User | None = None
) -> int:
    """``side`` (customer or agent) has read up to ``seq``; never goes back. Returns the
    read number now stored.

    With ``agent`` (an agent's socket), the agents' receipt moves only for the agent holding
    the conversation: one who merely looks at it reads for no one. A receipt that moves
    nothing costs one read and no transaction (sockets send one per message they show)."""
    field = {"customer": "customer_read_seq", "agent": "agent_read_seq"}[side]
    stored = (
        Conversation.objects.filter(id=conversation_id)
        .values(field, "last_seq", "agent_id")
        .first()
    )
    if stored is None:
        raise DomainError(code="conversation_not_found", message="No such conversation.")
    if side == "agent" and agent is not None and stored["agent_id"] != agent.pk:
        return int(stored[field])
    if min(seq, stored["last_seq"]) <= stored[field]:
        return int(stored[field])
    return _conversation_mark_read_locked(
        conversation_id=conversation_id, side=side, field=field, seq=seq, agent=agent
    )


@transaction.atomic
def _conversation_mark_read_locked(
    *, conversation_id: int, side: str, field: str, seq: int, agent: User | None
) -> int:
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("agent")  # the summary's agent name
        .get(id=conversation_id)
    )
    if side == "agent" and agent is not None and conversation.agent_id != agent.pk:
        return int(conversation.agent_read_seq)  # transferred meanwhile
    seq = min(seq, conversation.last_seq)
    if seq <= getattr(conversation, field):
        return int(getattr(conversation, field))
    setattr(conversation, field, seq)
    _save_changed(conversation, field)
    _announce(
        conversation, {"type": "read", "conversation": conversation.id, "side": side, "seq": seq}
    )
    return seq


# --- presence -------------------------------------------------------------------------------

PRESENCE_SECONDS = 90  # an agent whose console has not been heard from for this long is away


def agent_presence_connect(*, agent_id: int) -> None:
    now = timezone.now()
    presence, created = AgentPresence.objects.get_or_create(
        agent_id=agent_id, defaults={"last_seen": now, "connections": 1}
    )
    if not created:
        AgentPresence.objects.filter(id=presence.id).update(
            last_seen=now, connections=F("connections") + 1
        )


def agent_presence_heartbeat(*, agent_id: int) -> None:
    AgentPresence.objects.filter(agent_id=agent_id).update(last_seen=timezone.now())


def agent_presence_disconnect(*, agent_id: int) -> None:
    AgentPresence.objects.filter(agent_id=agent_id, connections__gt=0).update(
        connections=F("connections") - 1
    )


def agents_online() -> bool:
    """Whether an agent has the console open (across every server process)."""
    since = timezone.now() - timedelta(seconds=PRESENCE_SECONDS)
    return AgentPresence.objects.filter(connections__gt=0, last_seen__gte=since).exists()


def customer_online(conversation: Conversation) -> bool:
    since = timezone.now() - timedelta(seconds=PRESENCE_SECONDS)
    return conversation.customer_seen_at is not None and conversation.customer_seen_at >= since


# --- retention ------------------------------------------------------------------------------


def conversations_delete_expired() -> int:
    """Delete conversations (with their messages, quotes and ratings) closed, or silent, for
    longer than ``CHAT_RETENTION_DAYS``; returns how many."""
    cutoff = timezone.now() - timedelta(days=settings.CHAT_RETENTION_DAYS)
    expired = Conversation.objects.filter(
        Q(status=ConversationStatus.CLOSED, closed_at__lt=cutoff)
        | Q(last_message_at__lt=cutoff)
        | Q(last_message_at__isnull=True, created_at__lt=cutoff)
    )
    count = expired.count()
    expired.delete()
    return count


# --- actions from the agent console ---------------------------------------------------------
# Each composes one action of another app with its system message, in one transaction: the
# customer reads what was done, in their language, exactly when it was done. Only the agent
# holding the conversation may act. Locks are taken in the order a customer's post takes them
# (the invoice, then the conversation), so an action and a customer's message never deadlock.


def _locked_for_action(conversation_id: int, agent: User) -> Conversation:
    """The conversation, locked after its invoice, once ``agent`` is found to hold it.
    Precondition: inside a transaction."""
    if not is_support_agent(agent):
        raise DomainError(code="not_an_agent", message="Only support agents can do this.")
    invoice_id = (
        Conversation.objects.filter(id=conversation_id).values_list("invoice_id", flat=True).first()
    )
    if invoice_id is None:
        raise DomainError(code="conversation_not_found", message="No such conversation.")
    list(Invoice.objects.select_for_update().filter(id=invoice_id).values_list("id", flat=True))
    conversation = _locked_for_agent(conversation_id, agent)
    _require_holder(conversation, agent)
    return conversation


# What the customer reads after each action (translated into the conversation's language by
# ``chat_system_message_post``; chat/locale holds the Swedish).
RESEND_TEXTS: dict[tuple[str, ...], str] = {
    ("email",): gettext_noop("We have sent you a new link to invoice %(number)s by e-mail."),
    ("sms",): gettext_noop("We have sent you a new link to invoice %(number)s by SMS."),
    ("email", "sms"): gettext_noop(
        "We have sent you a new link to invoice %(number)s by e-mail and SMS."
    ),
}
CREDIT_NOTE_TEXT = gettext_noop(
    "We have credited %(amount)s for “%(line)s” on invoice %(number)s (credit note "
    "%(note)s). Reason: %(reason)s"
)
# by (whether the change adds a binding period, whether a receipt was sent)
PLAN_CHANGE_TEXTS: dict[tuple[bool, bool], str] = {
    (False, True): gettext_noop(
        "Your plan for %(subscription)s changes from %(from_plan)s to %(to_plan)s on "
        "%(date)s, at %(price)s a month. We have sent you a receipt with a link to undo the "
        "change until %(until)s."
    ),
    (True, True): gettext_noop(
        "Your plan for %(subscription)s changes from %(from_plan)s to %(to_plan)s on "
        "%(date)s, at %(price)s a month with a binding period until %(binding_end)s. We have "
        "sent you a receipt with a link to undo the change until %(until)s."
    ),
    (False, False): gettext_noop(
        "Your plan for %(subscription)s changes from %(from_plan)s to %(to_plan)s on "
        "%(date)s, at %(price)s a month. You can undo the change until %(until)s: just ask "
        "us here."
    ),
    (True, False): gettext_noop(
        "Your plan for %(subscription)s changes from %(from_plan)s to %(to_plan)s on "
        "%(date)s, at %(price)s a month with a binding period until %(binding_end)s. You can "
        "undo the change until %(until)s: just ask us here."
    ),
}
# by where ``plan_change_code_send`` sent the code
CODE_SENT_TEXTS: dict[str, str] = {
    "sms": gettext_noop(
        "To confirm the change of %(subscription)s to %(to_plan)s, we have sent a code by SMS "
        "to your phone number ending in %(digits)s. Tell us the code here. It is valid for 10 "
        "minutes."
    ),
    "email": gettext_noop(
        "To confirm the change of %(subscription)s to %(to_plan)s, we have sent a code to "
        "your e-mail address %(address)s. Tell us the code here. It is valid for 10 minutes."
    ),
}
# by whether a month already invoiced was corrected (``corrections``: what happened to each,
# in the words of the undo page, ``offers.page.correction_text``)
PLAN_CHANGE_UNDONE_TEXTS: dict[bool, str] = {
    False: gettext_noop(
        "We have undone the change of %(subscription)s to %(to_plan)s. You keep %(from_plan)s "
        "for %(price)s a month, as before."
    ),
    True: gettext_noop(
        "We have undone the change of %(subscription)s to %(to_plan)s. You keep %(from_plan)s "
        "for %(price)s a month, as before. %(corrections)s"
    ),
}


@transaction.atomic
def chat_action_resend_link(*, conversation_id: int, agent: User) -> Message:
    """Send the customer a new link to the conversation's invoice (``invoice_resend``, on the
    channels they get invoices on), and say so in the chat."""
    conversation = _locked_for_action(conversation_id, agent)
    sent = invoice_resend(invoice_id=conversation.invoice_id)
    channels = tuple(sorted({str(message.channel) for message in sent}))
    invoice = Invoice.objects.select_related("series").get(id=conversation.invoice_id)
    return chat_system_message_post(
        conversation_id=conversation.id,
        agent=agent,
        msgid=RESEND_TEXTS[channels],
        params={"number": invoice.display_number},
    )


@transaction.atomic
def chat_action_credit_note(
    *, conversation_id: int, agent: User, line_id: int, reason: str
) -> Message:
    """Credit one line of the conversation's invoice (``credit_note_issue``), say so in the
    chat with the amount and the reason, and have the customer's page show the credit note
    without a reload. ``reason`` is printed on the credit note the customer reads."""
    conversation = _locked_for_action(conversation_id, agent)
    note = credit_note_issue(invoice_id=conversation.invoice_id, reason=reason, line_ids=[line_id])
    line = InvoiceLine.objects.select_related("invoice__series").get(id=line_id)
    language = conversation.language
    with translation.override(language):
        params = {
            "amount": money(-note.total, language),
            "line": line.text(language).get("title", ""),
            "number": line.invoice.display_number,
            "note": note.display_number,
            "reason": note.credit_reason,
        }
    message = chat_system_message_post(
        conversation_id=conversation.id, agent=agent, msgid=CREDIT_NOTE_TEXT, params=params
    )
    invoice_changed_announce(invoice_id=conversation.invoice_id)
    return message


def _subscription_on_invoice(conversation: Conversation, subscription_id: int) -> Subscription:
    """A subscription billed on the conversation's invoice: an agent changes only what the
    conversation is about."""
    on_invoice = {s["id"] for s in conversation.invoice.subscriptions or []}
    subscription = (
        Subscription.objects.select_related("plan")
        .filter(id=subscription_id, customer_id=conversation.customer_id)
        .first()
    )
    if subscription is None or subscription_id not in on_invoice:
        raise DomainError(
            code="subscription_not_on_invoice",
            message="That subscription is not on this conversation's invoice.",
        )
    return subscription


def _plan(plan_id: int) -> Plan:
    plan = Plan.objects.filter(id=plan_id).first()
    if plan is None:
        raise DomainError(code="plan_not_found", message="No such plan.")
    return plan


def _subscription_name(conversation: Conversation, subscription: Subscription) -> str:
    """The subscription as the conversation's invoice names it ("Anna"), else its number."""
    snapshots: list[dict[str, Any]] = conversation.invoice.subscriptions or []
    snapshot = next((s for s in snapshots if s["id"] == subscription.id), {})
    return subscription_heading(snapshot)[0] or subscription.identifier


def chat_plan_change_quote(
    *,
    conversation_id: int,
    agent: User,
    subscription_id: int,
    to_plan_id: int,
    timing: ChangeTiming = ChangeTiming.NEXT_PERIOD,
    binding_months: int = 0,
) -> PlanChangeQuote:
    """What a change of plan asked for in the chat would do, for the agent to show before the
    click (``plan_change_quote``; a change the rules refuse raises their DomainError). Changes
    nothing."""
    if not is_support_agent(agent):
        raise DomainError(code="not_an_agent", message="Only support agents can do this.")
    conversation = Conversation.objects.select_related("invoice").filter(id=conversation_id).first()
    if conversation is None:
        raise DomainError(code="conversation_not_found", message="No such conversation.")
    _require_holder(conversation, agent)
    return plan_change_quote(
        subscription=_subscription_on_invoice(conversation, subscription_id),
        to_plan=_plan(to_plan_id),
        timing=timing,
        binding_months=binding_months,
    )


@dataclass(frozen=True)
class ChatPlanChange:
    change: PlanChange
    created: bool  # False: this form was sent before (a double click); nothing new was done
    message: Message | None  # the system message, when the change was made now


def chat_action_plan_change(
    *,
    conversation_id: int,
    agent: User,
    subscription_id: int,
    to_plan_id: int,
    idempotency_key: str,
    timing: ChangeTiming = ChangeTiming.NEXT_PERIOD,
    binding_months: int = 0,
    code: str = "",
) -> ChatPlanChange:
    """Change a plan on the customer's behalf, as they asked in the chat, at its list price
    (``plan_change_request`` with ``requested_via="chat"`` and the agent's username), send
    them the receipt with its undo link, and say so in the chat.

    A change that raises the monthly price or adds a binding period needs ``code``: the
    one-time code ``chat_action_plan_change_code_send`` sent to the customer's registered
    phone or e-mail for exactly this change, which the customer tells the agent. The chat is
    reached with the invoice link alone, so whoever holds a forwarded link must not be able
    to sign the customer up for more by asking an agent (``confirmation_code_required``
    without a code; ``code_invalid``, counted as an attempt, or ``code_expired`` otherwise).
    A change that needs no code is made on the review's confirmation alone.
    ``idempotency_key`` comes from the form, so a double click makes one change and one
    message (and checks the code, already used, once).
    """
    made = _chat_plan_change(
        conversation_id=conversation_id,
        agent=agent,
        subscription_id=subscription_id,
        to_plan_id=to_plan_id,
        idempotency_key=idempotency_key,
        timing=timing,
        binding_months=binding_months,
        code=code,
    )
    if isinstance(made, DomainError):
        raise made  # a wrong code, raised once the attempt it counts is committed
    return made


@transaction.atomic
def _chat_plan_change(
    *,
    conversation_id: int,
    agent: User,
    subscription_id: int,
    to_plan_id: int,
    idempotency_key: str,
    timing: ChangeTiming,
    binding_months: int,
    code: str,
) -> ChatPlanChange | DomainError:
    """``chat_action_plan_change``; a wrong code is returned, not raised, so that the
    attempt ``one_time_code_verify`` counted is committed with this transaction."""
    key = idempotency_key.strip()
    if not key or len(key) > 64:
        raise DomainError(code="idempotency_key_invalid", message="Reload the page and try again.")
    conversation = _locked_for_action(conversation_id, agent)
    scoped_key = f"chat:{conversation.id}:{key}"  # a form's key names a change of this chat only
    earlier = PlanChange.objects.filter(idempotency_key=scoped_key).first()
    if earlier is not None:
        return ChatPlanChange(change=earlier, created=False, message=None)
    subscription = _subscription_on_invoice(conversation, subscription_id)
    quote = plan_change_quote(
        subscription=subscription,
        to_plan=_plan(to_plan_id),
        timing=timing,
        binding_months=binding_months,
    )
    if quote.needs_confirmation_code:
        if not code.strip():
            raise DomainError(
                code="confirmation_code_required",
                message="This change raises the monthly price or adds a binding period: send "
                "the customer a code and enter the code they tell you.",
            )
        try:
            one_time_code_verify(
                purpose=plan_change_code_purpose(
                    subscription_id=subscription.id,
                    to_plan_id=quote.to_plan.id,
                    price=quote.to_price,
                    binding_months=binding_months,
                ),
                code=code,
            )
        except DomainError as wrong:
            return wrong
    result = plan_change_request(
        subscription_id=subscription.id,
        to_plan_id=to_plan_id,
        requested_via="chat",
        requested_by=agent.get_username(),
        idempotency_key=scoped_key,
        timing=timing,
        binding_months=binding_months,
        confirmed_by_code=quote.needs_confirmation_code,
    )
    if not result.created or result.undo_token is None:
        # the same change was already pending (another tab): it stands, and was said then
        return ChatPlanChange(change=result.change, created=False, message=None)
    change = result.change
    offers_supersede_for_change(subscription_id=subscription.id)
    language = conversation.language
    receipt = plan_change_receipt_send(
        change=change,
        undo_token=result.undo_token,
        language=language,
        invoice_id=conversation.invoice_id,
    )
    with translation.override(language):
        params = {
            "subscription": _subscription_name(conversation, subscription),
            "from_plan": quote.subscription.plan.name,
            "to_plan": quote.to_plan.name,
            "date": long_date(change.effective_date),
            "price": money(change.to_price, language),
            "binding_end": long_date(change.to_binding_end) if change.to_binding_end else "",
            "until": long_date(change.cooling_off_until),
        }
    message = chat_system_message_post(
        conversation_id=conversation.id,
        agent=agent,
        msgid=PLAN_CHANGE_TEXTS[(quote.adds_binding, bool(receipt))],
        params=params,
    )
    customer_id = conversation.customer_id
    transaction.on_commit(lambda: offers_section_forget(customer_id), robust=True)
    return ChatPlanChange(change=change, created=True, message=message)


def _masked_destination(sent: CodeSent) -> dict[str, str]:
    """Where a code went, without giving the whole number or address away in the chat."""
    if sent.channel == "sms":
        return {"digits": sent.destination.replace(" ", "")[-2:]}
    name, _at, domain = sent.destination.partition("@")
    return {"address": f"{name[:1]}…@{domain}"}


@transaction.atomic
def chat_action_plan_change_code_send(
    *,
    conversation_id: int,
    agent: User,
    subscription_id: int,
    to_plan_id: int,
    timing: ChangeTiming = ChangeTiming.NEXT_PERIOD,
    binding_months: int = 0,
) -> Message:
    """Send the customer the one-time code that confirms a change asked for in the chat
    which raises the monthly price or adds a binding period, and ask them in the chat to
    tell the agent the code (``chat_action_plan_change`` then takes it).

    The code is the invoice page's for the same change (``plan_change_code_send``: to the
    registered phone, else e-mail; single use, valid 10 minutes, rate-limited per change and
    per destination), so the chat and the page confirm a change the same way. Raises
    ``code_not_needed`` for a change that needs no code, ``no_code_channel`` and
    ``code_rate_limited`` as ``plan_change_code_send`` does.
    """
    conversation = _locked_for_action(conversation_id, agent)
    subscription = _subscription_on_invoice(conversation, subscription_id)
    quote = plan_change_quote(
        subscription=subscription,
        to_plan=_plan(to_plan_id),
        timing=timing,
        binding_months=binding_months,
    )
    if not quote.needs_confirmation_code:
        raise DomainError(
            code="code_not_needed",
            message="This change neither raises the price nor adds a binding period: no code "
            "is needed.",
        )
    sent = plan_change_code_send(
        subscription_id=subscription.id,
        to_plan_id=quote.to_plan.id,
        price=quote.to_price,
        language=conversation.language,
        binding_months=binding_months,
    )
    with translation.override(conversation.language):
        params = {
            "subscription": _subscription_name(conversation, subscription),
            "to_plan": quote.to_plan.name,
            **_masked_destination(sent),
        }
    return chat_system_message_post(
        conversation_id=conversation.id,
        agent=agent,
        msgid=CODE_SENT_TEXTS[sent.channel],
        params=params,
    )


@dataclass(frozen=True)
class ChatPlanChangeUndo:
    change: PlanChange
    undone: bool  # False: it was undone before (a double click); nothing new was done
    message: Message | None  # the system message, when it was undone now


@transaction.atomic
def chat_action_plan_change_undo(
    *, conversation_id: int, agent: User, change_id: int
) -> ChatPlanChangeUndo:
    """Undo a plan change of a subscription on the conversation's invoice, as the customer
    asked in the chat (``plan_change_undo_and_correct`` with ``via="chat"``: within the
    cooling-off period, or before it takes effect; a month already invoiced with it is
    corrected), and say in the chat what was undone and what happened to each invoiced
    month. A credit note it issued shows on the customer's page without a reload.

    Undoing an undone change (a double click) does nothing more.
    """
    conversation = _locked_for_action(conversation_id, agent)
    found = PlanChange.objects.filter(id=change_id).values_list("subscription_id", "status").first()
    if found is None:
        raise DomainError(code="plan_change_not_found", message="No such plan change.")
    subscription = _subscription_on_invoice(conversation, found[0])
    # Read after the invoice's lock: a second click waits for the first and finds it undone.
    if found[1] == PlanChangeStatus.UNDONE:
        return ChatPlanChangeUndo(
            change=PlanChange.objects.get(id=change_id), undone=False, message=None
        )
    undone = plan_change_undo_and_correct(change_id=change_id, via="chat")
    change = undone.change
    language = conversation.language
    with translation.override(language):
        params = {
            "subscription": _subscription_name(conversation, subscription),
            "to_plan": change.to_plan.name,
            "from_plan": change.from_plan.name,
            "price": money(change.from_price, language),
            "corrections": " ".join(correction_text(c, language) for c in undone.corrections),
        }
    message = chat_system_message_post(
        conversation_id=conversation.id,
        agent=agent,
        msgid=PLAN_CHANGE_UNDONE_TEXTS[bool(undone.corrections)],
        params=params,
    )
    for invoice_id in sorted({c.invoice.id for c in undone.corrections if c.credit_note}):
        invoice_changed_announce(invoice_id=invoice_id)
    customer_id = conversation.customer_id
    transaction.on_commit(lambda: offers_section_forget(customer_id), robust=True)
    return ChatPlanChangeUndo(change=change, undone=True, message=message)


# --- the customer's ways out in the chat (dunning's services, said in the conversation) -----

DISPUTE_OPENED_TEXT = gettext_noop(
    "You dispute “%(line)s” (%(amount)s) on invoice %(number)s. No reminder asks for this "
    "amount while customer support looks into it; they answer you here."
)
# by whether the receipt with the terms was sent
POSTPONEMENT_TEXTS: dict[bool, str] = {
    True: gettext_noop(
        "We have postponed the payment of invoice %(number)s to %(date)s. No reminder is "
        "sent before then. We have sent you the terms."
    ),
    False: gettext_noop(
        "We have postponed the payment of invoice %(number)s to %(date)s. No reminder is "
        "sent before then."
    ),
}
INSTALMENT_PLAN_TEXTS: dict[bool, str] = {
    True: gettext_noop(
        "We have split invoice %(number)s into %(parts)s parts: %(schedule)s. %(total)s No "
        "reminder is sent while you pay the parts on time. We have sent you the plan."
    ),
    False: gettext_noop(
        "We have split invoice %(number)s into %(parts)s parts: %(schedule)s. %(total)s No "
        "reminder is sent while you pay the parts on time."
    ),
}
INSTALMENT_PART_TEXT = gettext_noop("%(amount)s by %(date)s")
# by whether the plan has a fee
INSTALMENT_TOTAL_TEXTS: dict[bool, str] = {
    False: gettext_noop("In all %(total)s; the plan is free."),
    True: gettext_noop("In all %(total)s, of which %(fee)s is the plan's fee."),
}
DISPUTE_UPHELD_TEXT = gettext_noop(
    "You were right about “%(line)s”: we have credited %(amount)s on invoice %(number)s "
    "(credit note %(note)s). %(resolution)s"
)
DISPUTE_REJECTED_TEXT = gettext_noop(
    "We have looked into “%(line)s” (%(amount)s) on invoice %(number)s, and it is correct: "
    "%(resolution)s The amount is to be paid with the rest of the invoice."
)


@dataclass(frozen=True)
class ChatDispute:
    dispute: Dispute
    created: bool  # False: the line was disputed already (a repeated click): nothing new
    conversation_id: int | None


@transaction.atomic
def chat_dispute_open_customer(
    *, invoice_id: int, line_id: int, reason: str, idempotency_key: str = ""
) -> ChatDispute:
    """The customer disputes a line of their invoice ("I don't recognise this"): the dispute
    (``dunning.services.ways_out.dispute_open``: dunning pauses on the line's amount) and, in
    the same transaction, their reason as a message in the invoice's chat quoting the line
    (the open conversation, or a new one in the agents' queue), followed by a system message
    that says what the dispute does. Disputing the line again returns the open dispute and
    posts nothing."""
    body = message_body_clean(dispute_reason_clean(reason))
    granted = dispute_open(
        invoice_id=invoice_id,
        line_id=line_id,
        reason=body,
        opened_by=GrantedBy.CUSTOMER,
        idempotency_key=idempotency_key,
    )
    dispute = granted.row
    if not granted.created:
        return ChatDispute(dispute=dispute, created=False, conversation_id=dispute.conversation_id)
    message = _customer_message_store(
        invoice_id=invoice_id, body=body, line_id=line_id, client_id=""
    )
    conversation = message.conversation
    language = conversation.language
    with translation.override(language):
        text = gettext(DISPUTE_OPENED_TEXT) % {
            "line": dispute.line.text(language).get("title", ""),
            "amount": money(dispute.amount, language),
            "number": conversation.invoice_number,
        }
    system = _append(conversation, author=Author.SYSTEM, body=text)
    _save_changed(conversation, "last_seq", "last_message_at")
    _announce(conversation, message_payload(system))
    dispute.conversation_id = conversation.id
    dispute.save(update_fields=["conversation_id"])
    return ChatDispute(dispute=dispute, created=True, conversation_id=conversation.id)


@dataclass(frozen=True)
class ChatGrant[T]:
    row: T
    created: bool  # False: this form was sent before (a double click); nothing new was done
    message: Message | None  # the system message, when it was done now


def _grant_said[T](
    conversation: Conversation,
    agent: User,
    row: T,
    *,
    msgid: str,
    params: dict[str, str],
    what: str,
) -> ChatGrant[T]:
    """Say in the chat what a grant did (``msgid`` with ``params``), and have the customer's
    page show it (``what`` changed)."""
    message = chat_system_message_post(
        conversation_id=conversation.id, agent=agent, msgid=msgid, params=params
    )
    invoice_changed_announce(invoice_id=conversation.invoice_id, what=what)
    return ChatGrant(row=row, created=True, message=message)


def _scoped_key(conversation: Conversation, idempotency_key: str) -> str:
    """A console form's key names a grant of this conversation only."""
    key = idempotency_key.strip()
    if not key or len(key) > 64:
        raise DomainError(code="idempotency_key_invalid", message="Reload the page and try again.")
    return f"chat:{conversation.id}:{key}"


@transaction.atomic
def chat_action_postponement_grant(
    *,
    conversation_id: int,
    agent: User,
    new_due_date: date,
    idempotency_key: str,
    today: date | None = None,
) -> ChatGrant[Postponement]:
    """Postpone the conversation's invoice as agreed with the customer in the chat
    (``postponement_grant`` by the agent: once, within the policy's days), send them the
    terms, say so in the chat, and have their page show the new due date."""
    conversation = _locked_for_action(conversation_id, agent)
    granted = postponement_grant(
        invoice_id=conversation.invoice_id,
        new_due_date=new_due_date,
        granted_by=GrantedBy.AGENT,
        granted_by_user=agent,
        idempotency_key=_scoped_key(conversation, idempotency_key),
        today=today,
    )
    postponement = granted.row
    if not granted.created:
        return ChatGrant(row=postponement, created=False, message=None)
    with translation.override(conversation.language):
        params = {
            "number": conversation.invoice_number,
            "date": long_date(postponement.new_due_date),
        }
    return _grant_said(
        conversation,
        agent,
        postponement,
        msgid=POSTPONEMENT_TEXTS[postponement.receipt_sent_at is not None],
        params=params,
        what="postponement",
    )


@transaction.atomic
def chat_action_instalment_plan_grant(
    *,
    conversation_id: int,
    agent: User,
    parts: int,
    charge_fee: bool,
    expected_total: Decimal,
    idempotency_key: str,
    today: date | None = None,
) -> ChatGrant[InstalmentPlan]:
    """Split the conversation's invoice into ``parts`` parts as agreed in the chat
    (``instalment_plan_grant`` by the agent), with the policy's fee only when ``charge_fee``
    (the customer agreed to it here, in writing), send them the plan, say it in the chat with
    its parts, and have their page show it. ``expected_total``: what the review showed."""
    conversation = _locked_for_action(conversation_id, agent)
    granted = instalment_plan_grant(
        invoice_id=conversation.invoice_id,
        parts=parts,
        granted_by=GrantedBy.AGENT,
        granted_by_user=agent,
        fee=None if charge_fee else ZERO,
        expected_total=expected_total,
        idempotency_key=_scoped_key(conversation, idempotency_key),
        today=today,
    )
    plan = granted.row
    if not granted.created:
        return ChatGrant(row=plan, created=False, message=None)
    language = conversation.language
    with translation.override(language):
        schedule = "; ".join(
            gettext(INSTALMENT_PART_TEXT)
            % {"amount": money(part.amount, language), "date": long_date(part.due_date)}
            for part in plan.instalments.order_by("number")
        )
        total = gettext(INSTALMENT_TOTAL_TEXTS[plan.fee > 0]) % {
            "total": money(plan.amount, language),
            "fee": money(plan.fee, language),
        }
        params = {
            "number": conversation.invoice_number,
            "parts": str(plan.parts),
            "schedule": schedule,
            "total": total,
        }
    return _grant_said(
        conversation,
        agent,
        plan,
        msgid=INSTALMENT_PLAN_TEXTS[plan.receipt_sent_at is not None],
        params=params,
        what="instalment_plan",
    )


@transaction.atomic
def chat_action_dispute_resolve(
    *, conversation_id: int, agent: User, dispute_id: int, upheld: bool, resolution: str
) -> ChatGrant[Dispute]:
    """Settle a dispute of the conversation's invoice (``dispute_resolve``): upheld, the
    amount is credited by a credit note whose reason is ``resolution``; rejected, it is owed
    again and dunning resumes on it. Say which in the chat, and have the page show it."""
    conversation = _locked_for_action(conversation_id, agent)
    if not Dispute.objects.filter(id=dispute_id, invoice_id=conversation.invoice_id).exists():
        raise DomainError(code="dispute_not_found", message="No such dispute on this invoice.")
    granted = dispute_resolve(dispute_id=dispute_id, upheld=upheld, resolution=resolution, by=agent)
    dispute = granted.row
    if not granted.created:
        return ChatGrant(row=dispute, created=False, message=None)
    language = conversation.language
    with translation.override(language):
        params = {
            "line": dispute.line.text(language).get("title", ""),
            "amount": money(dispute.amount, language),
            "number": conversation.invoice_number,
            "note": dispute.credit_note.display_number if dispute.credit_note else "",
            "resolution": dispute.resolution,
        }
    return _grant_said(
        conversation,
        agent,
        dispute,
        msgid=DISPUTE_UPHELD_TEXT if dispute.credit_note else DISPUTE_REJECTED_TEXT,
        params=params,
        what="credit_note" if dispute.credit_note else "dispute",
    )
