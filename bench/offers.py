"""Offer recommendations on PostgreSQL, against one SQL aggregate of the same usage rows.

    python bench/offers.py [--subscriptions 100000] [--usage monthly|daily] [--reuse]
                           [--phases] [--profile] [--cold]
    python bench/offers.py --subscriptions 10000          # a quick run

DATABASE_URL (default postgres://postgres@127.0.0.1:5432/touchpoint_bench_offers) names a
database this script owns: it is created if missing, migrated, and its billing, invoices and
offers tables are emptied on every run (``--reuse`` keeps the loaded data and only empties
the offers). Loaded with COPY, not the ORM: the demo catalogue, customers (1–3 lines each),
subscriptions (60 % with a binding period, lines that started before a price cut paying the
old price), consents to personalised offers (70 % of customers) and six complete months of
usage per line before today, as one aggregate per line, kind and month (``--usage monthly``,
the default) or per line, kind and day as mediation delivers it (``--usage daily``), dated at
noon Stockholm time. 15 % of mobile lines roam in the EU/EEA one month (priced as at home,
kept by the engine's query) and 5 % outside it (left out by the query). Then, as set-up timed
and printed on its own, the usage roll-up (``billing.models.UsageMonth``) that the bill runs
of the six months would have written: one row per line and month, from one INSERT … SELECT …
GROUP BY over the usage rows. Then VACUUM ANALYZE, as autovacuum would have left tables
written weeks before the offers run (this server may have it turned off): without it the
first statement to read a freshly loaded row also sets its hint bits and writes the page
back, a cost of loading, not of the offers; ``--cold`` leaves it out to show that cost.

Timed: ``offers.services.offers_generate`` over every customer in batches, as
``manage.py generate_offers`` calls it, twice: first on empty offer tables (every customer is
assigned a group), then again after VACUUM ANALYZE of the offer tables, as autovacuum would
have left them a month later (every open offer is superseded, as the monthly run does).
The service reads usage only for customers who consented (70 % here). ``--phases`` adds a
third run with a timer around each step; ``--profile`` runs the first under cProfile.

The baseline, same run: one SQL aggregate of the same usage rows, SUM(quantity) GROUP BY
subscription, month (in Stockholm time) and kind, at home and in the EU/EEA, over all
subscriptions in one statement, rows fetched by psycopg and nothing else: the statement
``monthly_usage`` ran before it was reshaped for speed. Next to it, the raw aggregate the
service falls back on for months without a roll-up row (``monthly_usage_queryset``: the
three kinds side by side per subscription and month, integers only), and the read of the
roll-up alone (``rolled_up_months_queryset``, what the service sends when every month of the
window is billed), each over all subscriptions, and as the run sends it, per batch, for the
consenting customers' subscriptions.
"""

import argparse
import cProfile
import io
import logging
import os
import pstats
import random
import sys
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

from _common import ROOT, copy_text, django_setup, machine, postgres_url, rate

