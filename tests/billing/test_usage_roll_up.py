"""The bill run writes the month's usage roll-up (``UsageMonth``) from the usage it billed."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import BillRun, Subscription, UsageMonth
from invoices.services.bill_run import bill_run_execute, bill_run_start
from offers.services import monthly_usage_queryset
from tests.factories import RoamingZoneFactory, SubscriptionFactory, UsageRecordFactory

pytestmark = pytest.mark.django_db

OCT = date(2026, 10, 1)
IN_NOVEMBER = date(2026, 11, 15)  # the usage window of offers computed then ends with October


def _run(period: date = OCT) -> BillRun:
    run = bill_run_start(period=period, invoice_date=date(2026, 11, 1))
    return bill_run_execute(bill_run_id=run.id)


def _usage(sub: Subscription, kind: str, quantity: str, when: datetime, country: str = "") -> None:
    UsageRecordFactory(
        subscription=sub, kind=kind, quantity=Decimal(quantity), occurred_at=when, country=country
    )


def _rolled_up() -> dict[int, tuple[date, bool, int, int, int]]:
    return {
        sub_id: tuple(rest)
        for sub_id, *rest in UsageMonth.objects.values_list(
            "subscription_id",
            "month",
            "has_usage",
            "data_milli_mb",
            "voice_milli_seconds",
            "sms_milli",
        )
    }


def test_the_roll_up_holds_each_rated_subscription_s_billed_usage_as_the_raw_sum_gives_it() -> None:
    # given usage with fractional quantities at home, in the EU/EEA and outside it, on both
    # sides of October's bounds in Stockholm time, and a household with two numbers
    RoamingZoneFactory()
    heavy = SubscriptionFactory()
    _usage(heavy, "data", "1024.125", datetime(2026, 10, 3, 8, tzinfo=UTC))
    _usage(heavy, "data", "200.250", datetime(2026, 10, 9, 8, tzinfo=UTC), country="ES")
    _usage(heavy, "data", "300", datetime(2026, 10, 10, 8, tzinfo=UTC), country="US")
    _usage(heavy, "voice", "61.9", datetime(2026, 9, 30, 22, 30, tzinfo=UTC))  # 1 Oct, 00:30
    _usage(heavy, "voice", "10", datetime(2026, 10, 31, 23, 30, tzinfo=UTC))  # 1 Nov: not October
    _usage(heavy, "sms", "3", datetime(2026, 10, 20, 8, tzinfo=UTC), country="NO")
    household = SubscriptionFactory(customer=heavy.customer)
    _usage(household, "sms", "1", datetime(2026, 10, 20, 8, tzinfo=UTC))
    other = SubscriptionFactory()
    _usage(other, "data", "0.001", datetime(2026, 10, 31, 22, 59, tzinfo=UTC))  # 23:59
    # when October is billed
    _run()
    # then one row per rated subscription, with the figures the raw aggregate gives
    raw = {
        sub_id: (month, True, data, voice, sms)
        for sub_id, month, data, voice, sms in monthly_usage_queryset(None, IN_NOVEMBER)
    }
    assert _rolled_up() == raw
    assert raw[heavy.id] == (OCT, True, 1_224_375, 61_900, 3_000)
    assert raw[other.id] == (OCT, True, 1, 0, 0)
    assert raw.keys() == {heavy.id, household.id, other.id}


def test_a_subscription_without_usage_in_the_month_has_a_zero_row() -> None:
    # given a subscription with no usage in October, and one that only roamed outside the
    # EU/EEA (not part of the roll-up)
    RoamingZoneFactory()
    idle = SubscriptionFactory()
    abroad = SubscriptionFactory()
    _usage(abroad, "data", "500", datetime(2026, 10, 5, tzinfo=UTC), country="US")
    # when October is billed
    _run()
    # then both months are rolled up, with nothing used at home or in the EU/EEA
    assert _rolled_up() == {
        idle.id: (OCT, False, 0, 0, 0),
        abroad.id: (OCT, False, 0, 0, 0),
    }


def test_a_usage_record_of_quantity_zero_makes_a_month_with_usage() -> None:
    # given one record of nothing, as daily aggregates may say "no SMS today"
    sub = SubscriptionFactory()
    _usage(sub, "sms", "0", datetime(2026, 10, 5, tzinfo=UTC))
    # when October is billed
    _run()
    # then the month counts as one with usage, as the raw aggregate has a row for it
    assert _rolled_up() == {sub.id: (OCT, True, 0, 0, 0)}
    assert list(monthly_usage_queryset([sub.id], IN_NOVEMBER)) == [(sub.id, OCT, 0, 0, 0)]


def test_a_subscription_not_rated_in_the_month_gets_no_row() -> None:
    # given a subscription that starts after October
    later = SubscriptionFactory(start_date=date(2026, 11, 2))
    billed = SubscriptionFactory()
    # when October is billed
    _run()
    # then only the rated one is rolled up
    assert set(UsageMonth.objects.values_list("subscription_id", flat=True)) == {billed.id}
    assert not UsageMonth.objects.filter(subscription=later).exists()


def test_running_the_bill_run_again_writes_no_roll_up_row_twice() -> None:
    # given October billed once
    subs = SubscriptionFactory.create_batch(3)
    _usage(subs[0], "data", "100", datetime(2026, 10, 5, tzinfo=UTC))
    _run()
    first = _rolled_up()
    # when usage arrives late and the run is run again
    _usage(subs[0], "data", "50", datetime(2026, 10, 6, tzinfo=UTC))
    _run()
    # then nothing is written twice, and the month keeps the usage it was billed for
    assert UsageMonth.objects.count() == 3
    assert _rolled_up() == first
    assert first[subs[0].id] == (OCT, True, 100_000, 0, 0)


def test_a_chunk_s_queries_do_not_grow_with_its_customers() -> None:
    # given two groups of customers, of two and of six, with usage
    def customers(group: str, count: int) -> None:
        for sub in SubscriptionFactory.create_batch(count, customer__billing_group=group):
            _usage(sub, "data", "10", datetime(2026, 10, 5, tzinfo=UTC))

    customers("small", 2)
    customers("large", 6)
    counts = {}
    for group in ("small", "large"):
        run = bill_run_start(period=OCT, billing_group=group, invoice_date=date(2026, 11, 1))
        # when each group is billed in one chunk
        with CaptureQueriesContext(connection) as queries:
            bill_run_execute(bill_run_id=run.id)
        counts[group] = len(queries)
    # then both took the same number of queries, the roll-up's insert included
    assert counts["small"] == counts["large"]
    assert UsageMonth.objects.count() == 8
