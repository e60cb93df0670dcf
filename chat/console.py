"""What the agent console shows: the queue, a conversation, and the invoice beside it.

Pure data for ``templates/support/``, in the agent's language (the active one) except the
invoice panel, which is the customer's page in the customer's language (the words and
amounts they see and quote). Its figures come from the invoice page's own context
(``invoices.page.invoice_page_context``) and the offers the page shows
(``offers.page.offer_cards_shown``), never derived again here.
"""

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.models import PlanChange, PlanChangeStatus
from billing.services import ChangeTiming, binding_months_options
from chat.models import Author, CannedReply, Conversation, ConversationStatus, Message
from chat.parsing import parse_int
from chat.selectors import (
    agent_display_name,
    canned_reply_fill,
    conversation_payload,
    customer_conversations_earlier,
    customer_invoices_for_agent,
    message_payload,
    messages_after,
    support_agents_online,
)
from chat.services import chat_plan_change_quote
from core.errors import DomainError
from core.money import ZERO
from dunning.models import Dispute, GrantedBy
from dunning.page import part_rows, plan_paid
from dunning.selectors import WaysOut, disputes_open, invoice_debt, plan_parts, ways_out_read
from dunning.services.ways_out import instalment_plan_quote
from dunning.terms import postponement_date_refusal
from invoices.models import DocumentKind, Invoice
from invoices.page import (
    STATUS_TONE,
    invoice_page_context,
    long_date,
    money,
    month_label,
    status_label,
    subscription_heading,
    today_in_stockholm,
)
from invoices.services.credit_notes import invoice_lines_creditable
from invoices.services.delivery import delivery_channels
from offers.page import (
    allowances,
    binding_option_label,
    offer_cards_shown,
    per_month,
    plan_list,
    signed_kr,
)

LANGUAGE_NAMES: dict[str, Promise] = {
    "sv": gettext_lazy("Swedish"),
    "en": gettext_lazy("English"),
    "nb": gettext_lazy("Norwegian"),
}

