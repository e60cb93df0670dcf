"""Bill-run throughput on PostgreSQL, against PostgreSQL COPY of the same rows in the same run.

    python bench/bill_run.py [--customers 10000] [--profile]
    python bench/bill_run.py --customers 100000 --workers 1,2,4

With ``--workers``, the run is sent to real Celery workers instead (``bill_run_dispatch``, one
task per ``BILL_RUN_TASK_CUSTOMERS`` customers), once per figure: ``celery worker
--concurrency N`` on a Redis queue of the bill run's own (REDIS_URL, default
redis://127.0.0.1:6379/15), so delivery tasks are enqueued but not worked; timed from the
dispatch until the database says the run is complete, and extrapolated to a million invoices.

DATABASE_URL (default postgres://postgres@127.0.0.1:5432/touchpoint_bench) names a database
this script owns: it is created if missing, migrated, and its billing and invoices tables
are emptied on every run. The data (customers, subscriptions, a month of daily usage) is
loaded with COPY, not the ORM. Then the real service runs, ``bill_run_start`` +
``bill_run_execute``, timed; Celery is not eager, so the delivery and PDF tasks are only
enqueued (on an in-memory broker), as in production where workers deliver.

The baseline: the same number of rows shaped like the run's invoice lines, written with COPY
into an UNLOGGED table with the same columns, from Python tuples (as the service's COPY
path sends them) and from the server's own text dump (the ceiling).
"""

import argparse
import calendar
import cProfile
import importlib
import io
import logging
import pstats
import random
import sys
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime

from _common import DEFAULT_PG_URL, ROOT, copy_text, django_setup, machine, postgres_url, rate

