"""python manage.py dunning_run [--date YYYY-MM-DD]: one pass of the dunning engine, as the
beat task runs it (idempotent: a second pass the same day sends nothing)."""

from datetime import date

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from dunning.services.run import dunning_run


class Command(BaseCommand):
    help = "Overdue invoices, friendly notices, reminders and final notices due on a day."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--date",
            type=date.fromisoformat,
            default=None,
            help="The day to act as of (Europe/Stockholm), default today. Only for catching "
            "up a missed day: messages say the dates they are sent with.",
        )

    def handle(self, *args: object, **options: date | None) -> None:
        today = options["date"] or timezone.localdate()
        report = dunning_run(today=today)
        self.stdout.write(
            f"Dunning {today}: {report.overdue} overdue, {report.friendly_notices} friendly "
            f"notices, {report.steps} reminders and final notices, {report.closed} cases "
            f"closed, {report.refused} refused (see the log)."
        )
