"""The terms of the customer's ways out before collection, pure: whether an invoice may be
postponed or paid in instalments on a day, the days a postponement may move its due date to,
an instalment plan's schedule, and when a plan is broken.

No database and no clock: the services and the pages pass in what they read
(``dunning.selectors.invoice_debt`` and the active ``DunningPolicy``), so the page offers
exactly what the service grants, and a refusal carries the same stable code on both.

The page offers a way out only where the policy says so (``postponement_enabled``,
``instalments_enabled``, ``instalment_min_amount``, one plan per invoice); an agent, who
has talked with the customer, may grant one also where the page does not offer it. The
limits bind both: one postponement per invoice of at most ``postponement_max_days`` after
the current due date, 2 to ``instalment_max_parts`` parts, a fee of at most
``DUNNING_INSTALMENT_FEE_CAP``, and nothing once the claim is handed to collection.
"""

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal

from core.errors import DomainError
from core.money import ZERO
from dunning.models import CaseStage, DunningPolicy
from invoices.models import InvoiceStatus

# An invoice in one of these has money the customer may still arrange to pay (not yet with
# collection).
ARRANGEABLE_STATUSES = frozenset(
    {InvoiceStatus.ISSUED, InvoiceStatus.PARTLY_PAID, InvoiceStatus.OVERDUE}
)
MIN_PARTS = 2
MAX_PARTS = 6  # the plan's parts, whatever the policy (a check on InstalmentPlan)


@dataclass(frozen=True)
class Debt:
    """What the terms need to know about one invoice now (kronor; dates Europe/Stockholm).

    ``open`` is what is owed (``invoice_balance(...).open``: fees and interest included);
    ``disputed`` the part of it under open dispute. ``case_due_date`` is the day the last
    reminder asked payment by, ``postponed_to`` the postponement's new due date.
    """

    invoice_id: int
    is_invoice: bool
    status: str
    due_date: date
    case_stage: str | None
    case_due_date: date | None
    postponed_to: date | None
    open: Decimal
    disputed: Decimal
    plan_active: bool
    plan_before: bool  # a plan was made on it before (completed or broken)

    @property
    def current_due_date(self) -> date:
        """The day payment is asked by now: the latest of the invoice's own, the last
        reminder's and a postponement's."""
        moved = [d for d in (self.case_due_date, self.postponed_to) if d is not None]
        return max([self.due_date, *moved])

    @property
    def moved_due_date(self) -> date | None:
        """The current due date when a reminder or a postponement moved it; else None."""
        current = self.current_due_date
        return current if current != self.due_date else None

    @property
    def handed_over(self) -> bool:
        return self.status == InvoiceStatus.COLLECTION or self.case_stage == CaseStage.HANDED_OVER

    @property
    def asked(self) -> Decimal:
        """What is open and not under dispute: what the customer is asked to pay. A plan
        splits all that is open (a disputed amount credited later shortens it); whether its
        parts are paid is judged on what is asked."""
        return max(self.open - self.disputed, ZERO)


def ways_out_refusal(debt: Debt, policy: DunningPolicy | None) -> DomainError | None:
    """Why no way out is open to the invoice at all, or None."""
    if not debt.is_invoice:
        return DomainError(code="not_an_invoice", message="A credit note has nothing to pay.")
    if debt.handed_over:
        return DomainError(
            code="handed_to_collection",
            message="The claim is with debt collection: it can no longer be changed here.",
        )
    if debt.status not in ARRANGEABLE_STATUSES or debt.open <= 0:
        return DomainError(code="nothing_to_pay", message="Nothing is left to pay.")
    if policy is None:
        return DomainError(
            code="ways_out_not_offered", message="No dunning policy is active: nothing to arrange."
        )
    return None


# --- postponement (anstånd) ------------------------------------------------------------------


@dataclass(frozen=True)
class PostponementWindow:
    """The new due dates a postponement may give, ``earliest`` to ``latest`` inclusive."""

    current: date
    earliest: date
    latest: date

    @property
    def empty(self) -> bool:
        return self.earliest > self.latest

    @property
    def days(self) -> int:
        """How many days the latest date adds to the current due date."""
        return (self.latest - self.current).days


def postponement_window(debt: Debt, policy: DunningPolicy, today: date) -> PostponementWindow:
    """From the day after the current due date (or after today, when it has passed) to
    ``postponement_max_days`` after the current due date."""
    current = debt.current_due_date
    earliest = max(current, today) + timedelta(days=1)
    return PostponementWindow(
        current=current,
        earliest=earliest,
        latest=current + timedelta(days=policy.postponement_max_days),
    )


def postponement_refusal(
    debt: Debt, policy: DunningPolicy | None, today: date, *, by_agent: bool
) -> DomainError | None:
    """Why the invoice may not be postponed today, or None."""
    refusal = ways_out_refusal(debt, policy)
    if refusal is not None or policy is None:
        return refusal
    if not by_agent and not policy.postponement_enabled:
        return DomainError(code="postponement_not_offered", message="Postponements are off.")
    if debt.postponed_to is not None:
        return DomainError(
            code="already_postponed",
            message=f"The due date was postponed once already, to {debt.postponed_to}.",
        )
    if debt.plan_active:
        return DomainError(
            code="instalment_plan_active",
            message="An instalment plan runs: its parts have their own dates.",
        )
    if postponement_window(debt, policy, today).empty:
        return DomainError(
            code="postponement_too_late",
            message="The latest day a postponement may give has passed.",
        )
    return None