GOAL_INVOICES_PER_SECOND = 1000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile the run, top 25")
    parser.add_argument(
        "--workers", default="", help="comma-separated worker counts, e.g. 1,2,4 (Celery)"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.workers:
        return main_workers(args)
    url, database = postgres_url(DEFAULT_PG_URL)
    # Before settings load: not eager, in-memory broker, so tasks are enqueued, not run.
    django_setup(
        {
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": "memory://",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "LOG_LEVEL": "WARNING",
        }
    )
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from billing.demo import add_months

    if settings.CELERY_TASK_ALWAYS_EAGER:
        sys.exit("Celery must not be eager here: the bench times issuing, not delivery")
    logging.getLogger("kombu").setLevel(logging.ERROR)  # the memory broker has no hostname
    period = add_months(timezone.localdate().replace(day=1), -1)
    print(f"Bill run benchmark · {machine()}")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    print(f"PostgreSQL {version}, database {database!r}; period {period:%Y-%m}")

    started = time.monotonic()
    database_reset()
    loaded = load(args.customers, period, random.Random(args.seed))
    load_seconds = time.monotonic() - started
    print(
        f"Loaded with COPY in {load_seconds:.1f} s: {loaded['customers']:,} customers, "
        f"{loaded['subscriptions']:,} subscriptions, {loaded['usage']:,} usage records "
        f"({rate(loaded['usage'], loaded['usage_seconds'])} rows/s), "
        f"{loaded['discounts']:,} discounts, {loaded['one_offs']:,} one-off charges"
    )

    run, seconds, profiler = timed_bill_run(period, args.profile)
    invoices, lines = run.invoices_issued, run.lines_issued
    copy_rows_s, raw_rows_s = copy_baseline()
    line_rate = lines / seconds
    invoice_rate = invoices / seconds
    verdict = "met" if invoice_rate >= GOAL_INVOICES_PER_SECOND else "NOT met"
    print()
    print(f"Bill run {run} ({run.status}): bill_run_start + bill_run_execute, chunks of ", end="")
    print(f"{settings.BILL_RUN_CHUNK_SIZE}")
    print(
        "  delivery and PDF tasks enqueued only (CELERY_TASK_ALWAYS_EAGER=False, memory:// "
        "broker): production delivers from Celery workers"
    )
    print(f"  {invoices:,} invoices, {lines:,} lines, {run.total_amount:,} kr in {seconds:.2f} s")
    print(
        f"  {invoice_rate:,.0f} invoices/s (goal ≥ {GOAL_INVOICES_PER_SECOND:,}: {verdict}), "
        f"{line_rate:,.0f} lines/s" + (" [under cProfile: slower than without]" if profiler else "")
    )
    print(f"Baseline, same run: COPY of {lines:,} invoice-line-shaped rows, UNLOGGED table")
    print(f"  from Python tuples (psycopg write_row): {copy_rows_s:,.0f} rows/s")
    print(f"  server text dump (COPY ... FROM STDIN of COPY TO output): {raw_rows_s:,.0f} rows/s")
    print(
        f"Ratio: bill-run lines/s ÷ COPY rows/s = {line_rate / copy_rows_s:.1%} "
        f"(÷ raw COPY: {line_rate / raw_rows_s:.1%})"
    )
    if profiler:
        print("\nWhere the time goes (cProfile, cumulative, top 25):")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(25)
        print("Own time (tottime, top 25):")
        stats.sort_stats("tottime").print_stats(25)


# --- with Celery workers -------------------------------------------------------------------

GOAL_MILLION_SECONDS = 600  # a million invoices in under 10 minutes with 2 workers
QUEUE = "bench_bill_runs"


def main_workers(args: argparse.Namespace) -> None:
    import os
    import signal
    import subprocess

    counts = [int(n) for n in args.workers.split(",")]
    url, database = postgres_url(DEFAULT_PG_URL)
    broker = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    env = {
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "BILL_RUN_QUEUE": QUEUE,
        "LOG_LEVEL": "WARNING",
    }
    django_setup(env)
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from billing.demo import add_months
    from config.celery import app
    from invoices.services.bill_run import bill_run_start
    from invoices.services.bill_run_workers import bill_run_dispatch, bill_run_wait

    period = add_months(timezone.localdate().replace(day=1), -1)
    print(f"Bill run on Celery workers · {machine()}")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        print(f"PostgreSQL {cursor.fetchone()[0]}, database {database!r}; broker {broker}")
    started = time.monotonic()
    database_reset()
    loaded = load(args.customers, period, random.Random(args.seed))
    print(
        f"Loaded with COPY in {time.monotonic() - started:.1f} s: {loaded['customers']:,} "
        f"customers, {loaded['subscriptions']:,} subscriptions, {loaded['usage']:,} usage records"
    )
    print(
        f"Tasks of {settings.BILL_RUN_TASK_CUSTOMERS:,} customers, transactions of "
        f"{settings.BILL_RUN_CHUNK_SIZE}; timed from the dispatch to the database saying complete"
    )
    results = []
    for count in counts:
        invoices_reset()
        with app.connection_for_write() as conn:
            conn.default_channel.client.flushdb()
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                QUEUE,
                f"--concurrency={count}",
                "--pool=prefork",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=WARNING",
            ],
            cwd=ROOT,
            env={**os.environ, **env, "DB_CONN_MAX_AGE": "600"},
            start_new_session=True,
        )
        try:
            while not app.control.ping(timeout=0.5):
                time.sleep(0.5)
            time.sleep(1)  # the pool processes are up
            begun = time.perf_counter()
            run = bill_run_start(period=period, invoice_date=add_months(period, 1))
            run = bill_run_dispatch(bill_run_id=run.id)
            run = bill_run_wait(bill_run_id=run.id, timeout=3600, poll=0.25)
            seconds = time.perf_counter() - begun
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
        results.append((count, run, seconds))
        per_second = run.invoices_issued / seconds
        print(
            f"  {count} worker(s): {run.invoices_issued:,} invoices ({run.status}) in "
            f"{seconds:.1f} s = {per_second:,.0f} invoices/s; a million: "
            f"{1_000_000 / per_second / 60:.1f} min (extrapolated); load average at the end "
            f"{os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[1]:.1f} (5 min)"
        )
    copy_rows_s, raw_rows_s = copy_baseline()
    print("Baseline, same run: COPY of the last run's lines into an UNLOGGED table")
    print(f"  from Python tuples: {copy_rows_s:,.0f} rows/s; server text dump: ", end="")
    print(f"{raw_rows_s:,.0f} rows/s")
    for count, run, seconds in results:
        if count == 2:
            million = 1_000_000 / (run.invoices_issued / seconds)
            verdict = "met" if million < GOAL_MILLION_SECONDS else "NOT met"
            print(
                f"Goal: a million invoices in under 10 min with 2 workers: {million / 60:.1f} min "
                f"extrapolated from {run.invoices_issued:,} measured ({verdict})"
            )


