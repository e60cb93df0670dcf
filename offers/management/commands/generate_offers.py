"""python manage.py generate_offers: compute every active customer's offers afresh."""

import time

from django.core.management.base import BaseCommand, CommandParser

from billing.models import Customer
from offers.services import offers_expire, offers_generate

BATCH = 2000


class Command(BaseCommand):
    help = "Compute offers from each customer's usage (and expire the old ones)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customer", action="append", help="Customer number (repeatable)")

    def handle(self, *args: object, **options: list[str] | None) -> None:
        customers = Customer.objects.order_by("id")
        numbers = options.get("customer")
        if numbers:
            customers = customers.filter(customer_number__in=numbers)
        ids = list(customers.values_list("id", flat=True))
        started = time.monotonic()
        written = 0
        for start in range(0, len(ids), BATCH):
            written += offers_generate(customer_ids=ids[start : start + BATCH])
            self.stdout.write(f"{min(start + BATCH, len(ids))}/{len(ids)} customers")
        expired = offers_expire()
        self.stdout.write(
            self.style.SUCCESS(
                f"{written} open offers for {len(ids)} customers, {expired} expired "
                f"({time.monotonic() - started:.1f} s)"
            )
        )
