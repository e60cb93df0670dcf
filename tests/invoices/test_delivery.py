from datetime import date

import pytest
from django.core import mail

from invoices.models import Invoice, InvoiceLink, OutboundMessage, PageEvent
from invoices.selectors import invoice_get_by_token
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.delivery import invoice_deliver, invoice_resend
from tests.factories import CustomerFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def issue(**customer: object) -> Invoice:
    SubscriptionFactory(customer=CustomerFactory(**customer))
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    bill_run_execute(bill_run_id=run.id)
    return Invoice.objects.select_related("customer", "series").get()


def test_an_email_customer_gets_html_and_text_with_a_working_link(
    django_capture_on_commit_callbacks,
) -> None:
    invoice = issue(delivery_method="email", language="sv")
    with django_capture_on_commit_callbacks(execute=True):
        invoice_deliver(invoice=invoice)
    sent = mail.outbox[-1]
    assert sent.to == [invoice.customer.email]
    assert "Din faktura" in sent.subject
    html = sent.alternatives[0].content
    token = sent.body.split("/i/")[1].split("/")[0]
    assert f"/i/{token}/" in html
    assert invoice_get_by_token(token) == invoice
    assert PageEvent.objects.filter(invoice=invoice, kind="delivered").exists()


def test_an_sms_customer_gets_an_sms_through_the_backend(
    sms_outbox: list, django_capture_on_commit_callbacks
) -> None:
    invoice = issue(delivery_method="sms", language="en")
    with django_capture_on_commit_callbacks(execute=True):
        invoice_deliver(invoice=invoice)
    to, body = sms_outbox[-1]
    assert to == invoice.customer.phone
    assert "your invoice of" in body
    assert "/i/" in body


def test_a_missing_email_falls_back_to_sms(sms_outbox: list) -> None:
    invoice = issue(delivery_method="email", email="")
    messages = invoice_deliver(invoice=invoice)
    assert [m.channel for m in messages] == ["sms"]


def test_a_paper_customer_gets_no_message() -> None:
    invoice = issue(delivery_method="paper")
    assert invoice_deliver(invoice=invoice) == []
    assert not InvoiceLink.objects.exists()


def test_a_failing_carrier_is_recorded_and_nothing_is_lost(
    settings, django_capture_on_commit_callbacks
) -> None:
    settings.SMS_BACKEND = "tests.invoices.test_delivery.BrokenSms"
    invoice = issue(delivery_method="sms")
    with django_capture_on_commit_callbacks(execute=True):
        invoice_deliver(invoice=invoice)
    message = OutboundMessage.objects.get(invoice=invoice)
    assert message.sent_at is None
    assert "gateway down" in message.error


def test_resending_issues_a_new_link_and_can_revoke_the_old(
    django_capture_on_commit_callbacks,
) -> None:
    invoice = issue(delivery_method="email")
    with django_capture_on_commit_callbacks(execute=True):
        invoice_deliver(invoice=invoice)
        invoice_resend(invoice_id=invoice.id, revoke_old=True)
    old, new = (m.body.split("/i/")[1].split("/")[0] for m in mail.outbox[-2:])
    assert old != new
    assert invoice_get_by_token(old) is None
    assert invoice_get_by_token(new) == invoice
    assert PageEvent.objects.filter(invoice=invoice, kind="link_resent").exists()


class BrokenSms:
    def send(self, to: str, body: str) -> None:
        raise ConnectionError("gateway down")


def test_no_table_holds_a_working_link(django_capture_on_commit_callbacks) -> None:
    # given a delivered invoice whose customer got a working link
    invoice = issue(delivery_method="email_sms")
    with django_capture_on_commit_callbacks(execute=True):
        invoice_deliver(invoice=invoice)
    token = mail.outbox[-1].body.split("/i/")[1].split("/")[0]
    assert invoice_get_by_token(token) == invoice
    # then no row of any table in the database contains the token
    from django.apps import apps
    from django.db import connection

    with connection.cursor() as cursor:
        for model in apps.get_models():
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - table names from the models
            for row in cursor.fetchall():
                assert token not in repr(row), model._meta.db_table
    # and the outbox keeps what was sent, with the link masked
    sms = OutboundMessage.objects.get(invoice=invoice, channel="sms")
    assert "/i/[token]/" in sms.body_text


def test_plain_text_messages_are_not_html_escaped(
    sms_outbox: list, django_capture_on_commit_callbacks
) -> None:
    invoice = issue(delivery_method="email_sms", name="Åsa O'Brien & Per")
    with django_capture_on_commit_callbacks(execute=True):
        invoice_deliver(invoice=invoice)
    assert "Åsa O'Brien & Per" in mail.outbox[-1].body
    assert "&amp;" not in mail.outbox[-1].body + sms_outbox[-1][1]
    assert "&#x27;" not in mail.outbox[-1].body
    assert "O&#x27;Brien &amp; Per" in mail.outbox[-1].alternatives[0].content
