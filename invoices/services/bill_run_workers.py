"""A bill run across Celery workers: the run's customers cut into slices by id, one task per
slice, any number of workers issuing them at once.

- ``bill_run_dispatch`` cuts the scope into ``BillRunChunk`` rows (``BILL_RUN_TASK_CUSTOMERS``
  customers each; the last is open-ended, so a customer added during the run is billed too)
  and enqueues one ``bill_run_chunk_task`` per chunk after commit. A second trigger of the
  same run finds its chunks and does nothing.
- ``bill_run_chunk_issue`` walks its slice in transactions of ``BILL_RUN_CHUNK_SIZE``
  customers through the same ``_issue_chunk`` as a run in one process. A worker killed mid-way
  loses nothing: the transaction it was in rolls back (its numbers go back to the series, which
  stays gapless), the task's message was not acknowledged (``acks_late``; a lost pool process
  rejects it back to the queue, a lost worker leaves it to the broker's visibility timeout),
  and the task that runs again skips every customer already invoiced (one invoice per customer
  and month is also a unique constraint). Two deliveries of the same chunk at once are kept
  apart by a PostgreSQL advisory lock per chunk.
- Whether the run is complete is decided by the database: every chunk walked, and as many
  invoices for the month as customers in the scope (``bill_run_finish_if_complete``, called by
  each chunk as it ends and by the watch task). There is no chord callback to lose: the
  result backend is not needed, and a chunk that never reported still gets counted.
- ``bill_runs_watch`` (beat, every few minutes) sends again the chunks of running runs that
  nobody has walked in ``STUCK_AFTER`` (a task lost with its worker before the broker gave it
  back) and gives a run up as failed when one chunk has failed ``MAX_ATTEMPTS`` times.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, Window
from django.db.models.functions import Mod, RowNumber
from django.utils import timezone

from billing.models import BillRun, BillRunChunk, BillRunStatus, Customer
from core.errors import DomainError
from invoices.models import Invoice
from invoices.services.bill_run import (
    _analyze,
    _deliver_missing,
    _issue_chunk,
    _issued_in_scope,
    _zones,
    bill_run_scope,
    bill_run_start,
)

OPEN_END = 2**63 - 1  # the last chunk reaches to the end of the id space
STUCK_AFTER = timedelta(minutes=10)
MAX_ATTEMPTS = 5
# Namespace of the advisory locks that keep one worker per chunk (the run's own: 0x7470).
_CHUNK_LOCK_NAMESPACE = 0x7471


@transaction.atomic
def bill_run_dispatch(*, bill_run_id: int, customers_per_task: int | None = None) -> BillRun:
    """Cut the run into chunks and send them to the workers; a run dispatched before (or
    completed) is returned as it is. Precondition: called from outside any transaction that
    should hold the tasks back (they are enqueued when this commits)."""
    size = customers_per_task or settings.BILL_RUN_TASK_CUSTOMERS
    if size < 1:
        raise DomainError(code="invalid_chunk_size", message="A task needs at least 1 customer.")
    run = BillRun.objects.select_for_update().get(id=bill_run_id)
    if run.status == BillRunStatus.COMPLETED or run.chunks.exists():
        return run
    scope = bill_run_scope(run).order_by()
    starts = list(
        scope.annotate(rank=Window(RowNumber(), order_by=F("id").asc()))
        .annotate(slot=Mod(F("rank") - 1, size))
        .filter(slot=0)
        .order_by("id")
        .values_list("id", "rank")
    )
    total = scope.count()
    chunks = BillRunChunk.objects.bulk_create(
        [
            BillRunChunk(
                bill_run=run,
                position=position,
                first_customer_id=first_id,
                last_customer_id=starts[position + 1][0] - 1
                if position + 1 < len(starts)
                else OPEN_END,
                customers=min(size, total - rank + 1),
            )
            for position, (first_id, rank) in enumerate(starts)
        ]
    )
    BillRun.objects.filter(id=run.id).update(
        status=BillRunStatus.RUNNING,
        customers_total=total,
        error="",
        started_at=run.started_at or timezone.now(),
    )
    chunk_ids = [chunk.id for chunk in chunks]
    transaction.on_commit(lambda: _enqueue(chunk_ids))
    if not chunks:  # nobody to bill: complete at once
        transaction.on_commit(lambda: bill_run_finish_if_complete(bill_run_id=run.id))
    run.refresh_from_db()
    return run


def _enqueue(chunk_ids: list[int]) -> None:
    from invoices.tasks import bill_run_chunk_task

    for chunk_id in chunk_ids:
        bill_run_chunk_task.apply_async(
            kwargs={"chunk_id": chunk_id}, queue=settings.BILL_RUN_QUEUE
        )


def bill_run_resume(*, bill_run_id: int) -> int:
    """Send every chunk not yet walked to the workers again (staff, after a failure): safe while
    another worker holds one, which it then skips. Returns how many were sent."""
    run = BillRun.objects.get(id=bill_run_id)
    if not run.chunks.exists():
        bill_run_dispatch(bill_run_id=run.id)
        return run.chunks.count()
    pending = list(
        run.chunks.filter(status=BillRunChunk.Status.PENDING).values_list("id", flat=True)
    )
    BillRun.objects.filter(id=run.id, status=BillRunStatus.FAILED).update(
        status=BillRunStatus.RUNNING, error=""
    )
    _enqueue(pending)
    return len(pending)


@contextmanager
def _chunk_lock(chunk_id: int) -> Iterator[bool]:
    """True when this process may walk the chunk: nobody else holds it (PostgreSQL). The lock
    belongs to the database session, so a worker that dies lets go of it with its connection.
    SQLite serialises writers itself and runs tasks in one process."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_CHUNK_LOCK_NAMESPACE, chunk_id])
        got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", [_CHUNK_LOCK_NAMESPACE, chunk_id]
                )


