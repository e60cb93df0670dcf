"""Dunning fixtures: an October invoice of 299 kr (invoice date 1 November 2026, due
1 December 2026) and a day to run the engine on, with time frozen at noon in Stockholm."""

from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from dunning.services.run import DunningRunReport, dunning_run
from invoices.models import Invoice
from tests.chat.conftest import issue_october
from tests.factories import SubscriptionFactory

STOCKHOLM = ZoneInfo("Europe/Stockholm")
DUE = date(2026, 12, 1)


def make_invoice(*, agreed_on: date | None = None, price: str = "299.00", **customer) -> Invoice:
    """One customer's October invoice (``agreed_on``: the day they agreed to a reminder fee)."""
    sub = SubscriptionFactory(
        agreed_monthly_price=Decimal(price),
        customer__reminder_fee_agreed_on=agreed_on,
        **{f"customer__{key}": value for key, value in customer.items()},
    )
    (invoice,) = [i for i in issue_october() if i.customer_id == sub.customer_id]
    return invoice


@pytest.fixture
def invoice() -> Invoice:
    """299 kr due 1 December 2026; the customer agreed to a reminder fee in 2025."""
    return make_invoice(agreed_on=date(2025, 1, 1))


@pytest.fixture
def run_on(django_capture_on_commit_callbacks) -> Iterator[Callable[[date], DunningRunReport]]:
    """``run_on(day)``: the engine's pass on ``day``, with the clock at noon that day and the
    messages handed to the carriers as after a commit."""
    travellers: list[time_machine.travel] = []

    def run(day: date) -> DunningRunReport:
        traveller = time_machine.travel(
            datetime(day.year, day.month, day.day, 12, tzinfo=STOCKHOLM)
        )
        traveller.start()
        travellers.append(traveller)
        with django_capture_on_commit_callbacks(execute=True):
            return dunning_run(today=day)

    yield run
    for traveller in reversed(travellers):
        traveller.stop()
