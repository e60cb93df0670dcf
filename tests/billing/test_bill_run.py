import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO
from unittest.mock import patch

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from billing.models import BillRun, BillRunStatus, Discount, OneOffCharge
from core.errors import DomainError
from core.ocr import ocr_validate
from invoices.models import Invoice, InvoiceSeries, OutboundMessage
from invoices.services import bill_run as bill_run_module
from invoices.services.bill_run import bill_run_execute, bill_run_start
from tests.factories import RoamingZoneFactory, SubscriptionFactory, UsageRecordFactory

pytestmark = pytest.mark.django_db

OCT = date(2026, 10, 1)


def _run(period: date = OCT) -> BillRun:
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


def test_a_run_that_died_half_way_resumes_without_gaps_or_duplicates() -> None:
    # given five customers and a run whose third chunk fails
    SubscriptionFactory.create_batch(5)
    run = bill_run_start(period=OCT, invoice_date=date(2026, 11, 1))
    real_issue = bill_run_module._issue_chunk
    calls = {"n": 0}

    def dying(*args: object) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker killed")
        return real_issue(*args)

    with patch.object(bill_run_module, "_issue_chunk", dying), pytest.raises(RuntimeError):
        bill_run_execute(bill_run_id=run.id, chunk_size=2)
    run.refresh_from_db()
    assert run.status == BillRunStatus.FAILED
    assert Invoice.objects.count() == 4
    # when it is run again
    run = bill_run_execute(bill_run_id=run.id, chunk_size=2)
    # then every customer has exactly one invoice and the numbers have no gap
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert run.status == BillRunStatus.COMPLETED
    assert run.invoices_issued == 5
    assert numbers == list(range(numbers[0], numbers[0] + 5))


def test_subscriptions_not_active_in_the_month_are_not_billed() -> None:
    SubscriptionFactory(end_date=date(2026, 9, 30))
    SubscriptionFactory(start_date=date(2026, 11, 5))
    run = _run()
    assert run.customers_total == 0
    assert not Invoice.objects.exists()


def test_a_household_gets_one_invoice_for_all_its_numbers() -> None:
    first = SubscriptionFactory()
    SubscriptionFactory.create_batch(2, customer=first.customer)
    _run()
    invoice = Invoice.objects.get()
    assert invoice.lines.filter(kind="fee").count() == 3
    assert invoice.total == Decimal("897.00")
    assert len(invoice.subscriptions) == 3


def test_the_ocr_reference_of_every_invoice_validates() -> None:
    SubscriptionFactory.create_batch(3)
    _run()
    for invoice in Invoice.objects.all():
        assert ocr_validate(invoice.ocr) == invoice.ocr


@pytest.mark.parametrize("invoice_date", [date(2026, 11, 22), date(2026, 11, 30)])
def test_a_month_cannot_be_billed_before_it_ends(invoice_date: date) -> None:
    with pytest.raises(DomainError) as error:
        bill_run_start(period=date(2026, 11, 1), invoice_date=invoice_date)
    assert error.value.code == "period_not_ended"
    assert "2026-12-01" in error.value.message


def test_the_command_shows_progress_and_a_summary() -> None:
    SubscriptionFactory.create_batch(3)
    out = StringIO()
    call_command("bill_run", "--period", "2026-10", "--invoice-date", "2026-11-01", stdout=out)
    text = out.getvalue()
    assert "3/3 customers" in text
    assert "invoices/s" in text
    assert "completed, 3 invoices" in text


def test_the_command_names_a_bad_period() -> None:
    with pytest.raises(CommandError, match="2026-10"):
        call_command("bill_run", "--period", "oktober")


