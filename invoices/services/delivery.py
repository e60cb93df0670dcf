"""Deliver an invoice: a fresh link by e-mail (HTML and text) and/or SMS, in the outbox."""

from collections.abc import Callable
from dataclasses import dataclass

from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from billing.models import Customer, DeliveryMethod
from core.errors import DomainError
from core.logging import mask_invoice_tokens
from core.sms import sms_backend
from invoices.models import Invoice, OutboundMessage, PageEvent, PageEventKind
from invoices.selectors import invoice_credit_at_issue
from invoices.services.links import invoice_link_create, invoice_link_url

EMAIL_METHODS = {DeliveryMethod.EMAIL, DeliveryMethod.EMAIL_AND_SMS, DeliveryMethod.EMAIL_PDF}
SMS_METHODS = {DeliveryMethod.SMS, DeliveryMethod.EMAIL_AND_SMS}


def delivery_channels(customer: Customer) -> list[str]:
    """Where a customer's links go: their chosen channels that they have an address for,
    SMS standing in for a missing e-mail address."""
    method = customer.delivery_method
    channels: list[str] = []
    if method in EMAIL_METHODS and customer.email:
        channels.append(OutboundMessage.Channel.EMAIL)
    if (
        method in SMS_METHODS or (method in EMAIL_METHODS and not customer.email)
    ) and customer.phone:
        channels.append(OutboundMessage.Channel.SMS)
    return channels


def invoice_deliver(
    *,
    invoice: Invoice,
    reason: str = "issued",
    render: Callable[[str, dict[str, object]], "RenderedMessage"] | None = None,
    channels: list[str] | None = None,
) -> list[OutboundMessage]:
    """Send the customer a new link to ``invoice`` on the channels they chose (or on
    ``channels``, for a message that must reach them whatever they chose): the invoice's own
    message, or what ``render(channel, context)`` writes around the link (``context`` holds
    ``invoice``, ``url`` and ``customer``).

    The link is created and the outbox written in one transaction; the carriers are called
    after commit, so a failed send leaves the message in the outbox with its error (and
    ``invoice_resend`` sends a new link).
    """
    customer = invoice.customer
    if channels is None:
        channels = delivery_channels(customer)
    if not channels:
        return []  # paper: the PDF is printed and posted from the rendered file
    with transaction.atomic():
        token = invoice_link_create(invoice=invoice, reason=reason)
        context = {"invoice": invoice, "url": invoice_link_url(token), "customer": customer}
        if render is None:
            # the invoice's own message says what the credit balance paid at issue
            from_credit = invoice_credit_at_issue(invoice.id)
            context.update(from_credit=from_credit, to_pay=invoice.total - from_credit)
        now = timezone.now()
        # The rendered messages carry the token; they live only in this process until the
        # carriers have them. The outbox keeps the same texts with the token masked, so the
        # database never holds a working link (sending again issues a new one).
        outgoing: list[tuple[OutboundMessage, RenderedMessage]] = []
        with translation.override(invoice.language):
            for channel in channels:
                rendered = (render or _render)(channel, context)
                message = OutboundMessage(
                    invoice=invoice,
                    channel=channel,
                    created_at=now,
                    to=customer.email
                    if channel == OutboundMessage.Channel.EMAIL
                    else customer.phone,
                    subject=rendered.subject,
                    body_text=mask_invoice_tokens(rendered.text),
                    body_html=mask_invoice_tokens(rendered.html),
                )
                outgoing.append((message, rendered))
        OutboundMessage.objects.bulk_create([message for message, _ in outgoing])
        PageEvent.objects.create(
            invoice=invoice,
            occurred_at=now,
            kind=PageEventKind.DELIVERED if reason == "issued" else PageEventKind.LINK_RESENT,
            details={"channels": channels},
        )
        transaction.on_commit(lambda: _send(outgoing))
    return [message for message, _ in outgoing]


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


def _render(channel: str, context: dict[str, object]) -> RenderedMessage:
    if channel == OutboundMessage.Channel.EMAIL:
        return RenderedMessage(
            subject=render_to_string("invoices/email/subject.txt", context).strip(),
            text=render_to_string("invoices/email/invoice.txt", context),
            html=render_to_string("invoices/email/invoice.html", context),
        )
    return RenderedMessage(
        subject="", text=render_to_string("invoices/sms/invoice.txt", context).strip(), html=""
    )


def _send(outgoing: list[tuple[OutboundMessage, RenderedMessage]]) -> None:
    """Hand each message to its carrier; records the send time or the carrier's error."""
    for message, rendered in outgoing:
        try:
            if message.channel == OutboundMessage.Channel.EMAIL:
                email = EmailMultiAlternatives(rendered.subject, rendered.text, to=[message.to])
                if rendered.html:
                    email.attach_alternative(rendered.html, "text/html")
                email.send()
            else:
                sms_backend().send(message.to, rendered.text)
        except Exception as exc:
            message.error = f"{exc.__class__.__name__}: {exc}"[:300]
            message.save(update_fields=["error"])
        else:
            message.sent_at = timezone.now()
            message.save(update_fields=["sent_at"])


def invoice_resend(*, invoice_id: int, revoke_old: bool = False) -> list[OutboundMessage]:
    """Send a new link (the old ones keep working unless ``revoke_old``)."""
    from invoices.services.links import invoice_links_revoke

    invoice = Invoice.objects.select_related("customer", "series").get(id=invoice_id)
    if not delivery_channels(invoice.customer):
        raise DomainError(
            code="no_delivery_channel",
            message="The customer has no e-mail address or phone number to send a link to.",
        )
    with transaction.atomic():
        if revoke_old:
            invoice_links_revoke(invoice_id=invoice.id, reason="resent")
        return invoice_deliver(invoice=invoice, reason="resent")