def invoices_reset() -> None:
    """Empty what a bill run wrote (invoices, lines, roll-ups, runs), keep the loaded data."""
    from django.apps import apps
    from django.db import connection

    from billing.models import BillRun, BillRunChunk, UsageMonth
    from invoices.models import Invoice, InvoiceLine, InvoiceSeries

    tables = [m._meta.db_table for m in (InvoiceLine, Invoice, UsageMonth, BillRunChunk, BillRun)]
    tables += [
        model._meta.db_table
        for model in apps.get_app_config("invoices").get_models()
        if model not in (InvoiceSeries,)
    ]
    quoted = ", ".join(dict.fromkeys(connection.ops.quote_name(t) for t in tables))
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
        cursor.execute("UPDATE invoices_invoiceseries SET next_number = 1")
        cursor.execute("VACUUM ANALYZE")


# --- the database ------------------------------------------------------------------------


def database_reset() -> None:
    """Migrate, then empty every table of the billing and invoices apps (and what refers
    to them), and put back the invoice number series the data migration creates."""
    from django.apps import apps
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    tables = [
        model._meta.db_table
        for label in ("billing", "invoices")
        for model in apps.get_app_config(label).get_models()
    ]
    quoted = ", ".join(connection.ops.quote_name(t) for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
    importlib.import_module("invoices.migrations.0002_invoice_series").create_series(apps, None)


def set_sequence(table: str, last_id: int) -> None:
    from django.db import connection

    if last_id:
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, last_id])


