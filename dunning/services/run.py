"""One pass of the dunning engine over the whole book, as the beat task runs it.

Each phase reads the ids it may act on in chunks of ``DUNNING_CHUNK_SIZE`` (keyset pages, so
memory stays bounded however many invoices there are) and acts on each invoice in its own
transaction with the services of ``dunning.services.steps``, skipping invoices another worker
holds (``skip_locked``): they are that worker's now, or the next run's. Running a pass twice,
or two at once, sends nothing twice.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db.models import QuerySet

from dunning.models import DunningCase
from dunning.selectors import active_policy
from dunning.services.steps import (
    NOT_YET_OVERDUE,
    RUNNING_STAGES,
    case_step_run,
    cases_close_settled,
    invoice_friendly_notice_send,
    invoice_mark_overdue,
)
from invoices.models import DocumentKind, Invoice


@dataclass
class DunningRunReport:
    closed: int = 0  # cases whose invoice was paid or credited
    overdue: int = 0  # invoices found overdue (cases opened)
    friendly_notices: int = 0
    steps: int = 0  # reminders and final notices


def ids_in_chunks(queryset: QuerySet[Invoice] | QuerySet[DunningCase]) -> Iterator[int]:
    """The ids of ``queryset`` in ascending order, read ``DUNNING_CHUNK_SIZE`` at a time."""
    last = 0
    size = settings.DUNNING_CHUNK_SIZE
    while True:
        batch = list(
            queryset.filter(id__gt=last).order_by("id").values_list("id", flat=True)[:size]
        )
        if not batch:
            return
        yield from batch
        last = batch[-1]


def dunning_run(*, today: date) -> DunningRunReport:
    """Close settled cases, find overdue invoices, send the day's friendly notices, and take
    every step whose day has come (``today``: Europe/Stockholm)."""
    report = DunningRunReport(closed=cases_close_settled())
    invoices = Invoice.objects.filter(kind=DocumentKind.INVOICE)
    for invoice_id in ids_in_chunks(
        invoices.filter(status__in=NOT_YET_OVERDUE, due_date__lt=today)
    ):
        if invoice_mark_overdue(invoice_id=invoice_id, today=today, skip_locked=True):
            report.overdue += 1
    policy = active_policy()
    if policy is not None and policy.friendly_notice_enabled:
        window = today + timedelta(days=policy.friendly_notice_days_before)
        upcoming = invoices.filter(
            status__in=NOT_YET_OVERDUE, due_date__gte=today, due_date__lte=window
        ).exclude(dunning_actions__key="friendly_notice")
        for invoice_id in ids_in_chunks(upcoming):
            if invoice_friendly_notice_send(invoice_id=invoice_id, today=today, skip_locked=True):
                report.friendly_notices += 1
    due = DunningCase.objects.filter(stage__in=RUNNING_STAGES, next_action_on__lte=today)
    for case_id in ids_in_chunks(due):
        if case_step_run(case_id=case_id, today=today, skip_locked=True):
            report.steps += 1
    return report
