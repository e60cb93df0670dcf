"""The legal arithmetic of dunning, pure: reminder fees within their cap, late-payment interest
in öre. No database, no clock: the services pass in what they read.

Interest (dröjsmålsränta, räntelagen § 6 with § 9) runs on the capital, the unpaid part of
the invoice itself, never on fees or earlier interest. A day's interest is
``capital that day × yearly rate / 100 / 365``; the exact sum over a period is rounded once,
half-up to öre (``core.money.quantize_ore``). The capital on a day is what was unpaid when the
day began: money that arrives on a day stops interest from the next day, so paying one day
late costs one day's interest. Payments pay the capital first (then interest, then fees), so
interest stops on what the customer has paid.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from core.money import ZERO, quantize_ore

DAYS_IN_YEAR = Decimal(365)


def reminder_fee(
    *,
    step_fee: Decimal,
    cap: Decimal,
    agreed_on: date | None,
    debt_arose_on: date,
    earlier_fees: Decimal,
) -> Decimal:
    """The reminder fee a reminder may add: none unless the customer agreed to one on or
    before the day the debt began to arise (the first day of the period invoiced), none when
    the claim carries one already (one per claim), and never above ``cap`` (60 kr)."""
    if agreed_on is None or agreed_on > debt_arose_on:
        return ZERO
    if earlier_fees > 0 or step_fee <= 0:
        return ZERO
    return min(step_fee, cap)


def interest_rate(*, reference_rate: Decimal, margin: Decimal) -> Decimal:
    """The yearly late-payment rate in percent: the reference rate plus the margin (8 pp)."""
    return reference_rate + margin


@dataclass(frozen=True)
class Reduction:
    """The capital went down by ``amount`` kronor on ``on`` (a payment, a credit note)."""

    on: date
    amount: Decimal


def capital_on(capital: Decimal, reductions: Iterable[Reduction], day: date) -> Decimal:
    """What was unpaid of ``capital`` when ``day`` began (never below zero)."""
    left = capital - sum((r.amount for r in reductions if r.on < day), ZERO)
    return max(left, ZERO)


def capital_days(
    *, capital: Decimal, reductions: list[Reduction], after: date, through: date
) -> Decimal:
    """The capital summed over the days after ``after`` up to and including ``through``
    (kronor × days), exact. Counts in segments between the days the capital changed, so a
    year costs as much work as a week."""
    if through <= after:
        return Decimal(0)
    # the capital changes the day after a reduction (money that arrives on a day stops
    # interest from the next day)
    cuts = sorted({r.on + timedelta(days=1) for r in reductions})
    total = Decimal(0)
    start = after + timedelta(days=1)  # the first day that owes interest
    end = through + timedelta(days=1)
    for cut in [*(c for c in cuts if start < c < end), end]:
        days = (cut - start).days  # days start … cut-1, all with the same capital
        total += capital_on(capital, reductions, start) * days
        start = cut
    return total


def interest_exact(
    *, capital: Decimal, reductions: list[Reduction], after: date, through: date, rate: Decimal
) -> Decimal:
    """Interest, before rounding, for the days after ``after`` up to and including
    ``through`` at ``rate`` percent a year: capital-days × rate / 100 / 365."""
    if rate <= 0:
        return Decimal(0)
    days = capital_days(capital=capital, reductions=reductions, after=after, through=through)
    return days * rate / 100 / DAYS_IN_YEAR


def interest(
    *, capital: Decimal, reductions: list[Reduction], after: date, through: date, rate: Decimal
) -> Decimal:
    """``interest_exact`` rounded half-up to öre."""
    return quantize_ore(
        interest_exact(
            capital=capital, reductions=reductions, after=after, through=through, rate=rate
        )
    )


@dataclass(frozen=True)
class Claim:
    """What is owed on an invoice, split as a collection claim states it (kronor).

    Payments pay the capital first, then interest, then fees; credit notes reduce only the
    capital. ``open`` equals ``invoices.services.payments.invoice_balance(...).open``.
    """

    capital: Decimal  # the invoice's total less credit notes and payments
    fees: Decimal  # reminder and instalment fees not yet paid
    interest: Decimal  # interest charged and not yet paid

    @property
    def open(self) -> Decimal:
        return self.capital + self.fees + self.interest


def claim_split(
    *, total: Decimal, credited: Decimal, paid: Decimal, fees: Decimal, interest: Decimal
) -> Claim:
    """Split what is open into capital, interest and fees (payments: capital first)."""
    capital = total - credited
    rest = paid
    capital_open = max(capital - rest, ZERO)
    rest = max(rest - capital, ZERO)
    interest_open = max(interest - rest, ZERO)
    rest = max(rest - interest, ZERO)
    fees_open = max(fees - rest, ZERO)
    return Claim(capital=capital_open, fees=fees_open, interest=interest_open)