def load(customers: int, period: date, rng: random.Random) -> dict[str, float]:
    """Customers, subscriptions, discounts, one-off charges and a month of daily usage."""
    from django.db import connection, transaction

    from billing.demo import (
        CITIES,
        ENGLISH_FIRST,
        ENGLISH_LAST,
        FEMALE,
        MALE,
        PLAN_SPECS,
        STOCKHOLM,
        STREETS,
        SURNAMES,
        catalogue_ensure,
    )

    plans = catalogue_ensure()
    days = calendar.monthrange(period.year, period.month)[1]
    counts: dict[str, float] = {}
    now = "2026-01-01 00:00:00+00"
    with transaction.atomic():
        # Customers
        buf = io.StringIO()
        for cid in range(1, customers + 1):
            english = rng.random() < 0.07
            first = rng.choice(ENGLISH_FIRST if english else rng.choice((FEMALE, MALE)))
            last = rng.choice(ENGLISH_LAST if english else SURNAMES)
            city, prefix, _w = rng.choice(CITIES)
            delivery = rng.choices(
                ("email", "sms", "email_sms", "email_pdf", "paper"), (72, 16, 4, 5, 3)
            )[0]
            buf.write(
                f"{cid}\tB{cid:08d}\t{first} {last}\tb{cid}@example.com\t+4670{cid:07d}\t"
                f"{'en' if english else 'sv'}\t{rng.choice(STREETS)} {rng.randint(1, 80)}\t"
                f"{prefix}{rng.randint(0, 9)} {rng.randint(10, 99)}\t{city}\t{delivery}\t"
                f"default\t{now}\n"
            )
        copy_text(
            "billing_customer",
            [
                "id",
                "customer_number",
                "name",
                "email",
                "phone",
                "language",
                "address",
                "postal_code",
                "city",
                "delivery_method",
                "billing_group",
                "created_at",
            ],
            buf,
        )
        set_sequence("billing_customer", customers)
        counts["customers"] = customers

        # Subscriptions: 1–3 lines a customer (about 1.4 on average)
        mobile = ["mobil-3", "mobil-10", "mobil-30", "mobil-obegransad", "mobil-8-2023"]
        broadband = ["bredband-100", "bredband-250", "bredband-1000"]
        subs: list[tuple[int, str, str]] = []  # (id, plan code, profile)
        buf = io.StringIO()
        discounts = io.StringIO()
        one_offs = io.StringIO()
        sid = did = oid = 0
        period_end = period + timedelta(days=days - 1)
        for cid in range(1, customers + 1):
            r = rng.random()
            codes = [rng.choices(mobile, (20, 35, 22, 15, 8))[0]]
            if r < 0.2:
                codes.append(rng.choice(broadband))
            elif r < 0.3:
                codes.append(rng.choice(mobile))
            elif r < 0.33:
                codes += [rng.choice(mobile), rng.choice(mobile)]
            for code in codes:
                sid += 1
                spec = PLAN_SPECS[code]
                start = date(2024, 1, 1) + timedelta(days=rng.randint(0, 700))
                binding = start + timedelta(days=730) if rng.random() < 0.6 else None
                profile = (
                    "broadband"
                    if code in broadband
                    else rng.choices(("light", "normal", "heavy"), (25, 60, 15))[0]
                )
                agreed = max(spec.price_on(start), spec.list_price)
                buf.write(
                    f"{sid}\t{cid}\t{plans[code].id}\t+4673{sid:07d}\t\t{agreed}\t{start}\t\\N\t"
                    f"{binding or '\\N'}\t1\tactive\n"
                )
                subs.append((sid, code, profile))
                if rng.random() < 0.1:
                    did += 1
                    discounts.write(
                        f"{did}\t{sid}\tKampanj: 100 kr rabatt i 6 månader\t100.00\t"
                        f"{period - timedelta(days=60)}\t{period + timedelta(days=120)}\n"
                    )
                if rng.random() < 0.01:
                    oid += 1
                    one_offs.write(f"{oid}\t{sid}\tNytt SIM-kort\t99.00\t0.25\t{period_end}\n")
        copy_text(
            "billing_subscription",
            [
                "id",
                "customer_id",
                "plan_id",
                "identifier",
                "label",
                "agreed_monthly_price",
                "start_date",
                "end_date",
                "binding_end",
                "notice_period_months",
                "status",
            ],
            buf,
        )
        copy_text(
            "billing_discount",
            ["id", "subscription_id", "description", "monthly_amount", "valid_from", "valid_until"],
            discounts,
        )
        copy_text(
            "billing_oneoffcharge",
            ["id", "subscription_id", "description", "amount", "vat_rate", "charge_date"],
            one_offs,
        )
        for table, last_id in (
            ("billing_subscription", sid),
            ("billing_discount", did),
            ("billing_oneoffcharge", oid),
        ):
            set_sequence(table, last_id)
        counts.update(subscriptions=sid, discounts=did, one_offs=oid)

        # Usage: one row per line, kind and day at noon Stockholm time (10:00 UTC in CEST,
        # 11:00 UTC in CET: the offset is taken from the zone for each day).
        noons = []
        for d in range(days):
            day = period + timedelta(days=d)
            noon = datetime.combine(day, dtime(12), tzinfo=STOCKHOLM)
            noons.append((day.strftime("%Y%m%d"), noon.isoformat(sep=" ")))
        usage_started = time.monotonic()
        rows = 0
        uid = 0
        buf = io.StringIO()
        columns = [
            "id",
            "subscription_id",
            "source_id",
            "kind",
            "quantity",
            "occurred_at",
            "country",
        ]
        for sub_id, code, profile in subs:
            spec = PLAN_SPECS[code]
            if profile == "broadband":
                month_gb = rng.uniform(150, 900)
            elif profile == "light":
                month_gb = rng.uniform(0.5, 3)
            elif spec.data_gb is None:
                month_gb = rng.uniform(5, 60 if profile == "heavy" else 25)
            elif profile == "heavy":
                month_gb = float(spec.data_gb) + rng.uniform(1, 8)
            else:
                month_gb = float(spec.data_gb) * rng.uniform(0.3, 0.95)
            daily_mb = month_gb * 1024 / days
            voice_s = rng.uniform(600, 30_000) / days
            trip: tuple[int, int, str] | None = None
            if profile != "broadband":
                t = rng.random()
                if t < 0.05:
                    first = rng.randint(0, days - 6)
                    trip = (first, first + 5, rng.choice(("US", "GB", "TR", "TH", "CH")))
                elif t < 0.2:
                    first = rng.randint(0, days - 8)
                    trip = (first, first + 7, rng.choice(("ES", "IT", "GR", "DE")))
            for d, (stamp, noon) in enumerate(noons):
                country = trip[2] if trip and trip[0] <= d <= trip[1] else ""
                uid += 1
                buf.write(
                    f"{uid}\t{sub_id}\tb{sub_id}:{stamp}:d\tdata\t"
                    f"{daily_mb * (0.4 + rng.random() * 1.2):.1f}\t{noon}\t{country}\n"
                )
                if profile == "broadband":
                    continue
                r = rng.random()
                if r < 0.8:
                    uid += 1
                    buf.write(
                        f"{uid}\t{sub_id}\tb{sub_id}:{stamp}:v\tvoice\t"
                        f"{int(voice_s * r * 2.5)}\t{noon}\t{country}\n"
                    )
                if r < 0.6:
                    uid += 1
                    buf.write(
                        f"{uid}\t{sub_id}\tb{sub_id}:{stamp}:s\tsms\t{1 + int(r * 8)}\t"
                        f"{noon}\t{country}\n"
                    )
            if buf.tell() > 8_000_000:
                copy_text("billing_usagerecord", columns, buf)
                buf = io.StringIO()
        copy_text("billing_usagerecord", columns, buf)
        set_sequence("billing_usagerecord", uid)
        rows = uid
        counts["usage"] = rows
        counts["usage_seconds"] = time.monotonic() - usage_started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return counts


