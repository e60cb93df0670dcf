from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing.models import BillRunStatus
from invoices.models import Invoice, InvoiceSeries, OutboundMessage
from invoices.services.bill_run import bill_run_execute, bill_run_start
from tests.factories import SubscriptionFactory, UsageRecordFactory

pytestmark = pytest.mark.django_db

OCT = date(2026, 10, 1)


def _run(period: date = OCT) -> Invoice | None:
    run = bill_run_start(period=period, invoice_date=date(2026, 11, 1))
    return bill_run_execute(bill_run_id=run.id)


def test_full_month_with_data_overage_is_one_invoice_with_explained_lines() -> None:
    # given a 10 GB plan and 14.2 GB used in October
    sub = SubscriptionFactory()
    UsageRecordFactory(
        subscription=sub, quantity=Decimal("14540.8"), occurred_at=datetime(2026, 10, 5, tzinfo=UTC)
    )
    # when the October bill run runs
    run = _run()
    # then one invoice: 299 fee + 5 started GB at 29 kr
    invoice = Invoice.objects.get(customer=sub.customer)
    assert run.status == BillRunStatus.COMPLETED
    amounts = {line.kind: line.amount for line in invoice.lines.all()}
    assert amounts == {"fee": Decimal("299.00"), "data_overage": Decimal("145.00")}
    overage = invoice.lines.get(kind="data_overage")
    assert overage.texts["en"]["detail"] == (
        "14.2 GB used, 10 GB included, 5 GB started beyond at 29 kr per GB."
    )
    assert invoice.total == Decimal("444.00")
    assert invoice.vat_total == Decimal("88.80")


def test_rerun_issues_nothing_twice_and_numbers_stay_gapless() -> None:
    SubscriptionFactory.create_batch(3)
    _run()
    first = set(Invoice.objects.values_list("number", flat=True))
    _run()
    assert set(Invoice.objects.values_list("number", flat=True)) == first
    assert sorted(first) == list(range(min(first), min(first) + 3))
    assert InvoiceSeries.objects.get(code="F").next_number == max(first) + 1


def test_issue_delivers_a_link_by_email_after_commit(django_capture_on_commit_callbacks) -> None:
    SubscriptionFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        _run()
    assert not OutboundMessage.objects.exists()  # nothing is sent before the issue commits
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    message = OutboundMessage.objects.get()
    assert message.channel == "email"
    assert "/i/" in message.body_text
    assert message.sent_at is not None
