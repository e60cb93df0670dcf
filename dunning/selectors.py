"""Reads the dunning engine, the page and the admin share."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Sum

from dunning.models import Dispute, DisputeStatus, InstalmentPlan, PlanStatus, Postponement

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class DunningHold:
    """What holds an invoice's dunning back on a day.

    ``postponed_to``: the new due date of the invoice's postponement (anstånd), if it has one,
    whether or not it has passed: the steps count from it once it has. ``plan_active``: an
    instalment plan is being paid. ``disputed``: kronor under open dispute, left out of what a
    reminder asks, of interest and of a collection claim.
    """

    today: date
    postponed_to: date | None = None
    plan_active: bool = False
    disputed: Decimal = ZERO

    @property
    def holds_reminders(self) -> bool:
        """No reminder, final notice or handover while this is true."""
        postponed = self.postponed_to is not None and self.today <= self.postponed_to
        return postponed or self.plan_active

    def due_date(self, current: date) -> date:
        """The due date the next step counts from: the later of the case's and the
        postponement's."""
        if self.postponed_to is not None and self.postponed_to > current:
            return self.postponed_to
        return current


def invoices_dunning_holds(*, invoice_ids: Iterable[int], today: date) -> dict[int, DunningHold]:
    """Holds for a chunk of invoices in three queries; every id gets an entry."""
    ids = list(invoice_ids)
    postponed = dict(
        Postponement.objects.filter(invoice_id__in=ids).values_list("invoice_id", "new_due_date")
    )
    planned = set(
        InstalmentPlan.objects.filter(invoice_id__in=ids, status=PlanStatus.ACTIVE).values_list(
            "invoice_id", flat=True
        )
    )
    disputed = {
        row["invoice_id"]: row["total"]
        for row in Dispute.objects.filter(invoice_id__in=ids, status=DisputeStatus.OPEN)
        .values("invoice_id")
        .annotate(total=Sum("amount"))
    }
    return {
        invoice_id: DunningHold(
            today=today,
            postponed_to=postponed.get(invoice_id),
            plan_active=invoice_id in planned,
            disputed=disputed.get(invoice_id) or ZERO,
        )
        for invoice_id in ids
    }


def invoice_dunning_hold(*, invoice_id: int, today: date) -> DunningHold:
    """What holds one invoice's dunning back on ``today`` (Europe/Stockholm)."""
    return invoices_dunning_holds(invoice_ids=[invoice_id], today=today)[invoice_id]
