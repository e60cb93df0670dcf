"""What a dunning step says to the customer, by e-mail and/or SMS, through the invoice's own
delivery (``invoices.services.delivery.invoice_deliver``): each message carries a fresh link
to the invoice page, where the customer pays or chooses a way out, and lands in the outbox.
Words are kind and plain, in the invoice's language; the first reminder reads like a nudge.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from billing.models import Customer
from dunning.models import DunningAction
from invoices.models import Invoice, OutboundMessage
from invoices.services.delivery import RenderedMessage, delivery_channels, invoice_deliver


def notice_channels(customer: Customer) -> list[str]:
    """Where a dunning message goes: the customer's chosen channels; a customer who gets
    paper invoices is written to by e-mail, else by SMS, when we have an address. Empty: no
    way to reach them (the step is recorded as not sent, and adds no fee)."""
    channels = delivery_channels(customer)
    if channels:
        return channels
    if customer.email:
        return [OutboundMessage.Channel.EMAIL]
    if customer.phone:
        return [OutboundMessage.Channel.SMS]
    return []


@dataclass(frozen=True)
class Notice:
    """What a message says: its ``kind`` (an ``ActionKind``), the amount it asks (kronor) by
    ``due``, and what the step added (fee, interest)."""

    kind: str
    amount: Decimal
    due: date | None
    fee: Decimal = Decimal(0)
    interest: Decimal = Decimal(0)


def dunning_message_send(*, invoice: Invoice, notice: Notice, channels: list[str]) -> list[str]:
    """Write the messages to the outbox with a new link (sent by the carriers after commit);
    returns the channels written. Call inside the step's transaction."""

    def render(channel: str, context: dict[str, object]) -> RenderedMessage:
        context = {
            **context,
            "kind": notice.kind,
            "amount": notice.amount,
            "due": notice.due,
            "fee": notice.fee,
            "interest": notice.interest,
            "collection_fee": settings.DUNNING_COLLECTION_FEE_CAP,
        }
        if channel == OutboundMessage.Channel.EMAIL:
            return RenderedMessage(
                subject=render_to_string("dunning/email/subject.txt", context).strip(),
                text=render_to_string("dunning/email/notice.txt", context),
                html=render_to_string("dunning/email/notice.html", context),
            )
        text = render_to_string("dunning/sms/notice.txt", context).strip()
        return RenderedMessage(subject="", text=text, html="")

    sent = invoice_deliver(invoice=invoice, reason=notice.kind, render=render, channels=channels)
    return [message.channel for message in sent]


def dunning_action_send(
    *, action: DunningAction, invoice: Invoice, notice: Notice, channels: list[str]
) -> None:
    """Send what ``action`` says on ``channels`` (none: nothing goes, and the action stays
    unsent) and record where it went and when."""
    if not channels:
        return
    sent = dunning_message_send(invoice=invoice, notice=notice, channels=channels)
    action.channels, action.sent_at = ",".join(sent), timezone.now()
    action.save(update_fields=["channels", "sent_at"])