# This script is bench/offers.py and the app is the package ``offers``: take bench/ off the
# path (the script's own directory comes first) so that ``import offers`` finds the app, and
# work from the repository, since Celery puts the working directory on the path as well.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != _BENCH]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/touchpoint_bench_offers"
GOAL_SUBSCRIPTIONS_PER_SECOND = 5000
CONSENT_SHARE = 0.7


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--usage", choices=("monthly", "daily"), default="monthly")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--reuse", action="store_true", help="keep the loaded data")
    parser.add_argument("--profile", action="store_true", help="cProfile the first run")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="ANALYZE only after loading, no VACUUM: the first run reads rows just written",
    )
    parser.add_argument(
        "--phases", action="store_true", help="one more run, timing each step of the service"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    url, database = postgres_url(DEFAULT_URL)
    django_setup(
        {
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": "memory://",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "LOG_LEVEL": "WARNING",
        }
    )
    from django.db import connection
    from django.utils import timezone

    from offers.management.commands.generate_offers import BATCH
    from offers.services import usage_window

    logging.getLogger("kombu").setLevel(logging.ERROR)
    today = timezone.localdate()
    start, end = usage_window(today)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.execute("SHOW autovacuum")
        autovacuum = cursor.fetchone()[0]
        cursor.execute("SHOW work_mem")
        work_mem = cursor.fetchone()[0]
    print(f"Offers benchmark · {machine()}")
    print(
        f"PostgreSQL {version} (autovacuum {autovacuum}, work_mem {work_mem}), database "
        f"{database!r}; today {today}, usage window {start} – {end - timedelta(days=1)}"
    )

    if args.reuse:
        loaded = existing_counts()
        print(
            f"Reusing the loaded data: {loaded['customers']:,} customers, "
            f"{loaded['subscriptions']:,} subscriptions, {loaded['usage']:,} usage rows, "
            f"{loaded['usage_months']:,} roll-up rows"
        )
        if not loaded["usage_months"]:  # loaded before the roll-up existed
            rolled_up, seconds = roll_up_write(today)
            print(
                f"Set-up, not timed: the bill runs' roll-up, {rolled_up:,} rows in {seconds:.1f} s"
            )
    else:
        started = time.monotonic()
        database_reset()
        loaded = load(args.subscriptions, args.usage, today, random.Random(args.seed), args.cold)
        print(
            f"Loaded with COPY in {time.monotonic() - started:.1f} s: "
            f"{loaded['customers']:,} customers, {loaded['subscriptions']:,} subscriptions, "
            f"{loaded['consents']:,} consents, {loaded['usage']:,} usage rows ({args.usage} "
            f"aggregates; {rate(loaded['usage'], loaded['usage_seconds'])} rows/s), "
            f"{'ANALYZE' if args.cold else 'VACUUM ANALYZE'} "
            f"{loaded['analyze_seconds']:.1f} s"
        )
        print(
            f"Set-up, not timed: the roll-up the bill runs of the six months would have written, "
            f"{loaded['usage_months']:,} rows (one INSERT … SELECT … GROUP BY) in "
            f"{loaded['roll_up_seconds']:.1f} s"
        )
    offers_reset()
    customer_ids = customer_ids_all()
    subscriptions = active_subscriptions(today)

    first, profiler = timed_generate(customer_ids, today, BATCH, args.profile)
    # The monthly runs are a month apart, time enough for autovacuum to have analysed and
    # vacuumed the offers written by the last one; this server may have it turned off.
    vacuum_offers()
    again, _ = timed_generate(customer_ids, today, BATCH, False)
    if args.phases:
        vacuum_offers()
    phases = timed_phases(customer_ids, today, BATCH) if args.phases else None
    base = baselines(customer_ids, today, BATCH)
    report_seconds = report_timing(today)

    baseline_seconds, baseline_rows = base["baseline"]
    print()
    print(f"offers_generate over {len(customer_ids):,} customers in batches of {BATCH:,} "
          f"({subscriptions:,} active subscriptions)")  # fmt: skip
    for label, (seconds, written) in (("first run", first), ("again (supersedes)", again)):
        sub_rate = subscriptions / seconds
        verdict = "met" if sub_rate >= GOAL_SUBSCRIPTIONS_PER_SECOND else "NOT met"
        print(
            f"  {label:<19} {seconds:6.2f} s  {sub_rate:8,.0f} subscriptions/s "
            f"(goal ≥ {GOAL_SUBSCRIPTIONS_PER_SECOND:,}: {verdict}); {written:,} open offers"
            + (" [under cProfile]" if profiler and label == "first run" else "")
        )
    print("Baseline, same run: one SQL aggregate of the same usage rows, rows fetched by psycopg")
    print(
        f"  SUM GROUP BY subscription, month, kind; all subscriptions, one statement: "
        f"{baseline_seconds:6.2f} s {subscriptions / baseline_seconds:8,.0f} subscriptions/s "
        f"({baseline_rows:,} rows)"
    )
    for key, label in (
        ("service_all", "the raw aggregate (fallback); all subscriptions, one statement:"),
        ("service_batched", "the raw aggregate (fallback); per batch, consenting customers:"),
        ("roll_up_all", "the roll-up alone; all subscriptions, one statement:"),
        ("roll_up_batched", "the roll-up alone; per batch, consenting customers:"),
    ):
        seconds, rows = base[key]
        print(
            f"  {label:<72}{seconds:6.2f} s {subscriptions / seconds:8,.0f} subscriptions/s "
            f"({rows:,} rows)"
        )
    print(
        f"Ratio: offers_generate ÷ baseline = {baseline_seconds / first[0]:.1%} (first run), "
        f"{baseline_seconds / again[0]:.1%} (again)"
    )
    print(f"campaign_report of each campaign: {report_seconds}")
    if phases:
        total = phases.pop("total")
        print(f"\nSteps of a third run (supersedes; timers around each step), {total:.2f} s:")
        for name, seconds in phases.items():
            print(f"  {seconds:6.2f} s  {seconds / total:5.1%}  {name}")
    if profiler:
        print("\nWhere the time goes (cProfile of the first run, cumulative, top 30):")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(30)
        print("Own time (tottime, top 25):")
        stats.sort_stats("tottime").print_stats(25)


# --- the database ------------------------------------------------------------------------


def database_reset() -> None:
    """Migrate, empty the billing, invoices and offers tables, put back the rows that the
    data migrations create (invoice series, the three standard campaigns)."""
    import importlib

    from django.apps import apps
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    tables = [
        model._meta.db_table
        for label in ("billing", "invoices", "offers")
        for model in apps.get_app_config(label).get_models()
    ]
    quoted = ", ".join(connection.ops.quote_name(t) for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
    importlib.import_module("invoices.migrations.0002_invoice_series").create_series(apps, None)
    campaigns_ensure()


def campaigns_ensure() -> None:
    from decimal import Decimal

    from offers.models import Campaign

    for code, kind in (
        ("right-size", "right_size"),
        ("end-of-binding", "end_of_binding"),
        ("loyalty-parity", "loyalty_parity"),
    ):
        Campaign.objects.update_or_create(
            code=code,
            defaults={
                "name": code,
                "kind": kind,
                "holdout_share": Decimal("0.100"),
                "active": True,
            },
        )


def offers_reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE offers_offerevent, offers_offer, offers_campaignassignment "
            "RESTART IDENTITY CASCADE"
        )
    campaigns_ensure()


def vacuum_offers() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE offers_offer, offers_campaignassignment")


def existing_counts() -> dict[str, int]:
    from django.core.management import call_command

    from billing.models import Customer, Subscription, UsageMonth, UsageRecord

    call_command("migrate", verbosity=0, interactive=False)  # data loaded by an older script
    return {
        "customers": Customer.objects.count(),
        "subscriptions": Subscription.objects.count(),
        "usage": UsageRecord.objects.count(),
        "usage_months": UsageMonth.objects.count(),
    }


def customer_ids_all() -> list[int]:
    from billing.models import Customer

    return list(Customer.objects.order_by("id").values_list("id", flat=True))


def active_subscriptions(today: date) -> int:
    from django.db.models import Q

    from billing.models import Subscription

    return (
        Subscription.objects.filter(status="active")
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=today))
        .count()
    )