@dataclass(frozen=True)
class ChunkIssued:
    issued: int  # invoices this call issued
    completed_run: bool  # this call found the run complete and marked it so


def bill_run_chunk_issue(*, chunk_id: int) -> ChunkIssued:
    """Issue the invoices of one chunk that are not issued yet; then see whether the run is
    complete. Safe to call again, and at once from two workers (the second does nothing)."""
    with _chunk_lock(chunk_id) as mine:
        chunk = BillRunChunk.objects.select_related("bill_run").get(id=chunk_id)
        if not mine or chunk.status == BillRunChunk.Status.DONE:
            return ChunkIssued(issued=0, completed_run=False)
        BillRunChunk.objects.filter(id=chunk.id).update(
            attempts=F("attempts") + 1, started_at=timezone.now()
        )
        run = chunk.bill_run
        scope = bill_run_scope(run).order_by()
        zones = _zones()
        issued = 0
        last_id = chunk.first_customer_id - 1
        try:
            while ids := list(
                scope.filter(id__gt=last_id, id__lte=chunk.last_customer_id)
                .order_by("id")
                .values_list("id", flat=True)[: settings.BILL_RUN_CHUNK_SIZE]
            ):
                last_id = ids[-1]
                issued += _issue_chunk(run, ids, zones)
        except Exception as exc:
            BillRun.objects.filter(id=run.id).update(
                error=f"chunk {chunk.position}: {exc.__class__.__name__}: {exc}"[:2000]
            )
            raise
        BillRunChunk.objects.filter(id=chunk.id).update(
            status=BillRunChunk.Status.DONE, finished_at=timezone.now()
        )
    return ChunkIssued(issued=issued, completed_run=bill_run_finish_if_complete(bill_run_id=run.id))


def bill_run_finish_if_complete(*, bill_run_id: int) -> bool:
    """Mark the run completed when the database says it is: every chunk walked and an invoice
    for the month for every customer in the scope. True when this call completed it (so the
    caller starts what follows a run, once)."""
    if BillRunChunk.objects.filter(
        bill_run_id=bill_run_id, status=BillRunChunk.Status.PENDING
    ).exists():
        return False
    run = BillRun.objects.get(id=bill_run_id)
    if run.status == BillRunStatus.COMPLETED:
        return False
    _analyze(Invoice)  # fresh statistics after the bulk load (see bill_run._execute)
    scope = bill_run_scope(run).order_by()
    missing = scope.count() - _issued_in_scope(run, scope)
    with transaction.atomic():
        run = BillRun.objects.select_for_update().get(id=bill_run_id)
        if run.status == BillRunStatus.COMPLETED:
            return False
        if missing > 0:
            run.error = f"{missing} customer(s) in scope have no invoice yet: resume the run."
            run.save(update_fields=["error"])
            return False
        run.status, run.finished_at, run.error = BillRunStatus.COMPLETED, timezone.now(), ""
        run.save(update_fields=["status", "finished_at", "error"])
        _deliver_missing(run)
    return True


