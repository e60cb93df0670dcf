"""``monthly_usage`` reads billed months from the bill run's roll-up and sums the records of
the other months: the same answer as summing every record, in two queries at most."""

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import Subscription
from invoices.services.bill_run import bill_run_execute, bill_run_start
from offers.engine import MonthUsage
from offers.services import STOCKHOLM, monthly_usage, monthly_usage_queryset
from tests.factories import RoamingZoneFactory, SubscriptionFactory, UsageRecordFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 12, 1)  # the usage window: June to November 2026
WINDOW = [date(2026, month, 1) for month in range(6, 12)]
SEP, OCT, NOV = date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)


def _bill(*months: date) -> None:
    for month in months:
        run = bill_run_start(period=month, invoice_date=TODAY)
        bill_run_execute(bill_run_id=run.id)


def _usage(sub: Subscription, kind: str, quantity: str, when: datetime, country: str = "") -> None:
    UsageRecordFactory(
        subscription=sub, kind=kind, quantity=Decimal(quantity), occurred_at=when, country=country
    )


def _all_raw(sub_ids: Sequence[int], today: date) -> dict[int, list[MonthUsage]]:
    """What ``monthly_usage`` returned before the roll-up: every month summed from records."""
    result: dict[int, list[MonthUsage]] = {}
    for sub_id, month, data, voice, sms in monthly_usage_queryset(sub_ids, today):
        result.setdefault(sub_id, []).append(MonthUsage(month, data, voice // 1000, sms // 1000))
    return result


def test_billed_and_unbilled_months_read_as_the_records_sum_them() -> None:
    # given usage in September and October (billed) and November (not billed yet), at home,
    # in the EU/EEA and outside it
    RoamingZoneFactory()
    sub = SubscriptionFactory()
    _usage(sub, "data", "1024.125", datetime(2026, 9, 3, tzinfo=UTC))
    _usage(sub, "voice", "61.9", datetime(2026, 9, 4, tzinfo=UTC))
    _usage(sub, "data", "200.250", datetime(2026, 10, 9, tzinfo=UTC), country="ES")
    _usage(sub, "data", "300", datetime(2026, 10, 10, tzinfo=UTC), country="US")
    _usage(sub, "sms", "3", datetime(2026, 10, 11, tzinfo=UTC))
    _usage(sub, "data", "10.001", datetime(2026, 11, 30, 22, 59, tzinfo=UTC))  # 23:59 local
    before = _all_raw([sub.id], TODAY)
    # when September and October are billed and the offers read the window
    _bill(SEP, OCT)
    months = monthly_usage([sub.id], TODAY)
    # then exactly what the records give, by hand and as the raw path gave it before
    assert months == {
        sub.id: [
            MonthUsage(SEP, 1_024_125, 61, 0),
            MonthUsage(OCT, 200_250, 0, 3),
            MonthUsage(NOV, 10_001, 0, 0),
        ]
    }
    assert months == before


def test_a_lower_case_country_counts_alike_billed_or_not() -> None:
    # given EU/EEA data recorded as "es" in October (billed) and November (not billed yet)
    sub = SubscriptionFactory()
    _usage(sub, "data", "100", datetime(2026, 10, 9, tzinfo=UTC), country="es")
    _usage(sub, "data", "50", datetime(2026, 11, 9, tzinfo=UTC), country="es")
    _bill(OCT)
    # then both months count it, as the bill run does
    assert monthly_usage([sub.id], TODAY) == {
        sub.id: [MonthUsage(OCT, 100_000, 0, 0), MonthUsage(NOV, 50_000, 0, 0)]
    }


def test_a_billed_month_keeps_the_usage_it_was_billed_for() -> None:
    # given October billed with 100 MB
    sub = SubscriptionFactory()
    _usage(sub, "data", "100", datetime(2026, 10, 5, tzinfo=UTC))
    _bill(OCT)
    # when usage for October and November arrives after the bill run
    _usage(sub, "data", "50", datetime(2026, 10, 6, tzinfo=UTC))
    _usage(sub, "data", "7", datetime(2026, 11, 6, tzinfo=UTC))
    # then October is what the invoice said; November, not billed, counts every record
    assert monthly_usage([sub.id], TODAY) == {
        sub.id: [MonthUsage(OCT, 100_000, 0, 0), MonthUsage(NOV, 7_000, 0, 0)]
    }


def test_a_billed_month_without_usage_is_left_out_as_before() -> None:
    # given a subscription with usage in September only, and every month billed
    sub = SubscriptionFactory()
    idle = SubscriptionFactory()
    _usage(sub, "sms", "2", datetime(2026, 9, 5, tzinfo=UTC))
    _bill(*WINDOW)
    # when the offers read the window
    months = monthly_usage([sub.id, idle.id], TODAY)
    # then only the month with usage is there: a zero roll-up row is no month of usage
    assert months == {sub.id: [MonthUsage(SEP, 0, 0, 2)]}


def test_a_window_billed_throughout_is_one_query(django_assert_num_queries) -> None:
    # given every month of the window billed
    subs = SubscriptionFactory.create_batch(3)
    for sub in subs:
        _usage(sub, "data", "10", datetime(2026, 8, 5, tzinfo=UTC))
    _bill(*WINDOW)
    # when the offers read it, then the roll-up alone answers
    with django_assert_num_queries(1):
        months = monthly_usage([s.id for s in subs], TODAY)
    assert months == {s.id: [MonthUsage(date(2026, 8, 1), 10_000, 0, 0)] for s in subs}


def test_months_without_a_roll_up_row_are_summed_in_one_more_query(
    django_assert_num_queries,
) -> None:
    # given one subscription all along and one that started in October, with usage in
    # October and November, and before the start (a SIM tested before activation)
    old = SubscriptionFactory()
    new = SubscriptionFactory(start_date=date(2026, 10, 10))
    for sub in (old, new):
        _usage(sub, "data", "1", datetime(2026, 10, 15, tzinfo=UTC))
        _usage(sub, "data", "2", datetime(2026, 11, 15, tzinfo=UTC))
    _usage(new, "data", "4", datetime(2026, 7, 15, tzinfo=UTC))
    before = _all_raw([old.id, new.id], TODAY)
    # and every month up to October billed: the new one from October only
    _bill(*WINDOW[:-1])
    # when the offers read the window, then two queries, and the records' answer
    with django_assert_num_queries(2):
        months = monthly_usage([new.id, old.id], TODAY)
    assert months == before
    assert list(months) == [old.id, new.id]
    assert months[new.id] == [
        MonthUsage(date(2026, 7, 1), 4_000, 0, 0),
        MonthUsage(OCT, 1_000, 0, 0),
        MonthUsage(NOV, 2_000, 0, 0),
    ]


# --- the property: roll-up + records equal the records alone ---------------------------

# The last three months of the window, where the examples put their usage and bill runs.
LATE = WINDOW[-3:]

_records = st.lists(
    st.tuples(
        st.integers(0, 2),  # which subscription
        st.sampled_from(["data", "voice", "sms"]),
        st.integers(0, 20_000_000).map(lambda thousandths: Decimal(thousandths).scaleb(-3)),
        # when: minutes from the start of a month in Stockholm, an hour and a half either
        # side of it included, so that records cross month bounds (and leave the window)
        st.sampled_from(LATE),
        st.integers(-90, 31 * 24 * 60 + 90),
        st.sampled_from(["", "", "", "SE", "ES", "NO", "US", "TR"]),
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    records=_records,
    billed=st.sets(st.sampled_from(LATE), min_size=1),
    starts=st.lists(st.sampled_from([date(2025, 1, 1), *LATE]), min_size=3, max_size=3),
)
def test_roll_up_and_records_equal_the_records_alone(
    records: list[tuple[int, str, Decimal, date, int, str]],
    billed: set[date],
    starts: list[date],
) -> None:
    # each example in a savepoint of its own, rolled back at the end
    with transaction.atomic():
        # given random usage of three subscriptions, some starting within the window
        RoamingZoneFactory()
        subs = [SubscriptionFactory(start_date=start) for start in starts]
        for i, (index, kind, quantity, month, minutes, country) in enumerate(records):
            UsageRecordFactory(
                subscription=subs[index],
                source_id=f"p-{subs[index].id}-{i}",
                kind=kind,
                quantity=quantity,
                occurred_at=datetime.combine(month, time.min, tzinfo=STOCKHOLM)
                + timedelta(minutes=minutes),
                country=country,
            )
        sub_ids = [s.id for s in subs]
        expected = _all_raw(sub_ids, TODAY)
        # when some of the months are billed
        _bill(*sorted(billed))
        # then the roll-up and the records of the other months give the records' answer
        assert monthly_usage(sub_ids, TODAY) == expected
        transaction.set_rollback(True)
