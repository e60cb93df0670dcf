"""The customer's chat panel on the invoice page (``id="chat"``), rendered for each request.

The invoice document is cached per revision (``invoices.page``); the panel carries a CSRF
token and the current conversation, so ``invoices.views.invoice_page`` renders it per request
into the document's chat slot, like the offers part. It is a plain form posting to
``chat/messages/`` (relative to ``/i/<token>/``) with the conversation's messages listed, so
the chat works without JavaScript; ``static/chat.js`` brings new messages over the websocket.

Reads, whatever the length of the conversation (pinned by tests/invoices/test_page.py):

1. the current conversation with its newest ``PANEL_MESSAGES`` messages (one query);
2. whether an agent is online (``chat.services.agents_online``);
3. only with ``?ask=<line id>``: that line, if it is this invoice's.

The customer's delivery channels (for "we send the answer by SMS too") come from the invoice
link's look-up, which brings the customer along.
"""

import logging
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from chat.errors import ERROR_TEXTS
from chat.hours import STOCKHOLM, OpeningHours, support_hours_parse, support_offline_notice
from chat.models import Author, Conversation, ConversationStatus, Message
from chat.parsing import parse_int
from chat.selectors import agent_display_name, conversation_current_with_messages
from chat.services import agents_online
from invoices.models import Invoice, InvoiceLine
from invoices.page import long_date, money
from invoices.services.delivery import delivery_channels

logger = logging.getLogger(__name__)

PANEL_ID = "chat"
# The newest messages the page lists; the socket and the list endpoint bring any newer.
PANEL_MESSAGES = 100


def _link(path: str, language: str, **query: str) -> str:
    """A link relative to the invoice page, in its language (no token is ever written)."""
    params = "&".join(f"{key}={value}" for key, value in {"lang": language, **query}.items())
    return f"{path}?{params}"


def _asked_line(invoice: Invoice, ask: str | None, language: str) -> dict[str, Any] | None:
    """The line quoted above the field for "Ask about this line" without script
    (``?ask=<line id>``); a line of another invoice (or none) is ignored."""
    line_id = parse_int(ask)
    if line_id is None:
        return None
    line = (
        InvoiceLine.objects.filter(id=line_id, invoice_id=invoice.id)
        .exclude(kind="rounding")
        .first()
    )
    if line is None:
        return None
    return {
        "id": line.id,
        "title": line.text(language).get("title", ""),
        "amount": money(line.amount, language),
    }


def _support_hours() -> tuple[OpeningHours, ...]:
    """``CHAT_SUPPORT_HOURS``; a malformed value (``manage.py check``: chat.E001) promises no
    hours rather than break every invoice page."""
    try:
        return support_hours_parse(settings.CHAT_SUPPORT_HOURS)
    except ValueError:
        logger.exception("CHAT_SUPPORT_HOURS cannot be read; the chat promises no hours")
        return ()


def _who(message: Message) -> str:
    if message.author == Author.CUSTOMER:
        return pgettext("customer chat", "You")
    name = agent_display_name(message.agent) if message.agent_id else ""
    if message.author == Author.AGENT and name:
        return _("%(name)s, customer support") % {"name": name}
    return pgettext("customer chat", "Customer support")


def _message(message: Message, language: str, agent_read_seq: int) -> dict[str, Any]:
    local = timezone.localtime(message.created_at, STOCKHOLM)
    today = timezone.localdate(timezone=STOCKHOLM)
    quote = None
    if message.quote:
        quote = {
            "title": str(message.quote.get("title", "")),
            "amount": money(Decimal(str(message.quote.get("amount", "0"))), language),
        }
    return {
        "seq": message.seq,
        "author": message.author,
        "who": _who(message),
        "iso": message.created_at.isoformat(),
        "time": f"{local:%H:%M}"
        if local.date() == today
        else f"{long_date(local.date())} {local:%H:%M}",
        "body": message.body,
        "quote": quote,
        "read": message.author == Author.CUSTOMER and message.seq <= agent_read_seq,
    }


def status_texts() -> dict[str, str]:
    """What the panel says of the conversation's state (``{name}`` is the agent's first name,
    filled in by the page or its script)."""
    return {
        "waiting": _("Waiting for customer support. We answer here as soon as we can."),
        "assigned": _("%(name)s from customer support is answering you.") % {"name": "{name}"},
        "assigned_unnamed": _("Customer support is answering you."),
        "closed": _("The conversation is closed."),
    }


