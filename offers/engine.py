"""The recommendation engine: what each plan for sale would have cost this customer.

Pure functions over integers (öre, thousandths of a MB, seconds) so that a hundred thousand
subscriptions are priced against the whole catalogue in seconds. The rules are the bill
run's (``billing.rating``): a month's fee plus overage per started GB (1 GB = 1,024 MB),
per started minute of the month's calls and per SMS. Roaming outside the EU/EEA is priced
by zone, the same on every plan, so it never changes which plan is cheaper and is left out.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import NamedTuple

MILLI_MB_PER_GB = 1024 * 1000


class MonthUsage(NamedTuple):
    """One month of a subscription's usage. A named tuple, not a frozen dataclass: a run
    builds six per subscription, a hundred thousand subscriptions at a time, and a tuple is
    made several times faster while staying just as immutable."""

    month: date
    data_milli_mb: int  # thousandths of a MB, at home and in the EU/EEA
    voice_seconds: int
    sms: int


@dataclass(frozen=True)
class Tariff:
    """A plan at a price, in öre. ``None`` allowances are unlimited."""

    plan_id: int
    name: str
    price: int
    data_included_gb: Decimal | None
    voice_included_minutes: int | None
    sms_included: int | None
    data_overage_per_gb: int
    voice_overage_per_minute: int
    sms_overage_each: int

    # The data allowance in thousandths of a MB, None when data is unlimited or costs nothing
    # beyond it: derived once here, not from the Decimal in every month_cost (a hot loop).
    data_included_milli_mb: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        included = None
        if self.data_included_gb is not None and self.data_overage_per_gb:
            included = int(self.data_included_gb * MILLI_MB_PER_GB)
        object.__setattr__(self, "data_included_milli_mb", included)

    def month_cost(self, usage: MonthUsage) -> int:
        """What a month of ``usage`` costs on this tariff, in öre."""
        cost = self.price
        if self.data_included_milli_mb is not None:
            beyond = usage.data_milli_mb - self.data_included_milli_mb
            if beyond > 0:
                cost += -(-beyond // MILLI_MB_PER_GB) * self.data_overage_per_gb
        if self.voice_included_minutes is not None and self.voice_overage_per_minute:
            beyond = -(-usage.voice_seconds // 60) - self.voice_included_minutes
            if beyond > 0:
                cost += beyond * self.voice_overage_per_minute
        if self.sms_included is not None and self.sms_overage_each:
            beyond = usage.sms - self.sms_included
            if beyond > 0:
                cost += beyond * self.sms_overage_each
        return cost

    def window_cost(self, months: Sequence[MonthUsage]) -> list[int]:
        return [self.month_cost(month) for month in months]


def ore(amount: Decimal) -> int:
    return int(amount * 100)


@dataclass(frozen=True)
class Recommendation:
    tariff: Tariff
    current_costs: list[int]  # öre per month of the window, on the current plan and price
    offered_costs: list[int]  # öre per month, had the customer had the recommended tariff

    @property
    def monthly_saving(self) -> int:
        """Average saving per month over the window, in öre (positive: the offer is cheaper)."""
        months = len(self.current_costs)
        return (sum(self.current_costs) - sum(self.offered_costs)) // months

    @property
    def current_monthly_cost(self) -> int:
        return sum(self.current_costs) // len(self.current_costs)

    @property
    def offered_monthly_cost(self) -> int:
        return sum(self.offered_costs) // len(self.offered_costs)


def recommend(
    current: Tariff, candidates: Sequence[Tariff], months: Sequence[MonthUsage]
) -> Recommendation | None:
    """The candidate that would have cost least over ``months``, if it is cheaper than the
    current tariff over the same months; None when the current one is already the best.

    Never recommends a tariff that would have cost more. Ties go to the tariff with the
    bigger data allowance (more room for the same money).
    """
    if not months:
        return None
    current_costs = current.window_cost(months)
    current_total = sum(current_costs)
    best: tuple[int, float, Tariff, list[int]] | None = None
    for tariff in candidates:
        if tariff.plan_id == current.plan_id and tariff.price == current.price:
            continue
        costs = tariff.window_cost(months)
        total = sum(costs)
        room = float("inf") if tariff.data_included_gb is None else float(tariff.data_included_gb)
        key = (total, -room)
        if total < current_total and (best is None or key < (best[0], best[1])):
            best = (total, -room, tariff, costs)
    if best is None:
        return None
    return Recommendation(tariff=best[2], current_costs=current_costs, offered_costs=best[3])
