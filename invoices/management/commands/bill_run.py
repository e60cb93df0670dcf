"""python manage.py bill_run --period YYYY-MM [--group G] [--invoice-date YYYY-MM-DD]"""

import sys
from datetime import date, datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import DomainError
from invoices.services.bill_run import BillRunProgress, bill_run_execute, bill_run_start
from offers.tasks import offers_for_bill_run_task


def parse_period(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m").date()  # noqa: DTZ007 - a calendar month
    except ValueError as exc:
        raise CommandError(f"--period must look like 2026-10, not {value!r}") from exc


def format_progress(progress: BillRunProgress) -> str:
    left = progress.seconds_left
    eta = f"{int(left // 60)}m{int(left % 60):02d}s" if left is not None else "?"
    return (
        f"{progress.done}/{progress.total} customers · {progress.rate:,.0f} invoices/s · {eta} left"
    )


class Command(BaseCommand):
    help = "Issue the invoices of a month: one per customer, resumable, never twice."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--period", required=True, help="The month billed, YYYY-MM")
        parser.add_argument("--group", default="default", help="Billing group (bill cycle)")
        parser.add_argument("--invoice-date", help="YYYY-MM-DD; default today")

    def handle(self, *args: object, **options: str) -> None:
        period = parse_period(options["period"])
        invoice_date = None
        if options.get("invoice_date"):
            try:
                invoice_date = date.fromisoformat(options["invoice_date"])
            except ValueError as exc:
                raise CommandError("--invoice-date must look like 2026-11-01") from exc
        try:
            run = bill_run_start(
                period=period, billing_group=options["group"], invoice_date=invoice_date
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        tty = sys.stdout.isatty()

        def show(progress: BillRunProgress) -> None:
            line = format_progress(progress)
            if tty:
                self.stdout.write(f"\r{line}", ending="")
            else:
                self.stdout.write(line)

        run = bill_run_execute(bill_run_id=run.id, on_progress=show)
        if run.status == "completed":
            # the invoiced customers' offers, from their latest usage (workers, or in-process)
            offers_for_bill_run_task.delay(bill_run_id=run.id)
        if tty:
            self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(
                f"Bill run {run}: {run.status}, {run.invoices_issued} invoices, "
                f"{run.lines_issued} lines, {run.total_amount} kr in total"
            )
        )
