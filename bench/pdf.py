"""Benchmark: the PDF of a two-page invoice, against the template engine alone.

    .venv/bin/python bench/pdf.py [--runs 21]

Builds a throwaway SQLite database in a temporary directory (``TOUCHPOINT_VAR_DIR``, set
before ``django.setup()``), migrates it and issues one Swedish invoice through the real bill
run for a customer with enough subscriptions and usage for exactly two A4 pages. Then, in
the same run:

time  (this process, one warm-up, then ``--runs`` alternating runs of each; median)
  - baseline: ``invoice_pdf_html`` - the page context (its queries) and the Django
    template, i.e. the same HTML that goes into the PDF;
  - pdf: ``invoice_pdf_render`` - that HTML and WeasyPrint, to PDF bytes.
  Wall time (``perf_counter``) and CPU time of this process (``process_time``).

memory (a fresh child process per mode, so one cannot inherit the other's peak)
  Each child runs ``django.setup()``, loads the invoice and renders it three times, then
  reports its VmHWM: the peak resident set size of the whole process (Python, Django,
  the imports, the render), and its VmRSS just before the first render. The first render
  is a cold one (WeasyPrint is imported and fonts are loaded then), as in a fresh worker;
  its wall time is printed too.

Goal: pdf median at most 400 ms, pdf child peak RSS at most 150 MiB.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES_WANTED = 2


def _django(var_dir: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["TOUCHPOINT_VAR_DIR"] = var_dir
    os.environ.pop("DATABASE_URL", None)  # always the throwaway SQLite file
    os.environ["LOG_LEVEL"] = "WARNING"  # WeasyPrint logs every step at INFO
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _status_kib(field: str) -> int:
    """VmRSS (resident now) or VmHWM (peak resident) of this process, from /proc, in KiB.

    Not ``getrusage().ru_maxrss``: Linux carries the parent's peak over into a child
    across fork and exec, so a child started from this benchmark would report at least
    the parent's size.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _seed() -> int:
    """One customer with two mobile subscriptions, each with a discount, a one-off charge,
    overage and roaming; issued by the real bill run. Returns the invoice id."""
    from billing.models import (
        Customer,
        Discount,
        OneOffCharge,
        Plan,
        RoamingZone,
        Subscription,
        UsageRecord,
    )
    from invoices.models import Invoice
    from invoices.services.bill_run import bill_run_execute, bill_run_start

    RoamingZone.objects.create(
        code="world",
        name="Resten av världen",
        countries="*",
        data_per_mb=Decimal("0.50"),
        voice_per_minute=Decimal("9.90"),
        sms_each=Decimal("3.90"),
    )
    mobile = Plan.objects.create(
        code="mobil-10",
        name="Mobil 10 GB",
        monthly_fee=Decimal("299.00"),
        data_included_gb=Decimal(10),
        voice_included_minutes=100,
        sms_included=50,
        data_overage_per_gb=Decimal(29),
        voice_overage_per_minute=Decimal("0.49"),
        sms_overage_each=Decimal("0.69"),
    )
    customer = Customer.objects.create(
        customer_number="C0012345",
        name="Anna Lindqvist",
        email="anna@example.se",
        language="sv",
        address="Storgatan 12 B",
        postal_code="113 51",
        city="Stockholm",
    )
    usage = [
        ("data", "14540.8", ""),
        ("voice", "7320", ""),
        ("sms", "64", ""),
        ("data", "35.2", "US"),
        ("voice", "400", "US"),
        ("sms", "3", "US"),
    ]
    record = 0
    for index, label in enumerate(["Anna", "Erik"]):
        sub = Subscription.objects.create(
            customer=customer,
            plan=mobile,
            identifier=f"+4673012345{index}",
            label=label,
            agreed_monthly_price=Decimal("279.00"),
            start_date=date(2025, 1, 1),
            binding_end=date(2027, 3, 31),
        )
        Discount.objects.create(
            subscription=sub,
            description="Familjerabatt",
            monthly_amount=Decimal(50),
            valid_from=date(2026, 1, 1),
            valid_until=date(2027, 3, 31),
        )
        OneOffCharge.objects.create(
            subscription=sub,
            description="Nytt SIM-kort",
            amount=Decimal(99),
            charge_date=date(2026, 10, 3),
        )
        for kind, quantity, country in usage:
            record += 1
            UsageRecord.objects.create(
                subscription=sub,
                source_id=f"bench-{record}",
                kind=kind,
                quantity=Decimal(quantity),
                occurred_at=datetime(2026, 10, 5, 12, tzinfo=UTC),
                country=country,
            )
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    bill_run_execute(bill_run_id=run.id)
    return Invoice.objects.get(customer=customer).id


