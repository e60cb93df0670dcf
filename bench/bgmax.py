"""Booking a BgMax file of 100,000 payments on PostgreSQL, against reading the same file alone.

    python bench/bgmax.py [--payments 100000] [--runs 2]

DATABASE_URL (default postgres://postgres@127.0.0.1:5432/touchpoint_bench_bgmax) names a
database this script owns: created if missing, migrated, and its invoices, payments and
customers emptied on every run. Loaded (COPY, not timed): one customer and one issued
invoice of 299 kr per payment, each with its OCR reference. Generated in memory, as Bankgirot
writes it (ISO-8859-1, CRLF, 80-character records): deposits of 1,000 payments, each payment
a TK20 record and its payer's name (TK26); 80 % pay their invoice in full, 10 % pay part of
it, 10 % carry a reference that names no invoice (left unmatched).

Timed, on the same file: the baseline, ``billing.bgmax.bgmax_parse`` alone (read and check
the whole file, the median of three); then ``invoices.services.payments.bgmax_import`` (read,
check, and book every payment in one transaction: known payments looked up, invoices locked
and their balances read, the payments written with COPY, the invoices' statuses set), on a
fresh set of invoices for each run. Goal: at least 20,000 payments a second booked.
"""

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

from _common import ROOT, copy_text, django_setup, machine, postgres_url, rate

# This script is bench/bgmax.py and bench/ comes first on the path: take it off, so that
# ``billing.bgmax`` is the app's module, and work from the repository.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != _BENCH]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/touchpoint_bench_bgmax"
GOAL_PAYMENTS_PER_SECOND = 20_000
PER_DEPOSIT = 1000
PRICE_ORE = 29900


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2, help="imports, each on fresh invoices")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    url, database = postgres_url(DEFAULT_URL)
    django_setup({"DATABASE_URL": url, "CELERY_BROKER_URL": "memory://", "LOG_LEVEL": "WARNING"})
    from django.core.management import call_command
    from django.db import connection

    from billing.bgmax import bgmax_parse
    from invoices.models import Invoice, InvoiceStatus, Payment, PaymentStatus
    from invoices.services.payments import bgmax_import

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    print(f"BgMax benchmark · {machine()}")
    print(f"PostgreSQL {version}, database {database!r}")

    started = time.monotonic()
    references = load(args.payments)
    loaded = time.monotonic() - started
    print(f"Loaded {args.payments:,} customers and issued invoices in {loaded:.1f} s")
    data = bgmax_file(references, args.payments)
    print(f"File: {len(data) / 1e6:.1f} MB, {args.payments:,} payments in "
          f"{(args.payments + PER_DEPOSIT - 1) // PER_DEPOSIT} deposits")  # fmt: skip

    parse_seconds = []
    for _ in range(3):
        started = time.perf_counter()
        parsed = bgmax_parse(data)
        parse_seconds.append(time.perf_counter() - started)
    baseline = statistics.median(parse_seconds)
    if len(parsed.payments) != args.payments:
        sys.exit(f"read {len(parsed.payments)} payments of {args.payments}")

    print()
    print(f"Baseline, same file: bgmax_parse alone (median of 3): {baseline:.2f} s, "
          f"{rate(args.payments, baseline)} payments/s")  # fmt: skip
    for run in range(1, args.runs + 1):
        fresh_invoices()
        started = time.perf_counter()
        imported, new = bgmax_import(data=data, name=f"bench-{run}.txt")
        seconds = time.perf_counter() - started
        if not new:
            sys.exit("the file was taken for one imported before")
        per_second = args.payments / seconds
        verdict = "met" if per_second >= GOAL_PAYMENTS_PER_SECOND else "NOT met"
        print(
            f"bgmax_import, run {run}: {seconds:.2f} s, {per_second:,.0f} payments/s booked "
            f"(goal ≥ {GOAL_PAYMENTS_PER_SECOND:,}: {verdict}); {imported.booked:,} booked, "
            f"{imported.unmatched:,} unmatched; import ÷ parse = {seconds / baseline:.1f}×"
        )
    paid = Invoice.objects.filter(status=InvoiceStatus.PAID).count()
    partly = Invoice.objects.filter(status=InvoiceStatus.PARTLY_PAID).count()
    waiting = Payment.objects.filter(status=PaymentStatus.UNMATCHED).count()
    print(f"After the last run: {paid:,} invoices paid, {partly:,} partly paid, "
          f"{waiting:,} payments unmatched")  # fmt: skip