# The agent's words for each refusal, by the DomainError's stable code (others show the
# service's own message, in English).
ERROR_TEXTS: dict[str, Promise] = {
    "already_claimed": gettext_lazy("Another agent has already claimed this conversation."),
    "not_your_conversation": gettext_lazy("Claim the conversation before you answer or act in it."),
    "conversation_closed": gettext_lazy("The conversation is closed."),
    "conversation_not_found": gettext_lazy("We could not find that conversation."),
    "invalid_conversation_transition": gettext_lazy("The conversation cannot do that now."),
    "not_an_agent": gettext_lazy("Choose a support agent."),
    "agent_not_found": gettext_lazy("That agent is not available. Choose another."),
    "message_empty": gettext_lazy("Write a message first."),
    "message_too_long": gettext_lazy("The message is too long. Split it into shorter ones."),
    "message_invalid": gettext_lazy("The message has characters that cannot be sent."),
    "confirmation_required": gettext_lazy("Review the action and confirm it."),
    "credit_reason_required": gettext_lazy("Write the reason the customer will read."),
    "credit_reason_too_long": gettext_lazy("The reason can be at most 300 characters."),
    "line_not_found": gettext_lazy("That line is not on this invoice."),
    "line_already_credited": gettext_lazy("That line is credited already."),
    "nothing_to_credit": gettext_lazy("Every line is credited already."),
    "not_creditable": gettext_lazy("A credit note cannot be credited."),
    "credit_increases_amount": gettext_lazy(
        "A discount cannot be credited on its own: it would raise what the customer owes."
    ),
    "no_delivery_channel": gettext_lazy(
        "The customer has no e-mail address or phone number to send a link to."
    ),
    "subscription_not_on_invoice": gettext_lazy("Choose a subscription on this invoice."),
    "plan_not_found": gettext_lazy("Choose a plan."),
    "timing_invalid": gettext_lazy("Choose when the change takes effect."),
    "confirmation_code_required": gettext_lazy(
        "This change raises the price or adds a binding period: send the customer a code "
        "and enter the code they tell you in the chat."
    ),
    "code_invalid": gettext_lazy(
        "That is not the code we sent. Ask the customer to check the message and try again."
    ),
    "code_expired": gettext_lazy(
        "The code has expired, or was entered wrong too many times. Send the customer a new code."
    ),
    "code_rate_limited": gettext_lazy(
        "Several codes were sent to the customer just now. Wait ten minutes and send a new one."
    ),
    "no_code_channel": gettext_lazy(
        "The customer has no phone number or e-mail address to send a code to, so this "
        "change cannot be made in the chat."
    ),
    "code_not_needed": gettext_lazy(
        "This change neither raises the price nor adds a binding period: no code is needed."
    ),
    "idempotency_key_invalid": gettext_lazy("Reload the page and try again."),
    "change_pending": gettext_lazy(
        "Another change of this subscription is already scheduled. Undo it first (“Undo the "
        "change…” next to it, under Change plan)."
    ),
    "plan_change_not_found": gettext_lazy("We could not find that plan change."),
    "later_change_exists": gettext_lazy(
        "The subscription has a later change: undo that one first."
    ),
    "cooling_off_expired": gettext_lazy(
        "The cooling-off period has ended: the change can no longer be undone."
    ),
    "credit_exceeds_invoice": gettext_lazy(
        "That is more than is left to credit on the invoice after earlier credit notes."
    ),
    "credit_exceeds_line": gettext_lazy(
        "That is more than is left to credit on the line after earlier credit notes."
    ),
    "invalid": gettext_lazy("Something in the form is not valid. Reload the page and try again."),
    "binding_period_active": gettext_lazy(
        "The binding period is still running: a cheaper plan can start the day after it "
        "ends (choose that timing)."
    ),
    "binding_not_offered": gettext_lazy("The plan is not sold with that binding period."),
    "plan_not_for_sale": gettext_lazy("That plan is no longer for sale."),
    "plan_kind_differs": gettext_lazy("Choose a plan of the same kind."),
    "no_change": gettext_lazy("The customer already has that plan at that price."),
    "subscription_ended": gettext_lazy("The subscription has ended."),
    "immediate_change_not_allowed": gettext_lazy(
        "This change cannot take effect today: choose the next period."
    ),
    "handed_to_collection": gettext_lazy(
        "The claim is with debt collection: it can no longer be postponed or split here."
    ),
    "nothing_to_pay": gettext_lazy("Nothing is left to pay on this invoice."),
    "ways_out_not_offered": gettext_lazy(
        "No dunning policy is active, so there is nothing to postpone or split."
    ),
    "already_postponed": gettext_lazy("The invoice was postponed once already."),
    "instalment_plan_active": gettext_lazy("An instalment plan runs on this invoice."),
    "postponement_too_late": gettext_lazy(
        "The latest day a postponement may give has passed: offer instalments instead."
    ),
    "postponement_date_invalid": gettext_lazy("Choose a day within the window the policy allows."),
    "instalment_parts_invalid": gettext_lazy("Choose one of the numbers of parts offered."),
    "instalment_fee_above_cap": gettext_lazy(
        "The policy's plan fee is above the legal cap: ask finance to correct the policy."
    ),
    "instalment_total_changed": gettext_lazy(
        "What is open changed since the review (a payment came in): review the plan again."
    ),
    "instalment_amount_too_small": gettext_lazy("Too little is open to split into parts."),
    "dispute_not_found": gettext_lazy("We could not find that dispute on this invoice."),
    "resolution_required": gettext_lazy("Write what was found: the customer reads it."),
    "resolution_too_long": gettext_lazy("The explanation can be at most 300 characters."),
    "date_invalid": gettext_lazy("Choose a date."),
}


def error_text(error: DomainError) -> str:
    text = ERROR_TEXTS.get(error.code)
    return str(text) if text is not None else error.message


# --- the queue ---------------------------------------------------------------------------


