"""python manage.py seed_demo [--customers N]: demo customers, usage and six months of invoices.

Re-runnable: customers already there are skipped, and each month's bill run issues only the
invoices still missing, so a second run adds nothing and fails on nothing.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandParser
from django.test.utils import override_settings
from django.utils import timezone

from billing.demo import (
    FINANCE_USERNAME,
    SUPPORT_USERNAME,
    demo_customers_create,
    finance_password,
    finance_user_ensure,
    history_periods,
    support_password,
    support_user_ensure,
)
from billing.models import Customer
from billing.rating import month_bounds
from invoices.services.bill_run import bill_run_execute, bill_run_start
from offers.services import offers_generate

# While seeding, e-mail and SMS go to in-memory carriers: 1,000+ invoice messages on the
# console would bury the demo's output. The outbox rows (OutboundMessage) are written as usual.
QUIET_CARRIERS = {
    "MAILERS": {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}},
    "SMS_BACKEND": "core.sms.LocmemSmsBackend",
    # WeasyPrint takes a few tenths of a second a PDF: six months of PDF and paper customers
    # would make seeding several times slower. Their PDFs render on first download instead.
    "INVOICE_PDF_PRERENDER": False,
}


@contextmanager
def quiet_task_log() -> Iterator[None]:
    """Celery logs a line per eager task at INFO; six bill runs do not need them."""
    trace = logging.getLogger("celery.app.trace")
    level = trace.level
    trace.setLevel(logging.WARNING)
    try:
        yield
    finally:
        trace.setLevel(level)


class Command(BaseCommand):
    help = "Seed demo customers with six months of usage, and issue their invoices."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, default=200, help="How many (default 200)")

    def handle(self, *args: object, **options: int) -> None:
        count = options["customers"]
        today = timezone.localdate()
        seeded = demo_customers_create(count=count, today=today)
        self.stdout.write(
            f"Customers: {seeded.customers_created} created, {seeded.customers_existing} "
            f"already there; {seeded.subscriptions} subscriptions, {seeded.usage_records:,} "
            f"usage records, {seeded.discounts} discounts, {seeded.one_offs} one-off charges, "
            f"{seeded.consents} consents ({seeded.seconds:.1f} s)"
        )
        finance_user_ensure(password=finance_password())
        self.stdout.write(f"Finance staff: user {FINANCE_USERNAME!r} (demo_links prints the login)")
        support_user_ensure(password=support_password())
        self.stdout.write(f"Support agent: user {SUPPORT_USERNAME!r} (demo_links prints the login)")
        self.stdout.write(
            "Bill runs: e-mail and SMS go to in-memory carriers while seeding; every message "
            "is kept in the outbox (OutboundMessage)."
        )
        with (
            override_settings(**QUIET_CARRIERS),
            quiet_task_log(),
        ):
            for period in history_periods(today):
                started = time.monotonic()
                _first, last = month_bounds(period)
                run = bill_run_start(period=period, invoice_date=last + timedelta(days=1))
                before = run.invoices_issued
                run = bill_run_execute(bill_run_id=run.id)
                self.stdout.write(
                    f"  {period:%Y-%m}: {run.invoices_issued - before} invoices issued now, "
                    f"{run.invoices_issued} in all, {run.status} "
                    f"({time.monotonic() - started:.1f} s)"
                )
        self.stdout.write(
            "PDFs: rendered on first download (/i/<token>/invoice.pdf), not while seeding."
        )
        started = time.monotonic()
        customer_ids = list(Customer.objects.values_list("id", flat=True))
        offers = offers_generate(customer_ids=customer_ids, today=today)
        self.stdout.write(
            f"Offers: {offers} open offers from the last months' usage "
            f"({time.monotonic() - started:.1f} s)"
        )
        self.stdout.write(self.style.SUCCESS("Demo data ready. Links: manage.py demo_links"))