def _status_text(conversation: Conversation | None) -> str:
    if conversation is None:
        return ""
    texts = status_texts()
    if conversation.status == ConversationStatus.ASSIGNED:
        name = agent_display_name(conversation.agent) if conversation.agent_id else ""
        return texts["assigned"].replace("{name}", name) if name else texts["assigned_unnamed"]
    return texts.get(conversation.status, "")


def _script_texts(language: str) -> dict[str, str]:
    """The words ``static/chat.js`` shows, in the page's language."""
    return {
        **status_texts(),
        "you": pgettext("customer chat", "You"),
        "support": pgettext("customer chat", "Customer support"),
        "support_named": _("%(name)s, customer support") % {"name": "{name}"},
        "about_line": _("About the line"),
        "read": pgettext("chat receipt", "Read"),
        "typing": _("Support is writing…"),
        "reconnecting": _("Reconnecting…"),
        "empty": str(ERROR_TEXTS["message_empty"]),
        "send_failed": _("Could not send. Check your connection and try again."),
        "rating_failed": _("Could not send the rating. Check your connection and try again."),
        "invoice_updated": _("Your invoice was updated: a credit note was added."),
        # by what changed (``chat.broadcast.InvoiceChangedPayload``'s ``what``)
        "invoice_updated_postponement": _("Your invoice was updated: it has a new due date."),
        "invoice_updated_instalment_plan": _(
            "Your invoice was updated: it shows your instalment plan."
        ),
        "invoice_updated_dispute": _("Your invoice was updated: the line you disputed is owed."),
    }


def chat_panel_html(
    request: HttpRequest,
    invoice: Invoice,
    language: str,
    *,
    ask: str | None = None,
    error: str | None = None,
    rating_error: str | None = None,
) -> str:
    """The chat panel of ``invoice``'s page for this request, in the active language
    ``language``. ``ask`` is the ``?ask=`` line id; ``error``/``rating_error`` the stable code
    of a refusal a plain form post was redirected back with (unknown codes are ignored, so
    nothing from the address is ever shown as text)."""
    conversation, messages = conversation_current_with_messages(invoice.id, limit=PANEL_MESSAGES)
    online = agents_online()
    agent_read_seq = conversation.agent_read_seq if conversation else 0
    closed = conversation is not None and conversation.status == ConversationStatus.CLOSED
    rated = closed and conversation is not None and conversation.rated_at is not None
    offline_notice = support_offline_notice(
        now=timezone.now(), hours=_support_hours(), channels=delivery_channels(invoice.customer)
    )
    state = {
        "conversation": conversation.id if conversation else None,
        "status": conversation.status if conversation else None,
        "lastSeq": conversation.last_seq if conversation else 0,
        "agentReadSeq": agent_read_seq,
        "rated": rated,
        "language": language,
        "listUrl": "chat/messages/list/",
    }
    context = {
        "panel_id": PANEL_ID,
        "language": language,
        "conversation": conversation,
        "messages": [_message(m, language, agent_read_seq) for m in messages],
        "status_text": _status_text(conversation),
        "agents_online": online,
        "offline_notice": offline_notice,
        "ask": _asked_line(invoice, ask, language),
        "error": str(ERROR_TEXTS[error]) if error in ERROR_TEXTS else "",
        "rating_error": str(ERROR_TEXTS[rating_error]) if rating_error in ERROR_TEXTS else "",
        "show_rating": closed and not rated,
        "rated": rated,
        "rating_choices": [
            (1, _("1 – Very poor")),
            (2, _("2 – Poor")),
            (3, _("3 – OK")),
            (4, _("4 – Good")),
            (5, _("5 – Very good")),
        ],
        "max_chars": settings.CHAT_MESSAGE_MAX_CHARS,
        "post_url": _link("chat/messages/", language),
        "rating_url": _link("chat/rating/", language),
        "unquote_url": _link("", language) + f"#{PANEL_ID}",
        "texts": _script_texts(language),
        "state": state,
    }
    return render_to_string("chat/panel.html", context, request=request)
