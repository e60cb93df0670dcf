"""Deliver an invoice: a fresh link by e-mail (HTML and text) and/or SMS, in the outbox."""

from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from billing.models import DeliveryMethod
from invoices.delivery import sms_backend
from invoices.models import Invoice, OutboundMessage, PageEvent, PageEventKind
from invoices.services.links import invoice_link_create, invoice_link_url

EMAIL_METHODS = {DeliveryMethod.EMAIL, DeliveryMethod.EMAIL_AND_SMS, DeliveryMethod.EMAIL_PDF}
SMS_METHODS = {DeliveryMethod.SMS, DeliveryMethod.EMAIL_AND_SMS}


def invoice_deliver(*, invoice: Invoice, reason: str = "issued") -> list[OutboundMessage]:
    """Send the customer a new link to ``invoice`` on the channels they chose.

    The link is created and the outbox written in one transaction; the carriers are called
    after commit, so a failed send leaves the message in the outbox with its error.
    """
    customer = invoice.customer
    method = customer.delivery_method
    channels = []
    if method in EMAIL_METHODS and customer.email:
        channels.append(OutboundMessage.Channel.EMAIL)
    if (
        method in SMS_METHODS or (method in EMAIL_METHODS and not customer.email)
    ) and customer.phone:
        channels.append(OutboundMessage.Channel.SMS)
    if not channels:
        return []  # paper: the PDF is printed and posted from the rendered file
    with transaction.atomic():
        token = invoice_link_create(invoice=invoice, reason=reason)
        context = {"invoice": invoice, "url": invoice_link_url(token), "customer": customer}
        now = timezone.now()
        messages = []
        with translation.override(invoice.language):
            for channel in channels:
                if channel == OutboundMessage.Channel.EMAIL:
                    messages.append(
                        OutboundMessage(
                            invoice=invoice,
                            channel=channel,
                            to=customer.email,
                            created_at=now,
                            subject=render_to_string("invoices/email/subject.txt", context).strip(),
                            body_text=render_to_string("invoices/email/invoice.txt", context),
                            body_html=render_to_string("invoices/email/invoice.html", context),
                        )
                    )
                else:
                    messages.append(
                        OutboundMessage(
                            invoice=invoice,
                            channel=channel,
                            to=customer.phone,
                            created_at=now,
                            body_text=render_to_string("invoices/sms/invoice.txt", context).strip(),
                        )
                    )
        OutboundMessage.objects.bulk_create(messages)
        PageEvent.objects.create(
            invoice=invoice,
            occurred_at=now,
            kind=PageEventKind.DELIVERED if reason == "issued" else PageEventKind.LINK_RESENT,
            details={"channels": channels},
        )
        ids = [m.id for m in messages]
        transaction.on_commit(lambda: outbound_messages_send(message_ids=ids))
    return messages


def outbound_messages_send(*, message_ids: list[int]) -> None:
    """Hand unsent messages to their carriers; records the send time or the error."""
    for message in OutboundMessage.objects.filter(id__in=message_ids, sent_at__isnull=True):
        try:
            if message.channel == OutboundMessage.Channel.EMAIL:
                email = EmailMultiAlternatives(message.subject, message.body_text, to=[message.to])
                email.attach_alternative(message.body_html, "text/html")
                email.send()
            else:
                sms_backend().send(message.to, message.body_text)
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
    if revoke_old:
        invoice_links_revoke(invoice_id=invoice.id, reason="resent")
    return invoice_deliver(invoice=invoice, reason="resent")