def waiting_text(since: datetime | None, now: datetime) -> str:
    """'4:05' (minutes:seconds) or '1:02:03': how long a customer has waited for an answer.
    The page's script keeps it ticking."""
    if since is None:
        return ""
    seconds = max(0, int((now - since).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def queue_state_text(status: str, agent_id: int | None, agent_name: str, me_id: int) -> str:
    """The words the queue says about a conversation ('Waiting', 'With you', 'With Olle');
    support.js says the same from a conversation frame."""
    if status == ConversationStatus.WAITING:
        return _("Waiting")
    if agent_id == me_id:
        return _("With you")
    return _("With %(agent)s") % {"agent": agent_name}


def queue_items(conversations: QuerySet[Conversation], *, me: User) -> list[dict[str, Any]]:
    """The open conversations as the queue lists them: the socket's conversation frame, plus
    the words and the waiting time as first shown. One query."""
    now = timezone.now()
    items = []
    for conversation in conversations:
        payload = dict(conversation_payload(conversation))
        payload["state_text"] = queue_state_text(
            conversation.status,
            conversation.agent_id,
            agent_display_name(conversation.agent) if conversation.agent_id else "",
            me.pk,
        )
        payload["waiting_text"] = waiting_text(conversation.waiting_since, now)
        payload["mine"] = conversation.agent_id == me.pk
        payload["url"] = reverse("support:conversation", args=[conversation.id])
        items.append(payload)
    return items


def js_strings() -> dict[str, str]:
    """The words support.js writes itself, in the agent's language."""
    return {
        "waiting": _("Waiting"),
        "with_you": _("With you"),
        "with_agent": _("With %(agent)s"),
        "unread": _("%(count)s unread"),
        "customer": _("Customer"),
        "system": _("System"),
        "read": _("Read by the customer"),
        "sent": _("Sent"),
        "about_line": _("About the line"),
        "show_line": _("Show on the invoice"),
        "typing": _("The customer is writing…"),
        "reconnecting": _("Reconnecting…"),
        "connected": _("Connected"),
        "send_failed": _("The message was not sent. Try again."),
        "empty_queue": _("No open conversations."),
        "changed": _("Someone else changed this conversation."),
    }


# --- a conversation --------------------------------------------------------------------


def message_item(message: Message, *, customer_read_seq: int, language: str) -> dict[str, Any]:
    """A message as the conversation page first shows it (support.js draws later ones from
    the socket's frames the same way)."""
    payload = dict(message_payload(message))
    payload["time"] = timezone.localtime(message.created_at).strftime("%H:%M")
    payload["quote_amount"] = (
        money(Decimal(str(message.quote["amount"])), language) if message.quote else ""
    )
    if message.author == Author.CUSTOMER:
        payload["author_label"] = _("Customer")
    elif message.author == Author.SYSTEM:
        payload["author_label"] = _("System")
    else:
        payload["author_label"] = payload["agent_name"]
    payload["read"] = message.author != Author.CUSTOMER and message.seq <= customer_read_seq
    return payload


def invoice_panel(
    invoice: Invoice,
    *,
    language: str,
    creditable: bool,
    quoted_positions: set[int] | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """The customer's invoice page as data (``invoice_page_context`` in ``language``, with
    the due date a reminder or a postponement moved it to), with the offers it shows and,
    when ``creditable``, which lines a credit note may still take. Lines carry their ``id``
    and ``position`` from the page's context, and what of them the customer disputes."""
    today = today or today_in_stockholm()
    is_invoice = invoice.kind == DocumentKind.INVOICE
    debt = invoice_debt(invoice_id=invoice.id) if is_invoice else None
    page = invoice_page_context(
        invoice, language, today=today, due_date=debt.moved_due_date if debt else None
    )
    disputed = (
        {d.line_id: d.amount for d in disputes_open(invoice_id=invoice.id)}
        if debt is not None and debt.disputed > 0
        else {}
    )
    offers: list[dict[str, Any]] = []
    if is_invoice:
        with translation.override(language):
            offers = offer_cards_shown(invoice, language, today=today)
    open_line_ids = (
        {line.id for line in invoice_lines_creditable(invoice)}
        if creditable and is_invoice
        else set()
    )
    quoted = quoted_positions or set()
    for group in page["groups"]:
        for line in group["lines"]:
            line["creditable"] = line["id"] in open_line_ids
            line["quoted"] = line["position"] in quoted
            line["disputed"] = (
                money(disputed[line["id"]], language) if line["id"] in disputed else ""
            )
    return {
        "invoice": invoice,
        "page": page,
        "offers": offers,
        "language": language,
        "language_name": str(LANGUAGE_NAMES.get(language, language)),
    }


def _invoice_rows(invoices: list[Invoice], current_id: int) -> list[dict[str, Any]]:
    language = translation.get_language() or "sv"
    return [
        {
            "id": invoice.id,
            "number": invoice.display_number,
            "credit_note": invoice.kind == DocumentKind.CREDIT_NOTE,
            "period": month_label(invoice.period_start),
            "total": money(invoice.total, language),
            "status_label": status_label(invoice.status),
            "tone": STATUS_TONE.get(invoice.status, "open"),
            "current": invoice.id == current_id,
            "url": reverse("support:invoice", args=[invoice.id]),
        }
        for invoice in invoices
    ]


def _conversation_rows(conversations: list[Conversation]) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "started": timezone.localtime(c.created_at).strftime("%Y-%m-%d %H:%M"),
            "invoice_number": c.invoice.display_number,
            "status": c.get_status_display(),
            "agent_name": agent_display_name(c.agent) if c.agent_id else "",
            "rating": c.rating,
            "url": reverse("support:conversation", args=[c.id]),
        }
        for c in conversations
    ]


def _delivery_text(conversation: Conversation) -> str:
    customer = conversation.customer
    channels = delivery_channels(customer)
    places = []
    if "email" in channels:
        places.append(_("e-mail to %(address)s") % {"address": customer.email})
    if "sms" in channels:
        places.append(_("SMS to %(phone)s") % {"phone": customer.phone})
    return ", ".join(places)


def _plan_options(invoice: Invoice, language: str) -> list[dict[str, Any]]:
    """The plans each subscription on the invoice can change to (the plan list of the
    invoice page), for the plan-change form."""
    groups = []
    for subscription in plan_list(invoice, language):
        groups.append(
            {
                "id": subscription["id"],
                "label": " · ".join(
                    x for x in (subscription["heading"], subscription["subheading"]) if x
                ),
                "current": subscription["current"],
                "pending": subscription["pending"],
                "plans": [
                    {
                        "value": f"{subscription['id']}:{plan['id']}",
                        "label": f"{plan['name']}, {plan['price']}",
                        "current": plan["current"],
                    }
                    for plan in subscription["plans"]
                ],
            }
        )
    return groups


def _binding_choices(invoice: Invoice) -> list[tuple[int, str]]:
    from billing.models import Plan

    kinds = {s.get("plan_kind", "mobile") for s in invoice.subscriptions or []}
    months: set[int] = {0}
    for plan in Plan.objects.filter(kind__in=kinds, available_for_new_customers=True):
        months.update(binding_months_options(plan))
    return [(m, binding_option_label(m)) for m in sorted(months)]


TIMINGS: list[tuple[str, Promise]] = [
    (ChangeTiming.NEXT_PERIOD, gettext_lazy("From the next period")),
    (ChangeTiming.AFTER_BINDING, gettext_lazy("The day after the binding period ends")),
    (ChangeTiming.NOW, gettext_lazy("Today, the rest of the month charged by day")),
]


def parse_plan_choice(value: str) -> tuple[int, int] | None:
    """'<subscription id>:<plan id>' from the plan-change form."""
    subscription, _sep, plan = value.partition(":")
    if not (subscription.isdigit() and plan.isdigit()):
        return None
    return int(subscription), int(plan)


def parse_timing(value: str) -> ChangeTiming:
    try:
        return ChangeTiming(value or ChangeTiming.NEXT_PERIOD)
    except ValueError:
        raise DomainError(code="timing_invalid", message="Unknown timing.") from None


def _code_destination(conversation: Conversation) -> str:
    """Where ``offers.services.plan_change_code_send`` sends the customer's code."""
    customer = conversation.customer
    if customer.phone:
        return _("By SMS to %(phone)s.") % {"phone": customer.phone}
    if customer.email:
        return _("By e-mail to %(address)s.") % {"address": customer.email}
    return ""


def _plan_review(
    conversation: Conversation, agent: User, params: dict[str, str]
) -> dict[str, Any] | None:
    """What the change chosen in the form would do, before the click that makes it."""
    choice = parse_plan_choice(params.get("plan", ""))
    if choice is None:
        return None
    subscription_id, plan_id = choice
    binding_months = parse_int(params.get("binding_months"), 0) or 0
    review: dict[str, Any] = {
        "subscription_id": subscription_id,
        "plan_id": plan_id,
        "choice": params.get("plan", ""),
        "timing": params.get("timing") or ChangeTiming.NEXT_PERIOD,
        "binding_months": binding_months,
    }
    try:
        timing = parse_timing(params.get("timing", ""))
        quote = chat_plan_change_quote(
            conversation_id=conversation.id,
            agent=agent,
            subscription_id=subscription_id,
            to_plan_id=plan_id,
            timing=timing,
            binding_months=binding_months,
        )
    except DomainError as error:
        review["error"] = error_text(error)
        return review
    language = translation.get_language() or "sv"
    warnings = []
    if quote.raises_price:
        warnings.append(
            _("The monthly price goes up by %(amount)s.")
            % {"amount": signed_kr(quote.price_difference, language).lstrip("+")}
        )
    if quote.adds_binding and quote.to_binding_end:
        warnings.append(
            _("It adds a binding period until %(date)s.")
            % {"date": long_date(quote.to_binding_end)}
        )
    if quote.adds_binding and quote.to_binding_end:
        binding = _("New binding period until %(date)s.") % {
            "date": long_date(quote.to_binding_end)
        }
    elif quote.to_binding_end:
        binding = _("The binding period until %(date)s stays as it is.") % {
            "date": long_date(quote.to_binding_end)
        }
    else:
        binding = _("No binding period.")
    review.update(
        {
            "from_plan": quote.subscription.plan.name,
            "from_price": per_month(quote.from_price, language),
            "to_plan": quote.to_plan.name,
            "to_price": per_month(quote.to_price, language),
            "to_allowances": allowances(quote.to_plan, language),
            "difference": signed_kr(quote.price_difference, language)
            if quote.price_difference
            else "",
            "effective_date": long_date(quote.effective_date),
            "binding": binding,
            "cooling_off_until": long_date(quote.cooling_off_until),
            "warnings": warnings,
            # the customer confirms it with a one-time code they tell the agent
            "needs_code": quote.needs_confirmation_code,
            "code_sent": params.get("code") == "sent",
            "code_destination": _code_destination(conversation),
            # a fresh key per review: the same review's double click makes one change
            "idempotency_key": uuid.uuid4().hex,
        }
    )
    return review


def _credit_review(panel: dict[str, Any], line_id: int | None) -> dict[str, Any] | None:
    if line_id is None:
        return None
    for group in panel["page"]["groups"]:
        for line in group["lines"]:
            if line["id"] == line_id and line["creditable"]:
                return {"line": line, "group": group["heading"]}
    return {"error": str(ERROR_TEXTS["line_already_credited"])}


def _plan_changes_undoable(invoice: Invoice, *, today: date) -> dict[int, dict[str, Any]]:
    """By subscription on the invoice: the plan change the agent can undo for the customer.
    That is its latest change not undone (an earlier one waits until the later one is
    undone), while it has not taken effect or within its cooling-off period, as
    ``billing.services.plan_change_undo`` allows. One query."""
    snapshots = {s["id"]: s for s in invoice.subscriptions or []}
    latest: dict[int, PlanChange] = {}
    for change in (
        PlanChange.objects.filter(
            subscription_id__in=list(snapshots), subscription__customer_id=invoice.customer_id
        )
        .exclude(status=PlanChangeStatus.UNDONE)
        .select_related("from_plan", "to_plan")
        .order_by("subscription_id", "-id")
    ):
        latest.setdefault(change.subscription_id, change)
    language = translation.get_language() or "sv"
    undoable = {}
    for subscription_id, change in latest.items():
        not_in_effect = (
            change.status == PlanChangeStatus.SCHEDULED and change.effective_date > today
        )
        if not (not_in_effect or today <= change.cooling_off_until):
            continue
        last_day = change.cooling_off_until
        if not_in_effect:
            last_day = max(last_day, change.effective_date - timedelta(days=1))
        params = {
            "from_plan": change.from_plan.name,
            "to_plan": change.to_plan.name,
            "price": per_month(change.to_price, language),
            "date": long_date(change.effective_date),
            "until": long_date(last_day),
        }
        text = (
            _("Changes from %(from_plan)s to %(to_plan)s (%(price)s) on %(date)s.")
            if change.status == PlanChangeStatus.SCHEDULED
            else _("Changed from %(from_plan)s to %(to_plan)s (%(price)s) on %(date)s.")
        ) % params
        undoable[subscription_id] = {
            "id": change.id,
            "subscription": subscription_heading(snapshots[subscription_id])[0],
            "from_plan": params["from_plan"],
            "from_price": per_month(change.from_price, language),
            "to_plan": params["to_plan"],
            "text": text,
            "until": _("The customer can have it undone until %(date)s.")
            % {"date": params["until"]},
        }
    return undoable


def _undo_review(
    undoable: dict[int, dict[str, Any]], change_id: int | None
) -> dict[str, Any] | None:
    if change_id is None:
        return None
    for row in undoable.values():
        if row["id"] == change_id:
            return row
    return {"error": _("That change can no longer be undone here.")}


def conversation_context(
    conversation: Conversation, *, agent: User, params: dict[str, str]
) -> dict[str, Any]:
    """Everything the conversation page shows. ``params`` are the page's query: a credit
    note or plan change chosen for review (``credit_line``; ``plan``, ``timing``,
    ``binding_months``, and ``code=sent`` once a code is on its way; ``undo_change``)."""
    holder = (
        conversation.status == ConversationStatus.ASSIGNED and conversation.agent_id == agent.pk
    )
    messages = messages_after(conversation.id, 0)
    quoted = {int(m.quote["position"]) for m in messages if m.quote}
    invoice = conversation.invoice
    panel = invoice_panel(
        invoice, language=conversation.language, creditable=holder, quoted_positions=quoted
    )
    context: dict[str, Any] = {
        "conversation": conversation,
        "summary": conversation_payload(conversation),
        "holder": holder,
        "closed": conversation.status == ConversationStatus.CLOSED,
        "claimable": conversation.status == ConversationStatus.WAITING,
        "agent_name": agent_display_name(conversation.agent) if conversation.agent_id else "",
        "chat_messages": [
            message_item(
                m, customer_read_seq=conversation.customer_read_seq, language=conversation.language
            )
            for m in messages
        ],
        "last_seq": messages[-1].seq if messages else 0,
        "panel": panel,
        "customer_language": panel["language_name"],
        "earlier_invoices": _invoice_rows(
            customer_invoices_for_agent(conversation.customer_id), invoice.id
        ),
        "earlier_conversations": _conversation_rows(customer_conversations_earlier(conversation)),
    }
    if holder:
        plan_options = (
            _plan_options(invoice, translation.get_language() or "sv")
            if not invoice.is_credit_note
            else []
        )
        undoable = _plan_changes_undoable(invoice, today=today_in_stockholm())
        for group in plan_options:
            group["undo"] = undoable.get(group["id"])
        context.update(
            {
                "canned_replies": [
                    {
                        "id": reply.id,
                        "title": reply.title,
                        "body": canned_reply_fill(reply, conversation),
                    }
                    for reply in CannedReply.objects.all()
                ],
                "transfer_to": [
                    {"id": user.pk, "name": agent_display_name(user)}
                    for user in support_agents_online(exclude_id=agent.pk)
                ],
                "delivery": _delivery_text(conversation),
                "plan_options": plan_options,
                "timings": TIMINGS,
                "binding_choices": _binding_choices(invoice),
                "plan_review": _plan_review(conversation, agent, params),
                "credit_review": _credit_review(panel, parse_int(params.get("credit_line"))),
                "undo_review": _undo_review(undoable, parse_int(params.get("undo_change"))),
                "ways_out": _ways_out(conversation, params)
                if invoice.kind == DocumentKind.INVOICE
                else None,
            }
        )
    return context


# --- the customer's ways out: postpone, instalments, disputes ---------------------------------


def _ways_out(conversation: Conversation, params: dict[str, str]) -> dict[str, Any] | None:
    """What the agent may grant the customer on the conversation's invoice, by the agent's
    rules (``dunning.terms``), what already stands, and the review of a choice: a new due
    date (``postpone``), a number of parts (``parts``, ``fee``), or a dispute's resolution
    (``dispute``, ``outcome``)."""
    debt = invoice_debt(invoice_id=conversation.invoice_id)
    if debt is None:
        return None
    ways = ways_out_read(debt=debt, today=today_in_stockholm(), by_agent=True)
    language = translation.get_language() or "sv"
    window = ways.window
    standing = []
    if ways.postponement is not None:
        standing.append(
            _("Postponed to %(date)s (the due date was %(before)s), granted by %(by)s.")
            % {
                "date": long_date(ways.postponement.new_due_date),
                "before": long_date(ways.postponement.previous_due_date),
                "by": _granted_by(ways.postponement.granted_by, ways.postponement.granted_by_user),
            }
        )
    plan = None
    if ways.plan is not None:
        plan = {
            "status": ways.plan.get_status_display(),
            "active": ways.plan_active,
            "text": _("%(parts)s parts, %(total)s in all (fee %(fee)s), granted by %(by)s.")
            % {
                "parts": ways.plan.parts,
                "total": money(ways.plan.amount, language),
                "fee": money(ways.plan.fee, language),
                "by": _granted_by(ways.plan.granted_by, ways.plan.granted_by_user),
            },
            "rows": part_rows(
                plan_parts(ways.plan),
                paid=plan_paid(ways.plan, ways),
                today=ways.today,
                language=language,
            ),
        }
    return {
        "open": money(debt.open, language),
        "due_date": long_date(debt.current_due_date),
        "standing": standing,
        "plan": plan,
        "disputes": [_dispute_row(dispute, conversation.language) for dispute in ways.disputes],
        "postpone_refusal": error_text(ways.postpone_refusal) if ways.postpone_refusal else "",
        "window": {
            "earliest": window.earliest.isoformat(),
            "latest": window.latest.isoformat(),
            "text": _("From %(earliest)s to %(latest)s (the policy allows %(days)s days).")
            % {
                "earliest": long_date(window.earliest),
                "latest": long_date(window.latest),
                "days": window.days,
            },
        }
        if window
        else None,
        "plan_refusal": error_text(ways.plan_refusal) if ways.plan_refusal else "",
        "parts_choices": ways.parts_choices,
        "policy_fee": money(ways.policy.instalment_fee, language)
        if ways.policy and ways.policy.instalment_fee
        else "",
        "postpone_review": _postpone_review(ways, params.get("postpone", "")),
        "instalments_review": _instalments_review(ways, params),
        "dispute_review": _dispute_review(ways, params, conversation.language),
    }


def _granted_by(granted_by: str, user: User | None) -> str:
    if granted_by == GrantedBy.AGENT and user is not None:
        return agent_display_name(user)
    return _("the customer on the invoice page")


def _dispute_row(dispute: Dispute, language: str) -> dict[str, Any]:
    """A dispute for the agent: the line's title as the customer read it (``language``), the
    amount and date in the agent's language."""
    return {
        "id": dispute.id,
        "line": dispute.line.text(language).get("title", ""),
        "amount": money(dispute.amount, translation.get_language() or "sv"),
        "reason": dispute.reason,
        "since": long_date(dispute.opened_at.date()),
    }


def _postpone_review(ways: WaysOut, asked: str) -> dict[str, Any] | None:
    """What postponing to the day ``asked`` (YYYY-MM-DD) does, or why not."""
    if not asked:
        return None
    if ways.postpone_refusal is not None:
        return {"error": error_text(ways.postpone_refusal)}
    try:
        day = date.fromisoformat(asked)
    except ValueError:
        return {"error": str(ERROR_TEXTS["date_invalid"])}
    window = ways.window
    if window is None:
        return None
    refusal = postponement_date_refusal(window, day)
    if refusal is not None:
        return {"error": error_text(refusal), "date": asked}
    return {
        "date": asked,
        "date_text": long_date(day),
        "before": long_date(window.current),
        "days": (day - window.current).days,
        "idempotency_key": uuid.uuid4().hex,
    }


def _instalments_review(ways: WaysOut, params: dict[str, str]) -> dict[str, Any] | None:
    """The plan of ``parts`` parts (with the policy's fee when ``fee`` is "1") as it would be
    made now, or why not."""
    parts = parse_int(params.get("parts"))
    if parts is None:
        return None
    charge_fee = params.get("fee") == "1"
    language = translation.get_language() or "sv"
    try:
        quote = instalment_plan_quote(
            debt=ways.debt,
            policy=ways.policy,
            parts=parts,
            today=ways.today,
            by_agent=True,
            fee=None if charge_fee else ZERO,
        )
    except DomainError as refused:
        return {"error": error_text(refused), "parts": parts}
    return {
        "parts": parts,
        "charge_fee": charge_fee,
        "rows": part_rows(quote.parts, paid=ZERO, today=ways.today, language=language),
        "total": money(quote.total, language),
        "total_value": f"{quote.total:.2f}",
        "fee": money(quote.fee, language) if quote.fee else "",
        "idempotency_key": uuid.uuid4().hex,
    }


def _dispute_review(
    ways: WaysOut, params: dict[str, str], customer_language: str
) -> dict[str, Any] | None:
    dispute_id = parse_int(params.get("dispute"))
    if dispute_id is None:
        return None
    dispute = next((d for d in ways.disputes if d.id == dispute_id), None)
    if dispute is None:
        return {"error": str(ERROR_TEXTS["dispute_not_found"])}
    return {
        **_dispute_row(dispute, customer_language),
        "upheld": params.get("outcome") != "rejected",
    }