def set_sequence(table: str, last_id: int) -> None:
    from django.db import connection

    if last_id:
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, last_id])


def month_starts(today: date) -> list[date]:
    from offers.services import usage_window

    start, end = usage_window(today)
    months = []
    while start < end:
        months.append(start)
        start = (start + timedelta(days=32)).replace(day=1)
    return months


USAGE_COLUMNS = ["id", "subscription_id", "source_id", "kind", "quantity", "occurred_at", "country"]


def load(
    subscriptions: int, usage: str, today: date, rng: random.Random, cold: bool
) -> dict[str, float]:
    """Customers until ``subscriptions`` lines exist, their consents, and the usage."""
    from django.db import connection, transaction

    from billing.demo import PLAN_SPECS, STOCKHOLM, catalogue_ensure

    plans = catalogue_ensure()
    counts: dict[str, float] = {}
    mobile = ["mobil-3", "mobil-10", "mobil-30", "mobil-obegransad", "mobil-8-2023"]
    broadband = ["bredband-100", "bredband-250", "bredband-1000"]
    months = month_starts(today)
    with transaction.atomic():
        customers = io.StringIO()
        consents = io.StringIO()
        subs = io.StringIO()
        lines: list[tuple[int, str, str]] = []  # (subscription id, plan code, profile)
        cid = sid = consent_id = 0
        while sid < subscriptions:
            cid += 1
            customers.write(
                f"{cid}\tO{cid:08d}\tKund {cid}\to{cid}@example.com\t+4670{cid:07d}\tsv\t"
                f"Storgatan 1\t111 22\tStockholm\temail\tdefault\t2024-01-01 00:00:00+00\n"
            )
            if rng.random() < CONSENT_SHARE:
                consent_id += 1
                consents.write(
                    f"{consent_id}\t{cid}\tpersonalised_offers\t2025-01-01 00:00:00+00\tcrm\t\\N\n"
                )
            r = rng.random()
            codes = [rng.choices(mobile, (20, 35, 22, 15, 8))[0]]
            if r < 0.2:
                codes.append(rng.choice(broadband))
            elif r < 0.3:
                codes.append(rng.choice(mobile))
            elif r < 0.33:
                codes += [rng.choice(mobile), rng.choice(mobile)]
            for code in codes[: subscriptions - sid]:
                sid += 1
                spec = PLAN_SPECS[code]
                start = date(2024, 1, 1) + timedelta(days=rng.randint(0, 600))
                binding = start + timedelta(days=730) if rng.random() < 0.6 else None
                agreed = max(spec.price_on(start), spec.list_price)
                profile = (
                    "broadband"
                    if code in broadband
                    else rng.choices(("light", "normal", "heavy"), (25, 60, 15))[0]
                )
                subs.write(
                    f"{sid}\t{cid}\t{plans[code].id}\t+4673{sid:07d}\t\t{agreed}\t{start}\t\\N\t"
                    f"{binding or '\\N'}\t1\tactive\n"
                )
                lines.append((sid, code, profile))
        copy_text(
            "billing_customer",
            ["id", "customer_number", "name", "email", "phone", "language", "address",
             "postal_code", "city", "delivery_method", "billing_group", "created_at"],
            customers,
        )  # fmt: skip
        copy_text(
            "billing_consent",
            ["id", "customer_id", "kind", "given_at", "source", "withdrawn_at"],
            consents,
        )
        copy_text(
            "billing_subscription",
            ["id", "customer_id", "plan_id", "identifier", "label", "agreed_monthly_price",
             "start_date", "end_date", "binding_end", "notice_period_months", "status"],
            subs,
        )  # fmt: skip
        for table, last in (
            ("billing_customer", cid),
            ("billing_consent", consent_id),
            ("billing_subscription", sid),
        ):
            set_sequence(table, last)
        counts.update(customers=cid, subscriptions=sid, consents=consent_id)

        usage_started = time.monotonic()
        uid = 0
        buf = io.StringIO()
        for sub_id, code, profile in lines:
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
            voice_s = rng.uniform(600, 30_000)
            sms = rng.randint(0, 150)
            trip_month, trip_country = -1, ""
            if profile != "broadband":
                t = rng.random()
                if t < 0.05:
                    trip_month, trip_country = rng.randrange(len(months)), rng.choice(("US", "TR"))
                elif t < 0.2:
                    trip_month, trip_country = rng.randrange(len(months)), rng.choice(("ES", "IT"))
            for m, first in enumerate(months):
                scale = rng.uniform(0.7, 1.3)
                kinds = [("data", month_gb * 1024 * scale)]
                if profile != "broadband":
                    kinds += [("voice", voice_s * scale), ("sms", sms * scale)]
                if usage == "monthly":
                    noon = datetime.combine(first.replace(day=15), dtime(12), tzinfo=STOCKHOLM)
                    stamp = noon.isoformat(sep=" ")
                    for kind, quantity in kinds:
                        uid += 1
                        buf.write(
                            f"{uid}\t{sub_id}\to{sub_id}:{first:%Y%m}:{kind}\t{kind}\t"
                            f"{quantity:.1f}\t{stamp}\t\n"
                        )
                    if m == trip_month:
                        uid += 1
                        buf.write(
                            f"{uid}\t{sub_id}\to{sub_id}:{first:%Y%m}:trip\tdata\t"
                            f"{rng.uniform(200, 3000):.1f}\t{stamp}\t{trip_country}\n"
                        )
                else:
                    nxt = (first + timedelta(days=32)).replace(day=1)
                    days = (nxt - first).days
                    for d in range(days):
                        day = first + timedelta(days=d)
                        noon = datetime.combine(day, dtime(12), tzinfo=STOCKHOLM)
                        stamp = noon.isoformat(sep=" ")
                        country = trip_country if m == trip_month and d < 7 else ""
                        for kind, quantity in kinds:
                            uid += 1
                            buf.write(
                                f"{uid}\t{sub_id}\to{sub_id}:{day:%Y%m%d}:{kind}\t{kind}\t"
                                f"{quantity / days * rng.uniform(0.4, 1.6):.1f}\t{stamp}\t"
                                f"{country}\n"
                            )
            if buf.tell() > 8_000_000:
                copy_text("billing_usagerecord", USAGE_COLUMNS, buf)
                buf = io.StringIO()
        copy_text("billing_usagerecord", USAGE_COLUMNS, buf)
        set_sequence("billing_usagerecord", uid)
        counts["usage"] = uid
        counts["usage_seconds"] = time.monotonic() - usage_started
        counts["usage_months"], counts["roll_up_seconds"] = roll_up_write(today)
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE" if cold else "VACUUM ANALYZE")
    counts["analyze_seconds"] = time.monotonic() - started
    return counts