def load(count: int) -> list[str]:
    """``count`` customers with one issued 299 kr invoice each; their OCR references."""
    from django.db import connection
    from django.utils import timezone

    from core.ocr import ocr_build
    from invoices.models import InvoiceSeries

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE invoices_payment, invoices_bgmaximport, invoices_invoice, "
            "billing_customer RESTART IDENTITY CASCADE"
        )
    series, _ = InvoiceSeries.objects.get_or_create(code="F", defaults={"prefix": ""})
    now = timezone.now().isoformat()
    customers, invoices, references = io.StringIO(), io.StringIO(), []
    for n in range(1, count + 1):
        customers.write(f"{n}\tC{n:08d}\tKund {n}\t\t\tsv\t\t\t\temail\tdefault\t{now}\n")
        reference = ocr_build(f"{n:07d}")
        references.append(reference)
        invoices.write(
            f"{n}\tinvoice\t{series.id}\t{n}\t{n}\t\\N\t\\N\t\t2026-11-01\t2026-11-30\t"
            f'2026-12-01\t2026-12-31\t{reference}\tSEK\tsv\t{{"name": "Kund {n}"}}\t{{}}\t'
            f"[]\t[]\t239.20\t59.80\t0.00\t299.00\tissued\t1\t1\t\t{now}\n"
        )
    copy_text("billing_customer", CUSTOMER_COLUMNS, customers)
    copy_text("invoices_invoice", INVOICE_COLUMNS, invoices)
    with connection.cursor() as cursor:
        for table in ("billing_customer", "invoices_invoice"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {count})")
        cursor.execute("VACUUM ANALYZE billing_customer, invoices_invoice")
    return references


CUSTOMER_COLUMNS = [
    "id", "customer_number", "name", "email", "phone", "language", "address", "postal_code",
    "city", "delivery_method", "billing_group", "created_at",
]  # fmt: skip
INVOICE_COLUMNS = [
    "id", "kind", "series_id", "number", "customer_id", "bill_run_id", "credited_invoice_id",
    "credit_reason", "period_start", "period_end", "invoice_date", "due_date", "ocr",
    "currency", "language", "buyer", "seller", "subscriptions", "vat_summary", "net_total",
    "vat_total", "rounding", "total", "status", "revision", "template_version", "pdf",
    "issued_at",
]  # fmt: skip


def fresh_invoices() -> None:
    """Every invoice issued and unpaid again, no payment and no import: the next run books
    the same file afresh."""
    from django.db import connection

    with connection.cursor() as cursor:
        # (and whatever refers to payments: credit balances spent, card payments)
        cursor.execute("TRUNCATE invoices_payment, invoices_bgmaximport RESTART IDENTITY CASCADE")
        cursor.execute("UPDATE invoices_invoice SET status = 'issued', revision = 1")
        cursor.execute("VACUUM ANALYZE invoices_invoice, invoices_payment")


def bgmax_file(references: list[str], count: int) -> bytes:
    def record(*parts: str) -> str:
        return "".join(parts).ljust(80)

    records = [record("01", "BGMAX".ljust(20), "01", "20261201061500123456", "P")]
    deposits = 0
    for first in range(0, count, PER_DEPOSIT):
        deposits += 1
        records.append(record("05", "0009912346", " " * 10, "SEK"))
        total = 0
        chunk = range(first, min(first + PER_DEPOSIT, count))
        for n in chunk:
            if n % 10 == 9:  # names no invoice
                reference, amount = "1234567897".rjust(25), 5000
            else:
                reference = references[n].rjust(25)
                amount = PRICE_ORE // 2 if n % 10 == 8 else PRICE_ORE
            total += amount
            records.append(
                record(
                    "20",
                    "0003783511",
                    reference,
                    str(amount).rjust(18, "0"),
                    "2",
                    "1",
                    f"{n + 1:012d}",
                    "0",
                )
            )
            records.append(record("26", f"Kund {n + 1}".ljust(35)))
        records.append(
            record(
                "15",
                "0" * 35,
                "20261130",
                f"{deposits:05d}",
                str(total).rjust(18, "0"),
                "SEK",
                str(len(chunk)).rjust(8, "0"),
            )
        )
    records.append(record("70", str(count).rjust(8, "0"), "0" * 8, "0" * 8,
                          str(deposits).rjust(8, "0")))  # fmt: skip
    return "\r\n".join(records).encode("iso-8859-1")


if __name__ == "__main__":
    main()
