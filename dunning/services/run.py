"""One pass of the dunning engine over the whole book, as the beat task runs it.

Each phase reads the ids it may act on in chunks of ``DUNNING_CHUNK_SIZE`` (keyset pages, so
memory stays bounded however many invoices there are) and acts on each invoice in its own
transaction with the services of ``dunning.services.steps``, skipping invoices another worker
holds (``skip_locked``): they are that worker's now, or the next run's. Running a pass twice,
or two at once, sends nothing twice.
"""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db.models import QuerySet

from core.errors import DomainError
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

logger = logging.getLogger(__name__)


@dataclass
class DunningRunReport:
    closed: int = 0  # cases whose invoice was paid or credited
    overdue: int = 0  # invoices found overdue (cases opened)
    friendly_notices: int = 0
    steps: int = 0  # reminders and final notices
    refused: int = 0  # invoices a rule stopped (logged; the others go on)


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

    def each(ids: Iterator[int], act: Callable[[int], object]) -> int:
        done = 0
        for id_ in ids:
            try:
                done += act(id_) is not None
            except DomainError as exc:  # e.g. no reference rate in force: the rest go on
                report.refused += 1
                logger.warning("dunning: %s refused: %s (%s)", id_, exc.message, exc.code)
        return done

    invoices = Invoice.objects.filter(kind=DocumentKind.INVOICE)
    report.overdue = each(
        ids_in_chunks(invoices.filter(status__in=NOT_YET_OVERDUE, due_date__lt=today)),
        lambda id_: invoice_mark_overdue(invoice_id=id_, today=today, skip_locked=True),
    )
    policy = active_policy()
    if policy is not None and policy.friendly_notice_enabled:
        window = today + timedelta(days=policy.friendly_notice_days_before)
        upcoming = invoices.filter(
            status__in=NOT_YET_OVERDUE, due_date__gte=today, due_date__lte=window
        ).exclude(dunning_actions__key="friendly_notice")
        report.friendly_notices = each(
            ids_in_chunks(upcoming),
            lambda id_: invoice_friendly_notice_send(invoice_id=id_, today=today, skip_locked=True),
        )
    due = DunningCase.objects.filter(stage__in=RUNNING_STAGES, next_action_on__lte=today)
    report.steps = each(
        ids_in_chunks(due),
        lambda id_: case_step_run(case_id=id_, today=today, skip_locked=True),
    )
    return report