# The roll-up (billing.models.UsageMonth) of the window's months as the bill run writes it
# (invoices.services.bill_run.usage_months_build): one row per subscription rated in the
# month, with or without usage, from the month's usage at home and in the EU/EEA, in exact
# thousandths; "has usage" when the month has records there. In SQL, over every line at once.
ROLL_UP_SQL = """
INSERT INTO billing_usagemonth
    (subscription_id, month, has_usage, data_milli_mb, voice_milli_seconds, sms_milli)
SELECT s.id, m.month, u.subscription_id IS NOT NULL,
       COALESCE(u.data, 0), COALESCE(u.voice, 0), COALESCE(u.sms, 0)
FROM billing_subscription s
CROSS JOIN unnest(%(months)s::date[]) AS m (month)
LEFT JOIN (
    SELECT subscription_id,
           date_trunc('month', occurred_at AT TIME ZONE 'Europe/Stockholm')::date AS month,
           (COALESCE(SUM(quantity) FILTER (WHERE kind = 'data'), 0) * 1000)::bigint AS data,
           (COALESCE(SUM(quantity) FILTER (WHERE kind = 'voice'), 0) * 1000)::bigint AS voice,
           (COALESCE(SUM(quantity) FILTER (WHERE kind = 'sms'), 0) * 1000)::bigint AS sms
    FROM billing_usagerecord
    WHERE occurred_at >= %(start)s AND occurred_at < %(end)s
      AND (country = '' OR upper(country) = ANY(%(eu_eea)s))
    GROUP BY 1, 2
) u ON u.subscription_id = s.id AND u.month = m.month
WHERE s.start_date < m.month + interval '1 month'
  AND (s.end_date IS NULL OR s.end_date >= m.month)
"""