def bill_runs_watch(*, now: datetime | None = None) -> int:
    """For each running run: complete it when all its chunks are walked; when none of its
    chunks started or ended in ``STUCK_AFTER`` (it stalled: tasks lost with their worker),
    send its pending chunks again, or fail it when one of them failed ``MAX_ATTEMPTS`` times.
    Returns how many chunks were sent again."""
    now = now or timezone.now()
    cutoff = now - STUCK_AFTER
    sent = 0
    for run in BillRun.objects.filter(
        status=BillRunStatus.RUNNING, chunks__isnull=False
    ).distinct():
        pending = run.chunks.filter(status=BillRunChunk.Status.PENDING)
        if not pending.exists():
            bill_run_finish_if_complete(bill_run_id=run.id)
            continue
        moving = run.chunks.filter(Q(started_at__gt=cutoff) | Q(finished_at__gt=cutoff))
        if (run.started_at and run.started_at > cutoff) or moving.exists():
            continue
        worn = pending.filter(attempts__gte=MAX_ATTEMPTS).first()
        if worn is not None:
            BillRun.objects.filter(id=run.id).update(
                status=BillRunStatus.FAILED,
                error=f"chunk {worn.position} failed {worn.attempts} times. {run.error}"[:2000],
            )
            continue
        ids = list(pending.values_list("id", flat=True))
        _enqueue(ids)
        sent += len(ids)
    return sent


@dataclass(frozen=True)
class RunProgress:
    """What the admin and the API show of a run while it issues."""

    status: str
    done: int
    total: int
    chunks_done: int
    chunks_total: int
    elapsed_seconds: float

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, int(100 * self.done / self.total))

    @property
    def rate(self) -> float:
        """Invoices a second since the run started."""
        return self.done / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        if self.status == BillRunStatus.COMPLETED:
            return 0.0
        return (self.total - self.done) / self.rate if self.rate else None


def bill_run_progress(run: BillRun) -> RunProgress:
    """Two queries: the run as it is now, and its chunks' counts."""
    run = BillRun.objects.get(id=run.id)
    chunks = list(run.chunks.values_list("status", flat=True))
    end = run.finished_at or timezone.now()
    elapsed = (end - run.started_at).total_seconds() if run.started_at else 0.0
    return RunProgress(
        status=run.status,
        done=run.invoices_issued,
        total=run.customers_total,
        chunks_done=sum(1 for status in chunks if status == BillRunChunk.Status.DONE),
        chunks_total=len(chunks),
        elapsed_seconds=max(elapsed, 0.0),
    )


def bill_run_wait(*, bill_run_id: int, timeout: float, poll: float = 0.2) -> BillRun:
    """Wait (a command line, a benchmark, a test) until the run is completed or failed."""
    deadline = time.monotonic() + timeout
    while True:
        run = BillRun.objects.get(id=bill_run_id)
        if run.status in {BillRunStatus.COMPLETED, BillRunStatus.FAILED}:
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"bill run {bill_run_id} still {run.status} after {timeout} s")
        time.sleep(poll)


def bill_runs_start_last_month(*, today: date | None = None) -> list[BillRun]:
    """From day ``BILL_RUN_DAY`` of a month (0: never), last month's run of every billing group
    is started and sent to the workers, dated today. A run that exists is left as it is, so
    the daily trigger, or two of them, start each run once."""
    day = settings.BILL_RUN_DAY
    today = today or timezone.localdate()
    if not day or today.day < day:
        return []
    period = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    groups = Customer.objects.order_by().values_list("billing_group", flat=True).distinct()
    started = []
    for group in sorted(set(groups)):
        if BillRun.objects.filter(period=period, billing_group=group).exists():
            continue
        run = bill_run_start(period=period, billing_group=group, invoice_date=today)
        started.append(bill_run_dispatch(bill_run_id=run.id))
    return started
