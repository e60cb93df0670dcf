"""A bill run on real Celery workers (Redis broker, PostgreSQL), killed with SIGKILL mid-chunk:
the pool processes, then the whole worker. The run completes with one invoice per customer
and no gap in the numbers. Needs PostgreSQL and Redis: skipped without them, failed in CI."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from billing.models import BillRun, BillRunChunk
from config.celery import app
from invoices.models import Invoice, InvoiceSeries
from invoices.services.bill_run import bill_run_start
from invoices.services.bill_run_workers import bill_run_dispatch, bill_run_wait
from tests.conftest import require
from tests.factories import CustomerFactory, PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS = 1200
VISIBILITY_TIMEOUT = 4  # seconds before a vanished worker's task goes to another


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    return [int(child) for child in found]


class Worker:
    """``celery worker`` with two pool processes, on the test database and a broker of its own."""

    def __init__(self, broker: str) -> None:
        db = connection.settings_dict
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "CELERY_BROKER_URL": broker,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "BILL_RUN_CHUNK_SIZE": "20",
            "DB_CONN_MAX_AGE": "0",
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=prefork",
                "--concurrency=2",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=WARNING",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )

    def pool(self) -> list[int]:
        return _children(self.process.pid)

    def kill_pool(self) -> None:
        for pid in self.pool():
            os.kill(pid, signal.SIGKILL)

    def kill_all(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.kill_all()


@pytest.fixture
def broker() -> Iterator[str]:
    """Tasks go to a real Redis queue (not run eagerly) for the length of the test."""
    require(connection.vendor == "postgresql", "needs PostgreSQL: set DATABASE_URL")
    require(bool(settings.REDIS_URL), "needs Redis: set REDIS_URL")
    url = settings.REDIS_URL.rsplit("/", 1)[0] + "/14"
    before = {key: app.conf[key] for key in ("task_always_eager", "broker_url")}
    app.conf.update(task_always_eager=False, broker_url=url)
    _new_connections()
    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()  # a queue of our own, empty
    yield url
    app.conf.update(**before)
    _new_connections()


def _new_connections() -> None:
    """Celery's connection and producer pools for the broker now configured (kombu keeps one
    pool per broker address)."""
    app._pool = None
    app.amqp._producer_pool = None


def customers(count: int) -> None:
    plan = PlanFactory()
    for _ in range(count):
        SubscriptionFactory(plan=plan, customer=CustomerFactory(delivery_method="paper"))


def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.02)


def a_chunk_is_half_issued() -> bool:
    return BillRunChunk.objects.filter(status="pending", started_at__isnull=False).exists() and (
        Invoice.objects.exists()
    )


def assert_whole(run: BillRun) -> None:
    run.refresh_from_db()
    assert run.status == "completed", run.error
    assert Invoice.objects.count() == CUSTOMERS
    assert Invoice.objects.values("customer_id").distinct().count() == CUSTOMERS
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == list(range(numbers[0], numbers[0] + CUSTOMERS))
    assert InvoiceSeries.objects.get(code="F").next_number == numbers[-1] + 1


def start(settings) -> BillRun:
    customers(CUSTOMERS)
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    return bill_run_dispatch(bill_run_id=run.id, customers_per_task=300)


def test_pool_processes_killed_mid_chunk_lose_nothing(broker: str, settings) -> None:
    run = start(settings)
    worker = Worker(broker)
    try:
        wait_for(a_chunk_is_half_issued, timeout=60)
        worker.kill_pool()  # SIGKILL of both pool processes, mid-transaction
        run = bill_run_wait(bill_run_id=run.id, timeout=120)
    finally:
        worker.stop()
    assert_whole(run)
    assert BillRunChunk.objects.filter(attempts__gte=2).exists()  # a chunk ran again


def test_a_whole_worker_killed_mid_chunk_loses_nothing(broker: str, settings) -> None:
    run = start(settings)
    first = Worker(broker)
    try:
        wait_for(a_chunk_is_half_issued, timeout=60)
        first.kill_all()  # SIGKILL of the worker and its pool: the broker keeps the tasks
    finally:
        first.stop()
    issued_before = Invoice.objects.count()
    assert issued_before < CUSTOMERS
    second = Worker(broker)
    try:
        run = bill_run_wait(bill_run_id=run.id, timeout=120)
    finally:
        second.stop()
    assert_whole(run)
    assert BillRunChunk.objects.filter(attempts__gte=2).exists()
