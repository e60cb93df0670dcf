"""A bill run sent to the workers: chunks by customer id, one task each, completed when the
database says so; a second trigger does nothing; a chunk that failed or was lost runs again
without duplicates or gaps."""

import threading
from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from billing.models import BillRun, BillRunChunk, BillRunStatus
from invoices.models import Invoice, InvoiceSeries
from invoices.services import bill_run as bill_run_module
from invoices.services.bill_run import bill_run_start
from invoices.services.bill_run_workers import (
    OPEN_END,
    bill_run_chunk_issue,
    bill_run_dispatch,
    bill_run_finish_if_complete,
    bill_run_progress,
    bill_run_resume,
    bill_runs_start_last_month,
    bill_runs_watch,
)
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db
OCT = date(2026, 10, 1)


def gapless() -> None:
    """The invoices' numbers follow each other, and the series goes on after the last."""
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert InvoiceSeries.objects.get(code="F").next_number == numbers[-1] + 1


@pytest.fixture
def run() -> BillRun:
    """Seven customers to bill for October (and one whose subscription started later)."""
    SubscriptionFactory.create_batch(7)
    SubscriptionFactory(start_date=date(2026, 11, 5))
    return bill_run_start(period=OCT, invoice_date=date(2026, 11, 1))


def test_the_run_is_cut_into_chunks_that_the_workers_issue(
    run: BillRun, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        dispatched = bill_run_dispatch(bill_run_id=run.id, customers_per_task=3)
    chunks = list(run.chunks.order_by("position"))
    assert [c.customers for c in chunks] == [3, 3, 1]
    ids = sorted(Invoice.objects.values_list("customer_id", flat=True))
    assert [c.first_customer_id for c in chunks] == [ids[0], ids[3], ids[6]]
    assert [c.last_customer_id for c in chunks] == [ids[3] - 1, ids[6] - 1, OPEN_END]
    assert dispatched.customers_total == 7
    run.refresh_from_db()
    assert (run.status, run.invoices_issued) == (BillRunStatus.COMPLETED, 7)
    assert all(c.status == "done" for c in run.chunks.all())
    gapless()


def test_a_second_trigger_of_the_same_run_does_nothing(
    run: BillRun, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as first:
        bill_run_dispatch(bill_run_id=run.id, customers_per_task=3)
    with django_capture_on_commit_callbacks(execute=False) as second:
        bill_run_dispatch(bill_run_id=run.id, customers_per_task=3)
        bill_run_start(period=OCT, invoice_date=date(2026, 11, 1))
    assert (len(first), len(second)) == (1, 0)  # the chunks were sent once
    assert run.chunks.count() == 3


def test_a_chunk_delivered_twice_issues_once(run: BillRun) -> None:
    bill_run_dispatch(bill_run_id=run.id, customers_per_task=10)
    chunk = run.chunks.get()
    assert bill_run_chunk_issue(chunk_id=chunk.id).issued == 7
    again = bill_run_chunk_issue(chunk_id=chunk.id)
    assert (again.issued, again.completed_run) == (0, False)
    assert Invoice.objects.count() == 7
    gapless()


def test_a_chunk_that_failed_half_way_runs_again_without_gaps_or_duplicates(
    run: BillRun, monkeypatch, settings
) -> None:
    settings.BILL_RUN_CHUNK_SIZE = 2  # four transactions in the chunk
    bill_run_dispatch(bill_run_id=run.id, customers_per_task=10)
    chunk = run.chunks.get()
    real = bill_run_module._issue_chunk
    calls = []

    def failing_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise ConnectionError("the database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr("invoices.services.bill_run_workers._issue_chunk", failing_third)
    with pytest.raises(ConnectionError):
        bill_run_chunk_issue(chunk_id=chunk.id)
    run.refresh_from_db()
    chunk.refresh_from_db()
    assert (run.status, chunk.status, chunk.attempts) == ("running", "pending", 1)
    assert run.error.startswith("chunk 0: ConnectionError")
    assert Invoice.objects.count() == 4  # two transactions committed
    monkeypatch.setattr("invoices.services.bill_run_workers._issue_chunk", real)
    assert bill_run_chunk_issue(chunk_id=chunk.id).completed_run is True
    run.refresh_from_db()
    assert (run.status, run.error, run.invoices_issued) == ("completed", "", 7)
    gapless()


def test_completion_is_decided_by_counting_invoices(run: BillRun) -> None:
    bill_run_dispatch(bill_run_id=run.id, customers_per_task=10)
    # every chunk marked walked, but nobody invoiced: not complete
    BillRunChunk.objects.update(status="done")
    assert bill_run_finish_if_complete(bill_run_id=run.id) is False
    run.refresh_from_db()
    assert run.status == "running"
    assert run.error == "7 customer(s) in scope have no invoice yet: resume the run."
    BillRunChunk.objects.update(status="pending")
    assert bill_run_resume(bill_run_id=run.id) == 1
    run.refresh_from_db()
    assert run.status == "completed"


def test_the_watch_sends_a_stalled_runs_chunks_again_and_fails_one_that_keeps_failing(
    run: BillRun, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        bill_run_dispatch(bill_run_id=run.id, customers_per_task=3)  # the tasks are lost
    now = timezone.now()
    assert bill_runs_watch(now=now) == 0  # just dispatched: the workers have them
    later = now + timedelta(minutes=11)
    assert bill_runs_watch(now=later) == 3  # stalled: sent again (and issued, eagerly)
    run.refresh_from_db()
    assert run.status == "completed"
    gapless()
    # a run whose chunk failed five times is given up, saying which
    other = bill_run_start(period=date(2026, 9, 1), invoice_date=date(2026, 10, 1))
    with django_capture_on_commit_callbacks(execute=False):
        bill_run_dispatch(bill_run_id=other.id, customers_per_task=10)
    other.chunks.update(attempts=5, started_at=now - timedelta(hours=1))
    BillRun.objects.filter(id=other.id).update(started_at=now - timedelta(hours=1))
    assert bill_runs_watch(now=later) == 0
    other.refresh_from_db()
    assert other.status == "failed"
    assert other.error.startswith("chunk 0 failed 5 times.")


def test_progress_counts_rate_and_time_left(run: BillRun) -> None:
    bill_run_dispatch(bill_run_id=run.id, customers_per_task=3)
    started = timezone.now() - timedelta(seconds=10)
    BillRun.objects.filter(id=run.id).update(started_at=started)
    bill_run_chunk_issue(chunk_id=run.chunks.get(position=0).id)
    progress = bill_run_progress(run)
    assert (progress.done, progress.total, progress.chunks_done, progress.chunks_total) == (
        3,
        7,
        1,
        3,
    )
    assert progress.percent == 42
    assert 0.2 < progress.rate < 0.31  # 3 invoices in about 10 s
    assert progress.seconds_left is not None
    assert 12 < progress.seconds_left < 20


def test_last_months_runs_start_by_themselves_from_the_configured_day(
    run: BillRun, settings, django_capture_on_commit_callbacks
) -> None:
    SubscriptionFactory(customer__billing_group="business")
    settings.BILL_RUN_DAY = 0
    assert bill_runs_start_last_month(today=date(2026, 11, 3)) == []
    settings.BILL_RUN_DAY = 2
    assert bill_runs_start_last_month(today=date(2026, 11, 1)) == []  # not yet
    with django_capture_on_commit_callbacks(execute=True):
        started = bill_runs_start_last_month(today=date(2026, 11, 2))
    # the default group's run existed (started by staff): only the business group's started
    assert [(r.billing_group, r.period) for r in started] == [("business", OCT)]
    assert bill_runs_start_last_month(today=date(2026, 11, 3)) == []
    assert BillRun.objects.get(billing_group="business").status == "completed"


@pytest.mark.django_db(transaction=True)
def test_chunks_write_at_once_and_queue_only_for_their_numbers(postgres: None, monkeypatch) -> None:
    """Two workers' chunks of one run: while one is still writing its invoices' lines, the
    other takes its numbers, writes and commits; numbers stay gapless and in commit order."""
    SubscriptionFactory.create_batch(6)
    run = bill_run_start(period=OCT, invoice_date=date(2026, 11, 1))
    sent: list[int] = []  # the tasks are run by hand below, each in its own thread
    monkeypatch.setattr("invoices.services.bill_run_workers._enqueue", sent.extend)
    bill_run_dispatch(bill_run_id=run.id, customers_per_task=3)
    assert len(sent) == 2
    first, second = run.chunks.order_by("position")
    writing, let_go = threading.Event(), threading.Event()
    real = bill_run_module.usage_months_build

    def held_while_writing(*args, **kwargs):
        if threading.current_thread().name == "first":
            writing.set()
            assert let_go.wait(30), "the second chunk never let the first go on"
        return real(*args, **kwargs)

    monkeypatch.setattr(bill_run_module, "usage_months_build", held_while_writing)
    errors: list[BaseException] = []

    def issue() -> None:
        try:
            bill_run_chunk_issue(chunk_id=first.id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=issue, name="first")
    thread.start()
    try:
        assert writing.wait(30)
        # the first chunk is in its transaction with its lines written: the second is
        # issued and committed meanwhile (before, it queued on the series until the first
        # committed: this call would have waited for ever)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '10s'")
        assert bill_run_chunk_issue(chunk_id=second.id).issued == 3
        assert Invoice.objects.count() == 3
    finally:
        let_go.set()
        thread.join(60)
    assert errors == []
    second_numbers = set(
        Invoice.objects.filter(customer_id__gte=second.first_customer_id).values_list(
            "number", flat=True
        )
    )
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert len(numbers) == 6
    assert second_numbers == set(numbers[:3])  # it took its numbers first
    gapless()
    run.refresh_from_db()
    assert (run.status, run.invoices_issued) == (BillRunStatus.COMPLETED, 6)
