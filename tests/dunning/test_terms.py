"""The terms of the ways out, pure: the postponement window, the plan's schedule, a missed
part."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dunning.models import CaseStage, DunningPolicy
from dunning.terms import (
    Debt,
    Part,
    add_months,
    instalment_missed,
    instalment_parts_choices,
    instalment_refusal,
    instalment_schedule,
    postponement_refusal,
    postponement_window,
)

DUE = date(2026, 12, 1)


def debt(**changes: object) -> Debt:
    values: dict[str, object] = {
        "invoice_id": 1,
        "is_invoice": True,
        "status": "issued",
        "due_date": DUE,
        "case_stage": None,
        "case_due_date": None,
        "postponed_to": None,
        "open": Decimal("299.00"),
        "disputed": Decimal("0.00"),
        "plan_active": False,
        "plan_before": False,
        **changes,
    }
    return Debt(**values)  # type: ignore[arg-type]


def policy(**changes: object) -> DunningPolicy:
    return DunningPolicy(name="Test", **changes)


def test_the_window_runs_from_the_day_after_the_due_date_to_the_policys_days() -> None:
    window = postponement_window(debt(), policy(postponement_max_days=30), date(2026, 11, 20))
    assert (window.current, window.earliest, window.latest) == (
        DUE,
        date(2026, 12, 2),
        date(2026, 12, 31),
    )
    assert window.days == 30


def test_past_the_due_date_the_window_starts_tomorrow() -> None:
    window = postponement_window(debt(), policy(), date(2026, 12, 10))
    assert window.earliest == date(2026, 12, 11)


def test_the_current_due_date_is_the_latest_a_reminder_or_postponement_gave() -> None:
    assert debt(case_due_date=date(2026, 12, 20)).current_due_date == date(2026, 12, 20)
    assert debt(postponed_to=date(2026, 12, 28)).current_due_date == date(2026, 12, 28)
    assert debt(case_due_date=date(2026, 11, 1)).current_due_date == DUE


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"status": "collection"}, "handed_to_collection"),
        ({"case_stage": CaseStage.HANDED_OVER}, "handed_to_collection"),
        ({"status": "paid", "open": Decimal(0)}, "nothing_to_pay"),
        ({"is_invoice": False}, "not_an_invoice"),
        ({"postponed_to": date(2026, 12, 10)}, "already_postponed"),
        ({"plan_active": True}, "instalment_plan_active"),
    ],
)
def test_why_a_postponement_is_not_offered(changes: dict[str, object], code: str) -> None:
    refusal = postponement_refusal(debt(**changes), policy(), date(2026, 11, 20), by_agent=True)
    assert refusal is not None
    assert refusal.code == code


def test_without_a_policy_nothing_is_offered() -> None:
    refusal = postponement_refusal(debt(), None, date(2026, 11, 20), by_agent=True)
    assert refusal is not None
    assert refusal.code == "ways_out_not_offered"


def test_a_plan_is_for_what_is_open_not_for_what_is_disputed_only() -> None:
    # 150 kr disputed of 299: the page's minimum counts what is open
    assert (
        instalment_refusal(
            debt(disputed=Decimal("150")), policy(instalment_min_amount=200), by_agent=False
        )
        is None
    )


def test_the_parts_offered_are_two_to_the_policys_most() -> None:
    assert instalment_parts_choices(policy(instalment_max_parts=4)) == [2, 3, 4]
    assert instalment_parts_choices(policy(instalment_max_parts=6)) == [2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2027, 12, 15), 2, date(2028, 2, 15)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 8, 31), 4, date(2026, 12, 31)),
    ],
)
def test_a_month_later_is_the_same_day_or_the_months_last(
    day: date, months: int, expected: date
) -> None:
    assert add_months(day, months) == expected


@given(
    ore=st.integers(min_value=600, max_value=10_000_000),  # at least 1 kr a part
    parts=st.integers(min_value=2, max_value=6),
)
def test_a_schedule_sums_exactly_in_whole_kronor_but_the_first_part(ore: int, parts: int) -> None:
    total = Decimal(ore).scaleb(-2)
    schedule = instalment_schedule(total=total, parts=parts, first_due=date(2026, 1, 31))
    amounts = [part.amount for part in schedule]
    assert sum(amounts) == total
    assert all(amount == amount.to_integral_value() for amount in amounts[1:])
    assert max(amounts) - min(amounts) < 2  # as even as whole kronor allow
    assert [part.number for part in schedule] == list(range(1, parts + 1))
    assert len({part.due_date for part in schedule}) == parts


def test_a_part_under_one_krona_is_refused() -> None:
    from core.errors import DomainError

    with pytest.raises(DomainError) as refused:
        instalment_schedule(total=Decimal("5.00"), parts=6, first_due=DUE)
    assert refused.value.code == "instalment_amount_too_small"


PARTS = [
    Part(1, date(2026, 12, 1), Decimal("100")),
    Part(2, date(2027, 1, 1), Decimal("100")),
    Part(3, date(2027, 2, 1), Decimal("99")),
]


@pytest.mark.parametrize(
    ("asked", "today", "missed"),
    [
        (Decimal("299"), date(2026, 12, 6), None),  # within the grace days
        (Decimal("299"), date(2026, 12, 7), 1),
        (Decimal("199"), date(2026, 12, 7), None),  # the first part paid
        (Decimal("199.01"), date(2026, 12, 7), 1),  # an öre short
        (Decimal("99"), date(2027, 1, 20), None),  # two parts paid (at once, or on time)
        (Decimal("150"), date(2027, 1, 7), 2),
        (Decimal("1"), date(2027, 3, 1), 3),
    ],
)
def test_a_part_is_missed_when_less_than_the_parts_up_to_it_was_paid_after_the_grace_days(
    asked: Decimal, today: date, missed: int | None
) -> None:
    found = instalment_missed(PARTS, asked=asked, today=today, grace_days=5)
    assert (found.number if found else None) == missed
