"""Usage ingestion on PostgreSQL: a CSV file and JSON batches, against raw COPY of the same rows
into the same table in the same run.

    python bench/ingest.py [--records 1000000] [--runs 3] [--batch 10000]

DATABASE_URL (default postgres://postgres@127.0.0.1:5432/touchpoint_bench_ingest) names a
database this script owns: created if missing, migrated, its billing tables emptied. Loaded
(COPY, not timed): one customer and plan, and a subscription per mobile number, enough for a
month of daily usage (data, calls and SMS each day: 90 records a number); 2 % of the numbers
belonged to an earlier, ended subscription too, so resolving a number goes by the record's
day. The records, generated in memory in the order of a day's files: named by identifier
(MSISDN) as mediation sends them, 10 % in the EU/EEA and 5 % outside.

Timed, on an empty usage table each time (TRUNCATE, then CHECKPOINT, before each):
- the baseline: COPY of the same rows, subscription ids already resolved, into
  billing_usagerecord (its indexes and foreign key as in production), from the server's
  text format: the speed of PostgreSQL itself. Measured before and after each run, and the
  run compared with the rate of the two together: on a shared machine the load moves within
  minutes;
- CSV: ``billing.usage_ingest.usage_csv_ingest`` on the file (COPY into staging, checks and
  subscriptions in SQL, one merge);
- JSON: the real endpoint ``POST /api/v1/usage/records/`` through Django's test client (the
  whole middleware, authentication by API key, the JSON parser, the view, the service), in
  batches of 10,000, each with an Idempotency-Key; the request bodies are encoded before the
  clock starts (a source system's cost, not Touchpoint's).
Goals: CSV at least 50 % of COPY's records/s; JSON at least 20,000 records/s. The last line
gives the best run of each (the least disturbed by other work on the machine).
"""

import argparse
import io
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial

from _common import django_setup, machine, postgres_url

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/touchpoint_bench_ingest"
GOAL_CSV_SHARE = 0.5
GOAL_JSON_PER_SECOND = 20_000
KINDS = (("data", "MB"), ("voice", "s"), ("sms", "sms"))
DAYS = 30  # November 2026
USAGE_COLUMNS = ["source_id", "subscription_id", "kind", "quantity", "occurred_at", "country"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="each run times all three")
    parser.add_argument("--batch", type=int, default=10_000, help="records per JSON request")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    url, database = postgres_url(DEFAULT_URL)
    django_setup({"DATABASE_URL": url, "CELERY_BROKER_URL": "memory://", "LOG_LEVEL": "WARNING"})
    warnings.filterwarnings("ignore", message="No directory at")  # static files: not served here
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    print(f"Usage ingestion benchmark · {machine()}")
    print(f"PostgreSQL {version}, database {database!r}; load average {load()}")

    started = time.monotonic()
    numbers = (args.records + 89) // 90
    ids = load_subscriptions(numbers)
    records = generate(ids, args.records)
    print(f"Loaded {numbers:,} numbers ({(numbers + 49) // 50:,} with an earlier subscription); "
          f"{len(records):,} records generated in {time.monotonic() - started:.1f} s")  # fmt: skip

    copy_text = "".join(
        f"{r['source_id']}\t{r['sub']}\t{r['kind']}\t{r['quantity']}\t{r['occurred_at']}\t"
        f"{r['country']}\n"
        for r in records
    )
    csv_path = write_csv(records)
    batches = [
        json.dumps({"records": [public(r) for r in records[i : i + args.batch]]})
        for i in range(0, len(records), args.batch)
    ]
    del records
    print(f"CSV file {os.path.getsize(csv_path) / 1e6:.0f} MB; {len(batches)} JSON bodies of "
          f"{args.batch:,} records, {sum(map(len, batches)) / 1e6:.0f} MB")  # fmt: skip
    client, key = api_client()

    print()
    print("| run | COPY before / after, rec/s | CSV rec/s | CSV ÷ COPY | JSON rec/s | load |")
    print("| ---: | ---: | ---: | ---: | ---: | --- |")
    n = args.records
    copies, csvs, jsons = [], [], []
    copy_seconds = timed(lambda: copy_baseline(copy_text), n)
    for run in range(1, args.runs + 1):
        before = copy_seconds
        csv_seconds = timed(lambda: csv_ingest(csv_path), n)
        json_seconds = timed(partial(json_ingest, client, key, batches, run), n)
        copy_seconds = timed(lambda: copy_baseline(copy_text), n)
        # COPY's rate around the run: the load of a shared machine moves within minutes
        copy_rate = 2 * n / (before + copy_seconds)
        copies.append(copy_rate)
        csvs.append(n / csv_seconds)
        jsons.append(n / json_seconds)
        print(
            f"| {run} | {n / before:,.0f} / {n / copy_seconds:,.0f} | **{csvs[-1]:,.0f}** | "
            f"{csvs[-1] / copy_rate:.0%} | **{jsons[-1]:,.0f}** | {load()} |",
            flush=True,
        )
    print()
    best_copy, best_csv, best_json = max(copies), max(csvs), max(jsons)
    print(
        f"Best of {args.runs}: COPY {best_copy:,.0f} records/s, CSV {best_csv:,.0f} "
        f"({best_csv / best_copy:.0%} of COPY; goal ≥ {GOAL_CSV_SHARE:.0%}: "
        f"{'met' if best_csv / best_copy >= GOAL_CSV_SHARE else 'NOT met'}), JSON "
        f"{best_json:,.0f} records/s (goal ≥ {GOAL_JSON_PER_SECOND:,}: "
        f"{'met' if best_json >= GOAL_JSON_PER_SECOND else 'NOT met'}; "
        f"{best_json / best_copy:.0%} of COPY)"
    )
    os.unlink(csv_path)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def load_subscriptions(numbers: int) -> list[tuple[int, str]]:
    """One subscription per number, active all November; every 50th number had an ended
    subscription before. (subscription id, identifier) of the active ones, then the ended."""
    from decimal import Decimal

    from django.apps import apps
    from django.db import connection

    from billing.models import Customer, Plan

    tables = ", ".join(m._meta.db_table for m in apps.get_app_config("billing").get_models())
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    plan = Plan.objects.create(code="mobil-bench", name="Mobil", monthly_fee=Decimal("299.00"))
    customer = Customer.objects.create(customer_number="C-BENCH", name="Bench")
    rows = io.StringIO()
    active: list[tuple[int, str]] = []
    sid = 0
    for n in range(numbers):
        identifier = f"4670{n:07d}"
        if n % 50 == 0:
            sid += 1
            rows.write(f"{sid}\t{customer.id}\t{plan.id}\t{identifier}\t\t299.00\t2024-01-01\t"
                       "2026-06-30\t1\tended\n")  # fmt: skip
        sid += 1
        rows.write(f"{sid}\t{customer.id}\t{plan.id}\t{identifier}\t\t299.00\t2026-07-01\t"
                   "\\N\t1\tactive\n")  # fmt: skip
        active.append((sid, identifier))
    columns = ["id", "customer_id", "plan_id", "identifier", "label", "agreed_monthly_price",
               "start_date", "end_date", "notice_period_months", "status"]  # fmt: skip
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            f"COPY billing_subscription ({', '.join(columns)}) FROM STDIN"
        ) as copy:
            copy.write(rows.getvalue())
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('billing_subscription', 'id'), %s)", [sid]
        )
        cursor.execute("VACUUM ANALYZE billing_subscription")
    return active