# --- the timed run -----------------------------------------------------------------------


def timed_bill_run(period: date, profile: bool) -> tuple[object, float, cProfile.Profile | None]:
    from billing.demo import add_months
    from invoices.services.bill_run import bill_run_execute, bill_run_start

    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    run = bill_run_start(period=period, invoice_date=add_months(period, 1))
    run = bill_run_execute(bill_run_id=run.id)
    if profiler:
        profiler.disable()
    return run, time.perf_counter() - started, profiler


def copy_baseline() -> tuple[float, float]:
    """COPY rows/s for the run's own invoice lines into an UNLOGGED copy of the table."""
    from django.db import connection
    from psycopg.types.json import Jsonb

    from invoices.models import InvoiceLine

    fields = list(InvoiceLine._meta.concrete_fields)
    columns = ", ".join(f.column for f in fields)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        raw.execute("DROP TABLE IF EXISTS bench_invoiceline_copy")
        raw.execute(
            "CREATE UNLOGGED TABLE bench_invoiceline_copy "
            "(LIKE invoices_invoiceline INCLUDING DEFAULTS)"
        )
        raw.execute(f"SELECT {columns} FROM invoices_invoiceline")
        texts_at = [f.column for f in fields].index("texts")
        rows = [
            tuple(Jsonb(v) if i == texts_at else v for i, v in enumerate(row))
            for row in raw.fetchall()
        ]
        dump = bytearray()
        with raw.copy(f"COPY invoices_invoiceline ({columns}) TO STDOUT") as copy:
            for block in copy:
                dump += block

        started = time.perf_counter()
        with raw.copy(f"COPY bench_invoiceline_copy ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        python_seconds = time.perf_counter() - started

        raw.execute("TRUNCATE bench_invoiceline_copy")
        started = time.perf_counter()
        with raw.copy(f"COPY bench_invoiceline_copy ({columns}) FROM STDIN") as copy:
            copy.write(bytes(dump))
        raw_seconds = time.perf_counter() - started
        raw.execute("DROP TABLE bench_invoiceline_copy")
    return len(rows) / python_seconds, len(rows) / raw_seconds


if __name__ == "__main__":
    main()