def roll_up_write(today: date) -> tuple[int, float]:
    """Write the roll-up of the usage window's months: (rows, seconds)."""
    from django.db import connection, transaction

    from billing.roaming import EU_EEA_COUNTRIES
    from offers.services import STOCKHOLM, usage_window

    start, end = usage_window(today)
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            ROLL_UP_SQL,
            {
                "months": month_starts(today),
                "start": datetime.combine(start, dtime.min, tzinfo=STOCKHOLM),
                "end": datetime.combine(end, dtime.min, tzinfo=STOCKHOLM),
                "eu_eea": sorted(EU_EEA_COUNTRIES),
            },
        )
        rows = cursor.rowcount
    return rows, time.monotonic() - started


# --- the timed runs ----------------------------------------------------------------------


def timed_generate(
    customer_ids: list[int], today: date, batch: int, profile: bool
) -> tuple[tuple[float, int], cProfile.Profile | None]:
    """``offers_generate`` over every customer, in the command's batches: (seconds, offers)."""
    from offers.services import offers_generate

    profiler = cProfile.Profile() if profile else None
    written = 0
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    for start in range(0, len(customer_ids), batch):
        written += offers_generate(customer_ids=customer_ids[start : start + batch], today=today)
    if profiler:
        profiler.disable()
    return (time.perf_counter() - started, written), profiler