def generate(subscriptions: list[tuple[int, str]], count: int) -> list[dict[str, str]]:
    """A month of daily usage, a day's records together, until ``count``."""
    records: list[dict[str, str]] = []
    for day in range(1, DAYS + 1):
        for sid, identifier in subscriptions:
            abroad = sid % 20
            country = "US" if abroad == 0 else "DE" if abroad in (1, 2) else ""
            for k, (kind, _) in enumerate(KINDS):
                records.append(
                    {
                        "source_id": f"med-202611{day:02d}-{identifier}-{kind}",
                        "sub": str(sid),
                        "identifier": identifier,
                        "kind": kind,
                        "quantity": f"{(sid * 7 + day * 13 + k) % 5000}.{sid % 1000:03d}",
                        "occurred_at": f"2026-11-{day:02d}T12:00:00+01:00",
                        "country": country,
                    }
                )
                if len(records) == count:
                    return records
    return records


def public(record: dict[str, str]) -> dict[str, str]:
    """The record as a source sends it: by identifier, not by Touchpoint's id."""
    return {name: value for name, value in record.items() if name != "sub"}


def write_csv(records: list[dict[str, str]]) -> str:
    handle, path = tempfile.mkstemp(suffix=".csv")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write("source_id,identifier,kind,quantity,occurred_at,country\n")
        for r in records:
            out.write(f"{r['source_id']},{r['identifier']},{r['kind']},{r['quantity']},"
                      f"{r['occurred_at']},{r['country']}\n")  # fmt: skip
    return path


def api_client() -> tuple[object, str]:
    from django.test import Client

    from core.api_keys import api_key_create
    from core.models import ApiKey, IdempotentRequest

    for old in ApiKey.objects.filter(name="Bench mediation"):  # from an earlier run
        IdempotentRequest.objects.all().delete()
        old.delete()
        old.user.delete()
    made = api_key_create(name="Bench mediation", scopes=["usage:write"], rate_per_minute=100_000)
    return Client(), made.secret


def empty_usage() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE billing_usagerecord RESTART IDENTITY")
        cursor.execute("CHECKPOINT")


def timed(work: Callable[[], None], expected: int) -> float:
    """Seconds ``work`` took on an empty usage table; it must have stored ``expected``."""
    from billing.models import UsageRecord

    empty_usage()
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    stored = UsageRecord.objects.count()
    if stored != expected:
        sys.exit(f"stored {stored:,} records of {expected:,}")
    return seconds


def copy_baseline(text: str) -> None:
    from django.db import connection, transaction

    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(
            f"COPY billing_usagerecord ({', '.join(USAGE_COLUMNS)}) FROM STDIN"
        ) as copy,
    ):
        copy.write(text)


def csv_ingest(path: str) -> None:
    from billing.usage_ingest import usage_csv_ingest

    with open(path, "rb") as stream:
        result = usage_csv_ingest(stream=stream)
    if result.rejected:
        sys.exit(f"CSV: {result.rejected:,} rejected, e.g. {result.rejections[:3]}")


def json_ingest(client: object, key: str, batches: list[str], run: int) -> None:
    for number, body in enumerate(batches):
        answer = client.post(  # type: ignore[attr-defined]
            "/api/v1/usage/records/",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
            HTTP_IDEMPOTENCY_KEY=f"bench-{run}-{number}",
        )
        if answer.status_code != 200 or answer.json()["rejected"]:
            sys.exit(f"JSON batch {number}: {answer.status_code} {answer.content[:500]!r}")


if __name__ == "__main__":
    main()