def postponement_date_refusal(window: PostponementWindow, new_due_date: date) -> DomainError | None:
    """Why ``new_due_date`` is not one the window allows, or None."""
    if window.earliest <= new_due_date <= window.latest:
        return None
    return DomainError(
        code="postponement_date_invalid",
        message=f"Choose a day from {window.earliest} to {window.latest}.",
    )


# --- instalment plans (avbetalningsplan) -----------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One part of a plan: its number (1…), due date and amount (kronor)."""

    number: int
    due_date: date
    amount: Decimal


def instalment_parts_choices(policy: DunningPolicy) -> list[int]:
    """The numbers of parts a plan may have: 2 to the policy's most (never over 6)."""
    most = max(MIN_PARTS, min(MAX_PARTS, policy.instalment_max_parts))
    return list(range(MIN_PARTS, most + 1))


def instalment_refusal(
    debt: Debt, policy: DunningPolicy | None, *, by_agent: bool
) -> DomainError | None:
    """Why no instalment plan may be made on the invoice now, or None."""
    refusal = ways_out_refusal(debt, policy)
    if refusal is not None or policy is None:
        return refusal
    if not by_agent and not policy.instalments_enabled:
        return DomainError(code="instalments_not_offered", message="Instalment plans are off.")
    if debt.plan_active:
        return DomainError(
            code="instalment_plan_active", message="An instalment plan runs on this invoice."
        )
    if not by_agent and debt.plan_before:
        return DomainError(
            code="instalment_plan_before",
            message="The invoice had a plan before: only support can make another.",
        )
    if not by_agent and debt.open < policy.instalment_min_amount:
        return DomainError(
            code="instalment_amount_too_small",
            message=f"Plans are offered from {policy.instalment_min_amount} kr open.",
        )
    if debt.open < MIN_PARTS:
        return DomainError(code="instalment_amount_too_small", message="Too little to split.")
    return None


def instalment_parts_refusal(policy: DunningPolicy, parts: int) -> DomainError | None:
    choices = instalment_parts_choices(policy)
    if parts in choices:
        return None
    return DomainError(
        code="instalment_parts_invalid",
        message=f"Choose {choices[0]} to {choices[-1]} parts.",
    )


def instalment_fee_refusal(fee: Decimal, cap: Decimal) -> DomainError | None:
    """A plan's fee is at most the legal cap (förordning (1981:1057)), never negative."""
    if ZERO <= fee <= cap:
        return None
    return DomainError(
        code="instalment_fee_above_cap", message=f"A plan's fee is 0 to {cap} kr by law."
    )


def instalment_first_due(debt: Debt, policy: DunningPolicy, today: date) -> date:
    """The first part's day: the current due date, or ``instalment_first_due_days`` from
    today when that is later (the customer asked for time, so they get some)."""
    return max(debt.current_due_date, today + timedelta(days=policy.instalment_first_due_days))


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or that month's last day when it is shorter
    (31 January + 1 month = 28 February)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def instalment_schedule(*, total: Decimal, parts: int, first_due: date) -> list[Part]:
    """``total`` (kronor) in ``parts`` parts a month apart from ``first_due``, summing to it
    exactly: whole kronor, as even as they can be (the first parts take the kronor the
    division leaves, one each), and the öre of ``total``, if any, on the first part.

    Raises ``DomainError`` (``instalment_amount_too_small``) when a part would be under 1 kr.
    """
    whole = total.to_integral_value(rounding=ROUND_FLOOR)
    ore = total - whole
    base, extra = divmod(int(whole), parts)
    if base < 1:
        raise DomainError(code="instalment_amount_too_small", message="Too little to split.")
    return [
        Part(
            number=number,
            due_date=add_months(first_due, number - 1),
            amount=(
                Decimal(base + (1 if number <= extra else 0)) + (ore if number == 1 else 0)
            ).quantize(Decimal("0.01")),
        )
        for number in range(1, parts + 1)
    ]


def instalment_missed(
    parts: list[Part], *, asked: Decimal, today: date, grace_days: int
) -> Part | None:
    """The first part not paid in time, or None.

    A part's day has passed with ``grace_days`` to spare (a payment takes a banking day or
    two to reach us) and what is still asked (``Debt.asked``) is more than the parts after it
    add up to: the customer has paid less than the parts up to it. Payments count in order,
    whenever they came, so paying early or paying two parts at once is fine.
    """
    for index, part in enumerate(parts):
        if part.due_date + timedelta(days=grace_days) >= today:
            return None  # this part and the ones after it may still be paid
        after = sum((later.amount for later in parts[index + 1 :]), ZERO)
        if asked > after:
            return part
    return None