def timed_phases(customer_ids: list[int], today: date, batch: int) -> dict[str, float]:
    """Wall time of each step of ``offers_generate``, by wrapping the module's functions."""
    import offers.services as services

    spent: dict[str, float] = {}
    originals = {}

    def timed(name: str, label: str) -> None:
        original = getattr(services, name)
        originals[name] = original

        def wrapper(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - started

        setattr(services, name, wrapper)

    timed("monthly_usage", "usage query and MonthUsage rows (monthly_usage)")
    timed("_candidates_for", "engine, reasons and figures per subscription (_candidates_for)")
    timed("_assignments", "groups: read, hash, insert (_assignments)")
    timed("_write", "write: supersede old offers, COPY new ones (_write, incl. groups)")
    try:
        (total, _written), _ = timed_generate(customer_ids, today, batch, False)
    finally:
        for name, original in originals.items():
            setattr(services, name, original)
    accounted = (
        spent.get("usage query and MonthUsage rows (monthly_usage)", 0.0)
        + spent.get("engine, reasons and figures per subscription (_candidates_for)", 0.0)
        + spent.get("write: supersede old offers, COPY new ones (_write, incl. groups)", 0.0)
    )
    spent["the rest: subscriptions, consents, catalogue queries, loop"] = total - accounted
    spent["total"] = total
    return spent


def kind_grouped_queryset(today: date) -> object:
    """The baseline's statement: SUM(quantity) GROUP BY subscription, month (truncated in
    Stockholm time) and kind, over the usage window, at home and in the EU/EEA, over every
    subscription. It is the query ``monthly_usage`` ran before it became the one below
    (git show d9a92a4:offers/services.py), kept here so the baseline stays the same."""
    from datetime import datetime
    from datetime import time as dtime

    from django.db.models import Q, Sum
    from django.db.models.functions import TruncMonth

    from billing.models import UsageRecord
    from billing.roaming import EU_EEA_COUNTRIES
    from offers.services import STOCKHOLM, usage_window

    start, end = usage_window(today)
    return (
        UsageRecord.objects.filter(
            occurred_at__gte=datetime.combine(start, dtime.min, tzinfo=STOCKHOLM),
            occurred_at__lt=datetime.combine(end, dtime.min, tzinfo=STOCKHOLM),
        )
        .filter(Q(country="") | Q(country__in=EU_EEA_COUNTRIES))
        .annotate(month=TruncMonth("occurred_at", tzinfo=STOCKHOLM))
        .values_list("subscription_id", "month", "kind")
        .annotate(quantity=Sum("quantity"))
        .order_by()
    )


def sql_of(queryset: object) -> tuple[str, list[object]]:
    from django.db import connection

    sql, params = queryset.query.get_compiler(connection=connection).as_sql()  # type: ignore[attr-defined]
    return sql, list(params)


def timed_statements(statements: list[tuple[str, list[object]]]) -> tuple[float, int]:
    """Run each statement on psycopg's cursor and fetch its rows, nothing else: (s, rows)."""
    from django.db import connection

    rows = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor
        started = time.perf_counter()
        for sql, params in statements:
            raw.execute(sql, params)
            rows += len(raw.fetchall())
        return time.perf_counter() - started, rows


def baselines(customer_ids: list[int], today: date, batch: int) -> dict[str, tuple[float, int]]:
    """The kind-grouped aggregate over every subscription (the baseline), and the service's
    own statement (``monthly_usage_queryset``) over every subscription and as the run sends
    it: per batch, for the subscriptions of customers who consented."""
    from django.db.models import Q

    from billing.models import Consent, Subscription
    from offers.services import monthly_usage_queryset, rolled_up_months_queryset

    batches = []
    roll_up_batches = []
    for start in range(0, len(customer_ids), batch):
        ids = customer_ids[start : start + batch]
        consenting = Consent.objects.filter(
            customer_id__in=ids, kind="personalised_offers", withdrawn_at__isnull=True
        ).values("customer_id")
        sub_ids = list(
            Subscription.objects.filter(customer_id__in=consenting, status="active")
            .filter(Q(end_date__isnull=True) | Q(end_date__gte=today))
            .order_by("id")
            .values_list("id", flat=True)
        )
        batches.append(sql_of(monthly_usage_queryset(sub_ids, today)))
        roll_up_batches.append(sql_of(rolled_up_months_queryset(sub_ids, today)))
    return {
        "baseline": timed_statements([sql_of(kind_grouped_queryset(today))]),
        "service_all": timed_statements([sql_of(monthly_usage_queryset(None, today))]),
        "service_batched": timed_statements(batches),
        "roll_up_all": timed_statements([sql_of(rolled_up_months_queryset(None, today))]),
        "roll_up_batched": timed_statements(roll_up_batches),
    }


def report_timing(today: date) -> str:
    from offers.models import Campaign
    from offers.selectors import campaign_report

    parts = []
    for campaign in Campaign.objects.order_by("code"):
        started = time.perf_counter()
        report = campaign_report(campaign, today=today)
        seconds = time.perf_counter() - started
        customers = report.treatment.customers + report.holdout.customers
        parts.append(f"{campaign.code} {seconds * 1000:,.0f} ms ({customers:,} customers)")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
