"""The accounting export (SIE 4I) of a month on PostgreSQL, against reading its rows alone.

    python bench/sie.py [--invoices 100000] [--runs 2]

DATABASE_URL (default postgres://postgres@127.0.0.1:5432/touchpoint_bench_sie) names a
database this script owns: created if missing, migrated, emptied. Loaded (not timed), as
bench/bgmax.py loads them: one customer and one issued 299 kr invoice (25 % VAT) per
customer, then a BgMax file booked on them (80 % paid in full, 10 % half, 10 % to no invoice):
a month with as many payments as invoices.

Timed, on the same rows: the baseline, the export's reads alone (its queries with
``values_list(...).iterator()``, every row fetched and thrown away; the median of three); then
``invoices.accounting.accounting_sie_write`` into a temporary file (the verifications built
and checked, the file encoded in CP437), with the peak memory of the process (the loading
runs in a process of its own). A large operator's
month is about a million invoices and as many payments: the rate says how long that takes.
"""

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date

from _common import django_setup, machine, postgres_url, rate
from bgmax import bgmax_file, load

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/touchpoint_bench_sie"
VAT_SUMMARY = '[{"rate": "0.25", "base": "239.20", "vat": "59.80"}]'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--load-only", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    url, database = postgres_url(DEFAULT_URL)
    django_setup({"DATABASE_URL": url, "CELERY_BROKER_URL": "memory://", "LOG_LEVEL": "WARNING"})
    from django.core.management import call_command
    from django.db import connection

    from invoices.accounting import accounting_sie_write
    from invoices.services.payments import bgmax_import

    if args.load_only:
        call_command("migrate", verbosity=0)
        started = time.monotonic()
        references = load(args.invoices)
        with connection.cursor() as cursor:  # (the document's VAT, as the bill run writes it)
            cursor.execute("UPDATE invoices_invoice SET vat_summary = %s::jsonb", [VAT_SUMMARY])
        made = bgmax_file(references, args.invoices)
        imported, _new = bgmax_import(data=made, name="bench.txt")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE invoices_invoice, invoices_payment")
        print(
            f"Loaded {args.invoices:,} invoices and {imported.payments:,} payments "
            f"({imported.unmatched:,} unmatched) in {time.monotonic() - started:.1f} s"
        )
        return
    print(f"SIE 4I export benchmark · {machine()}")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        print(f"PostgreSQL {cursor.fetchone()[0]}, database {database!r}")
    # (loaded by a process of its own: this one's peak memory is the export's)
    loading = [sys.executable, __file__, "--load-only", f"--invoices={args.invoices}"]
    subprocess.run(loading, check=True)
    first, last = date(2026, 11, 1), date(2026, 12, 31)

    reads = []
    for _ in range(3):
        started = time.perf_counter()
        rows = read_alone(first, last)
        reads.append(time.perf_counter() - started)
    baseline = statistics.median(reads)
    print()
    print(f"Baseline, the export's reads alone (median of 3): {baseline:.2f} s, {rows:,} rows")
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryFile() as out:
            started = time.perf_counter()
            written = accounting_sie_write(out, first=first, last=last, generated_by="bench")
            seconds = time.perf_counter() - started
            size = out.tell()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"accounting_sie_write, run {run}: {seconds:.2f} s, {written:,} verifications, "
            f"{rate(written, seconds)}/s, {size / 1e6:.1f} MB; export ÷ reads = "
            f"{seconds / baseline:.1f}×; peak memory {peak:.0f} MB; "
            f"a month of 2,000,000 verifications ≈ {2_000_000 * seconds / written / 60:.1f} min"
        )


def read_alone(first: date, last: date) -> int:
    """The export's invoice and payment queries, every row fetched and dropped."""
    from invoices.accounting import accounting_document_rows, accounting_payment_rows

    count = 0
    for query in (
        accounting_document_rows(first=first, last=last),
        accounting_payment_rows(first=first, last=last),
    ):
        for _row in query.iterator(chunk_size=2000):
            count += 1
    return count


if __name__ == "__main__":
    main()
