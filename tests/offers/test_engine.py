"""The engine's rules, with hand-checked figures, and its invariants."""

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from offers.engine import MonthUsage, Tariff, recommend
from offers.services import holdout_group


def tariff(plan_id: int, price_kr: int, gb: int | None, per_gb_kr: int = 29) -> Tariff:
    return Tariff(
        plan_id=plan_id,
        name=f"Mobil {gb} GB",
        price=price_kr * 100,
        data_included_gb=None if gb is None else Decimal(gb),
        voice_included_minutes=None,
        sms_included=None,
        data_overage_per_gb=per_gb_kr * 100,
        voice_overage_per_minute=0,
        sms_overage_each=0,
    )


def months(*gbs: float) -> list[MonthUsage]:
    return [
        MonthUsage(
            month=date(2026, m + 1, 1), data_milli_mb=int(gb * 1024 * 1000), voice_seconds=0, sms=0
        )
        for m, gb in enumerate(gbs)
    ]


SMALL, MEDIUM, LARGE, UNLIMITED = (
    tariff(1, 199, 3),
    tariff(2, 299, 10),
    tariff(3, 399, 30),
    tariff(4, 499, None),
)
CATALOGUE = [SMALL, MEDIUM, LARGE, UNLIMITED]


def test_a_light_user_on_a_big_plan_is_offered_the_plan_that_covers_them() -> None:
    # 1.5–2.8 GB a month on Mobil 30 GB at 399: Mobil 3 GB at 199 covers every month
    rec = recommend(LARGE, CATALOGUE, months(2.8, 1.5, 2.1))
    assert rec is not None
    assert rec.tariff == SMALL
    assert rec.monthly_saving == 200_00


def test_overage_makes_a_bigger_plan_cheaper_so_it_is_an_upgrade() -> None:
    # 14 GB a month on Mobil 10 GB: 299 + 4 × 29 = 415 a month; Mobil 30 GB costs 399
    rec = recommend(MEDIUM, CATALOGUE, months(14, 14, 14))
    assert rec is not None
    assert rec.tariff == LARGE
    assert rec.current_monthly_cost == 415_00
    assert rec.monthly_saving == 16_00


def test_nothing_is_recommended_when_the_current_plan_is_already_the_cheapest() -> None:
    assert recommend(MEDIUM, CATALOGUE, months(6, 8, 9.5)) is None


def test_an_occasional_month_of_overage_does_not_make_a_bigger_plan_cheaper() -> None:
    # one month at 12 GB costs 299 + 2 × 29; over three months Mobil 10 GB still wins
    assert recommend(MEDIUM, CATALOGUE, months(6, 12, 7)) is None


def test_an_existing_customer_paying_above_list_is_compared_at_what_they_pay() -> None:
    loyal = tariff(2, 349, 10)  # Mobil 10 GB at an old, higher price
    rec = recommend(loyal, CATALOGUE, months(8, 9, 9))
    assert rec is not None
    assert rec.tariff == MEDIUM
    assert rec.monthly_saving == 50_00


usage_months = st.lists(
    st.builds(
        MonthUsage,
        month=st.just(date(2026, 1, 1)),
        data_milli_mb=st.integers(0, 60 * 1024 * 1000),
        voice_seconds=st.integers(0, 10**6),
        sms=st.integers(0, 2000),
    ),
    min_size=3,
    max_size=6,
)
tariffs = st.builds(
    Tariff,
    plan_id=st.integers(1, 50),
    name=st.just("x"),
    price=st.integers(0, 100_000),
    data_included_gb=st.one_of(st.none(), st.integers(0, 50).map(Decimal)),
    voice_included_minutes=st.one_of(st.none(), st.integers(0, 3000)),
    sms_included=st.one_of(st.none(), st.integers(0, 3000)),
    data_overage_per_gb=st.integers(0, 10_000),
    voice_overage_per_minute=st.integers(0, 500),
    sms_overage_each=st.integers(0, 500),
)


@given(tariffs, st.lists(tariffs, max_size=8), usage_months)
def test_the_recommended_plan_never_costs_more_over_the_window(current, catalogue, window):
    rec = recommend(current, catalogue, window)
    if rec is None:
        # then no plan in the catalogue would have been cheaper
        assert all(
            sum(t.window_cost(window)) >= sum(current.window_cost(window))
            for t in catalogue
            if not (t.plan_id == current.plan_id and t.price == current.price)
        )
    else:
        assert sum(rec.offered_costs) < sum(rec.current_costs)
        # (a plan at the price the customer already pays is what they have: not a candidate)
        others = [t for t in catalogue if (t.plan_id, t.price) != (current.plan_id, current.price)]
        assert min(sum(t.window_cost(window)) for t in others) == sum(rec.offered_costs)


@given(st.integers(1, 10**9))
def test_holdout_assignment_is_stable(customer_id: int) -> None:
    first = holdout_group("right-size", customer_id, Decimal("0.1"))
    assert holdout_group("right-size", customer_id, Decimal("0.1")) == first


def test_holdout_is_close_to_its_share() -> None:
    groups = [holdout_group("right-size", i, Decimal("0.1")) for i in range(20_000)]
    share = groups.count("holdout") / len(groups)
    assert 0.09 < share < 0.11


@given(tariffs, usage_months)
def test_the_engine_prices_a_month_exactly_as_the_bill_run_does(t: Tariff, window) -> None:
    from billing.rating import PlanTerms, SubscriptionTerms, UsageTotals, rate_subscription

    plan = PlanTerms(
        code="p",
        name="p",
        monthly_fee=Decimal(t.price) / 100,
        data_included_gb=t.data_included_gb,
        voice_included_minutes=t.voice_included_minutes,
        sms_included=t.sms_included,
        data_overage_per_gb=Decimal(t.data_overage_per_gb) / 100,
        voice_overage_per_minute=Decimal(t.voice_overage_per_minute) / 100,
        sms_overage_each=Decimal(t.sms_overage_each) / 100,
        vat_rate=Decimal("0.25"),
    )
    sub = SubscriptionTerms(
        id=1,
        identifier="x",
        plan=plan,
        agreed_monthly_price=Decimal(t.price) / 100,
        start_date=date(2020, 1, 1),
        end_date=None,
    )
    month = window[0]
    usage = UsageTotals(
        data_mb=Decimal(month.data_milli_mb) / 1000,
        voice_seconds=Decimal(month.voice_seconds),
        sms=Decimal(month.sms),
    )
    lines = rate_subscription(sub, date(2026, 10, 1), usage, {})
    assert sum(line.amount for line in lines) * 100 == t.month_cost(month)