def test_every_line_text_has_a_swedish_translation() -> None:
    # given a subscription that produces every kind of line
    RoamingZoneFactory()
    sub = SubscriptionFactory(
        plan__voice_included_minutes=10, plan__sms_included=10, start_date=date(2026, 10, 10)
    )
    Discount.objects.create(
        subscription=sub,
        description="Kampanj",
        monthly_amount=50,
        valid_from=date(2026, 1, 1),
        valid_until=date(2026, 10, 20),
    )
    OneOffCharge.objects.create(
        subscription=sub, description="SIM", amount=99, charge_date=date(2026, 10, 10)
    )
    when = datetime(2026, 10, 12, 10, tzinfo=UTC)
    for i, (kind, qty, country) in enumerate(
        [
            ("data", 20000, ""),
            ("voice", 3600, ""),
            ("sms", 20, ""),
            ("data", 5, "US"),
            ("voice", 100, "US"),
            ("sms", 2, "US"),
            ("data", 1000, "DE"),
        ]
    ):
        UsageRecordFactory(
            subscription=sub,
            source_id=f"s{i}",
            kind=kind,
            quantity=qty,
            country=country,
            occurred_at=when,
        )
    _run()
    lines = list(Invoice.objects.get().lines.all())
    assert {line.kind for line in lines} >= {
        "fee",
        "discount",
        "data_overage",
        "voice_overage",
        "sms_overage",
        "roaming",
        "one_off",
    }
    for line in lines:
        for part in ("title", "detail"):
            if line.kind == "one_off" and part == "title":
                continue  # the charge's own name
            assert line.texts["sv"][part] != line.texts["en"][part], (line.kind, part)


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_for_different_groups_keep_numbers_gapless(postgres: None) -> None:
    # given two billing groups of 40 customers each
    for group in ("north", "south"):
        for _ in range(40):
            SubscriptionFactory(customer__billing_group=group)
    runs = [
        bill_run_start(period=OCT, billing_group=g, invoice_date=date(2026, 11, 1))
        for g in ("north", "south")
    ]
    # when both run at the same time, in small chunks so their transactions interleave
    errors: list[BaseException] = []

    def execute(run_id: int) -> None:
        try:
            bill_run_execute(bill_run_id=run_id, chunk_size=3)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=execute, args=(run.id,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then 80 invoices numbered without a gap or a duplicate
    assert errors == []
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == list(range(numbers[0], numbers[0] + 80))
    assert InvoiceSeries.objects.get(code="F").next_number == numbers[-1] + 1


def test_a_one_off_charge_after_the_subscription_ended_is_still_billed() -> None:
    # given a subscription that ended in September and a return fee charged in October
    sub = SubscriptionFactory(end_date=date(2026, 9, 30), status="ended")
    OneOffCharge.objects.create(
        subscription=sub,
        description="Ej returnerad router",
        amount=Decimal("499"),
        charge_date=date(2026, 10, 5),
    )
    # when October is billed
    _run()
    # then the fee is on an invoice, and nothing else
    invoice = Invoice.objects.get()
    assert [(line.kind, line.amount) for line in invoice.lines.all()] == [
        ("one_off", Decimal("499.00"))
    ]


def test_an_ended_subscription_must_say_when_it_ended() -> None:
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        SubscriptionFactory(status="ended", end_date=None)


def test_a_delivery_lost_after_commit_is_sent_when_the_run_is_run_again(
    django_capture_on_commit_callbacks,
) -> None:
    # given a run whose delivery task could not be enqueued (the broker was down)
    SubscriptionFactory.create_batch(2)
    with (
        patch("invoices.tasks.invoice_deliver_task.delay", side_effect=ConnectionError("down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        run = _run()
    # then the run is complete all the same, with nothing sent
    assert run.status == BillRunStatus.COMPLETED
    assert not OutboundMessage.objects.exists()
    # when the run is run again
    with django_capture_on_commit_callbacks(execute=True):
        _run()
    # then each customer gets their link once
    assert OutboundMessage.objects.count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        _run()
    assert OutboundMessage.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_second_execution_of_the_same_run_is_refused(postgres: None) -> None:
    # given an execution under way (holding the run's lock on another connection)
    SubscriptionFactory()
    run = bill_run_start(period=OCT, invoice_date=date(2026, 11, 1))
    holder = connection.copy()
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [0x7470, run.id])
    try:
        # when another execution starts, it is refused and issues nothing
        with pytest.raises(DomainError) as error:
            bill_run_execute(bill_run_id=run.id)
        assert error.value.code == "bill_run_in_progress"
        assert not Invoice.objects.exists()
    finally:
        # released before the connection closes: the server ends a closed session's locks
        # only once it has noticed, which the next statement may beat
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [0x7470, run.id])
        holder.close()
    # and once the first has finished, the run can execute
    assert bill_run_execute(bill_run_id=run.id).status == BillRunStatus.COMPLETED