def _load(invoice_id: int) -> object:
    from invoices.models import Invoice

    return Invoice.objects.select_related("series", "credited_invoice").get(id=invoice_id)


def _child(mode: str, invoice_id: int, var_dir: str) -> None:
    _django(var_dir)
    from invoices.services.pdf import invoice_pdf_html, invoice_pdf_render

    invoice = _load(invoice_id)
    before = _status_kib("VmRSS")
    render = invoice_pdf_render if mode == "pdf" else invoice_pdf_html
    started = time.perf_counter()
    render(invoice)  # cold: imports WeasyPrint, loads fonts, compiles the template
    first_ms = (time.perf_counter() - started) * 1000
    for _ in range(2):
        render(invoice)
    peak = _status_kib("VmHWM")
    print(json.dumps({"rss_before_kib": before, "peak_kib": peak, "first_ms": first_ms}))


def _memory(mode: str, invoice_id: int, var_dir: str) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--invoice", str(invoice_id)],
        env={**os.environ, "TOUCHPOINT_VAR_DIR": var_dir},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _timed(fn: object, runs: int) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        fn()  # type: ignore[operator]
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--child", choices=["html", "pdf"])
    parser.add_argument("--invoice", type=int)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.invoice, os.environ["TOUCHPOINT_VAR_DIR"])
        return

    var_dir = tempfile.mkdtemp(prefix="touchpoint-bench-pdf-")
    try:
        _django(var_dir)
        from io import BytesIO, StringIO

        from django.core.management import call_command
        from pypdf import PdfReader

        from invoices.services.pdf import invoice_pdf_html, invoice_pdf_render

        call_command("migrate", verbosity=0)
        call_command("compiletranslations", stdout=StringIO())
        invoice_id = _seed()
        invoice = _load(invoice_id)

        pdf = invoice_pdf_render(invoice)  # warm-up (fonts, template cache)
        invoice_pdf_html(invoice)
        pages = len(PdfReader(BytesIO(pdf)).pages)
        if pages != PAGES_WANTED:
            raise SystemExit(f"the bench invoice has {pages} pages, not {PAGES_WANTED}")

        html_wall, html_cpu, pdf_wall, pdf_cpu = [], [], [], []
        for _ in range(args.runs):  # alternate, so drift on the machine hits both alike
            w, c = _timed(lambda: invoice_pdf_html(invoice), 1)
            html_wall += w
            html_cpu += c
            w, c = _timed(lambda: invoice_pdf_render(invoice), 1)
            pdf_wall += w
            pdf_cpu += c

        mem_html = _memory("html", invoice_id, var_dir)
        mem_pdf = _memory("pdf", invoice_id, var_dir)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)

    wall_ms = {k: statistics.median(v) * 1000 for k, v in (("html", html_wall), ("pdf", pdf_wall))}
    cpu_ms = {k: statistics.median(v) * 1000 for k, v in (("html", html_cpu), ("pdf", pdf_cpu))}
    peak = {"html": mem_html["peak_kib"] / 1024, "pdf": mem_pdf["peak_kib"] / 1024}
    before = {"html": mem_html["rss_before_kib"] / 1024, "pdf": mem_pdf["rss_before_kib"] / 1024}
    names = {"html": "template engine alone (baseline)", "pdf": "WeasyPrint PDF (same HTML + PDF)"}
    from _common import machine  # bench/ is sys.path[0] when this file runs as a script

    print(f"PDF benchmark: {pages}-page invoice, {len(pdf) / 1024:.0f} KiB, {args.runs} runs each")
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.2f}")
    print(f"{'':34} {'wall ms':>8} {'CPU ms':>8} {'peak MiB':>9} {'pre MiB':>8}")
    for key in ("html", "pdf"):
        print(
            f"{names[key]:34} {wall_ms[key]:8.1f} {cpu_ms[key]:8.1f} "
            f"{peak[key]:9.1f} {before[key]:8.1f}"
        )
    print(
        f"{'PDF minus baseline':34} {wall_ms['pdf'] - wall_ms['html']:8.1f} "
        f"{cpu_ms['pdf'] - cpu_ms['html']:8.1f} {peak['pdf'] - peak['html']:9.1f}"
    )
    print("(ms: medians; peak: VmHWM of a fresh process rendering 3 times; pre: its RSS before)")
    print(
        f"first render in a fresh process (imports, fonts): html {mem_html['first_ms']:.0f} ms, "
        f"pdf {mem_pdf['first_ms']:.0f} ms"
    )
    met = wall_ms["pdf"] <= 400 and peak["pdf"] <= 150
    print(f"goal <= 400 ms median wall and <= 150 MiB peak: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
