"""Rating rules, with hand-checked figures, and the invariants of an invoice's totals."""

import dataclasses
from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing.rating import (
    DiscountTerms,
    LineDraft,
    OneOff,
    PlanPeriod,
    PlanTerms,
    SubscriptionTerms,
    Text,
    UsageTotals,
    ZonePrices,
    invoice_totals,
    month_allowance,
    rate_subscription,
)

OCT = date(2026, 10, 1)
PLAN = PlanTerms(
    code="mobil-10",
    name="Mobil 10 GB",
    monthly_fee=Decimal("299.00"),
    data_included_gb=Decimal("10"),
    voice_included_minutes=300,
    sms_included=None,
    data_overage_per_gb=Decimal("29.00"),
    voice_overage_per_minute=Decimal("0.49"),
    sms_overage_each=Decimal("0.69"),
    vat_rate=Decimal("0.25"),
)
ZONES = {"usa": ZonePrices("usa", "USA", Decimal("0.50"), Decimal("9.90"), Decimal("3.90"))}


def sub(**overrides: object) -> SubscriptionTerms:
    values: dict[str, object] = {
        "id": 1,
        "identifier": "+46701234567",
        "plan": PLAN,
        "agreed_monthly_price": Decimal("299.00"),
        "start_date": date(2025, 1, 1),
        "end_date": None,
    }
    values.update(overrides)
    return SubscriptionTerms(**values)  # type: ignore[arg-type]


def amounts(lines: list[LineDraft]) -> dict[str, Decimal]:
    result: dict[str, Decimal] = {}
    for line in lines:
        result[line.kind] = result.get(line.kind, Decimal(0)) + line.amount
    return result


def test_a_full_month_costs_the_agreed_price() -> None:
    lines = rate_subscription(sub(), OCT, UsageTotals(), ZONES)
    assert amounts(lines) == {"fee": Decimal("299.00")}


def test_a_subscription_starting_mid_month_pays_by_day() -> None:
    # 16 October to 31 October is 16 of 31 days: 299 × 16 / 31 = 154.322… → 154.32
    lines = rate_subscription(sub(start_date=date(2026, 10, 16)), OCT, UsageTotals(), ZONES)
    assert amounts(lines) == {"fee": Decimal("154.32")}
    assert lines[0].quantity == 16


def test_a_subscription_ended_before_the_month_is_not_billed() -> None:
    lines = rate_subscription(sub(end_date=date(2026, 9, 30)), OCT, UsageTotals(), ZONES)
    assert lines == []


def test_a_discount_applies_until_its_end_date() -> None:
    # 100 kr a month ending 15 October: 15 of 31 days = 48.39 off
    discount = DiscountTerms("Kampanj", Decimal("100"), date(2026, 4, 1), date(2026, 10, 15))
    lines = rate_subscription(sub(discounts=(discount,)), OCT, UsageTotals(), ZONES)
    assert amounts(lines)["discount"] == Decimal("-48.39")


def test_data_beyond_included_is_billed_per_started_gb() -> None:
    usage = UsageTotals(data_mb=Decimal(10 * 1024 + 1))  # one MB beyond 10 GB
    lines = rate_subscription(sub(), OCT, usage, ZONES)
    assert amounts(lines)["data_overage"] == Decimal("29.00")


def test_calls_are_summed_then_billed_per_started_minute() -> None:
    usage = UsageTotals(voice_seconds=Decimal(300 * 60 + 61))  # 302 started minutes
    lines = rate_subscription(sub(), OCT, usage, ZONES)
    assert amounts(lines)["voice_overage"] == Decimal("0.98")


def test_unlimited_allowances_never_bill_overage() -> None:
    unlimited = PlanTerms(
        **{**PLAN.__dict__, "data_included_gb": None, "voice_included_minutes": None}
    )
    usage = UsageTotals(data_mb=Decimal(500_000), voice_seconds=Decimal(10**6))
    lines = rate_subscription(sub(plan=unlimited), OCT, usage, ZONES)
    assert set(amounts(lines)) == {"fee"}


def test_roaming_outside_the_eu_is_priced_per_zone_and_started_unit() -> None:
    usage = UsageTotals(abroad={"usa": {"data": Decimal("10.2"), "voice": Decimal("61")}})
    lines = rate_subscription(sub(), OCT, usage, ZONES)
    roaming = [line for line in lines if line.kind == "roaming"]
    # 11 started MB at 0.50 and 2 started minutes at 9.90
    assert [line.amount for line in roaming] == [Decimal("5.50"), Decimal("19.80")]


def test_one_off_charges_in_the_month_are_billed_once() -> None:
    charge = OneOff("SIM-kort", Decimal("99"), Decimal("0.25"), date(2026, 10, 3))
    later = OneOff("Router", Decimal("499"), Decimal("0.25"), date(2026, 11, 3))
    lines = rate_subscription(sub(one_offs=(charge, later)), OCT, UsageTotals(), ZONES)
    assert amounts(lines)["one_off"] == Decimal("99.00")


def test_vat_is_extracted_from_prices_including_vat() -> None:
    totals = invoice_totals(rate_subscription(sub(), OCT, UsageTotals(), ZONES))
    assert totals.vat_total == Decimal("59.80")
    assert totals.net_total == Decimal("239.20")


line_amounts = st.decimals(min_value=Decimal("-500"), max_value=Decimal("5000"), places=2)
vat_rates = st.sampled_from([Decimal("0.25"), Decimal("0.12"), Decimal("0.06"), Decimal("0")])


@given(st.lists(st.tuples(line_amounts, vat_rates), min_size=1, max_size=40))
def test_totals_are_the_sum_of_lines_and_rounding_is_within_half_a_krona(
    specs: list[tuple[Decimal, Decimal]],
) -> None:
    lines = [
        LineDraft(kind="fee", title=Text("x"), detail=Text("x"), amount=a, vat_rate=r)
        for a, r in specs
    ]
    totals = invoice_totals(lines)
    gross = sum(a for a, _ in specs)
    assert totals.total == gross + totals.rounding
    assert totals.total == totals.total.to_integral_value()
    assert abs(totals.rounding) <= Decimal("0.50")
    assert totals.net_total + totals.vat_total == gross
    for row in totals.vat_summary:
        rate, base, vat = (Decimal(row[k]) for k in ("rate", "base", "vat"))
        rate_lines = [line for line in lines if line.vat_rate == rate]
        assert vat == sum(line.vat_amount for line in rate_lines)
        # the rate's VAT is within half an öre per line of the exact VAT of its gross amount
        exact = (base + vat) * rate / (1 + rate)
        assert abs(vat - exact) <= Decimal("0.005") * len(rate_lines)


def test_discounts_together_never_take_more_than_the_fee() -> None:
    # a 100 kr subscription with two 80 kr discounts pays nothing, not −60 kr
    discounts = tuple(
        DiscountTerms(name, Decimal("80"), date(2026, 1, 1), None) for name in ("A", "B")
    )
    lines = rate_subscription(
        sub(agreed_monthly_price=Decimal("100.00"), discounts=discounts), OCT, UsageTotals(), ZONES
    )
    assert [line.amount for line in lines] == [
        Decimal("100.00"),
        Decimal("-80.00"),
        Decimal("-20.00"),
    ]


def test_a_plan_change_within_the_month_prices_each_day_by_its_plan() -> None:
    # given Mobil 10 GB at 299 kr until 15 October, then Mobil 30 GB at 399 kr
    bigger = dataclasses.replace(
        PLAN, code="mobil-30", name="Mobil 30 GB", data_included_gb=Decimal("30")
    )
    change = PlanPeriod(starts=date(2026, 10, 16), plan=bigger, price=Decimal("399.00"))
    usage = UsageTotals(data_mb=Decimal(20 * 1024))  # 20 GB: beyond 10, within 30
    lines = rate_subscription(sub(later_plans=(change,)), OCT, usage, ZONES)
    # then 15/31 of 299 and 16/31 of 399, and the allowance of the plan held at month end
    fees = [(line.title.params["plan"], line.amount) for line in lines if line.kind == "fee"]
    assert fees == [("Mobil 10 GB", Decimal("144.68")), ("Mobil 30 GB", Decimal("205.94"))]
    assert "data_overage" not in amounts(lines)


def test_after_a_change_within_the_month_each_plan_includes_its_share_of_the_month() -> None:
    # given Mobil 3 GB until 27 October, then Mobil 30 GB: 3 × 27/31 + 30 × 4/31 = 6.48 GB
    small = dataclasses.replace(
        PLAN, code="mobil-3", name="Mobil 3 GB", data_included_gb=Decimal("3")
    )
    large = dataclasses.replace(
        PLAN,
        code="mobil-30",
        name="Mobil 30 GB",
        data_included_gb=Decimal("30"),
        data_overage_per_gb=Decimal("19"),
    )
    change = PlanPeriod(starts=date(2026, 10, 28), plan=large, price=Decimal("399.00"))
    usage = UsageTotals(data_mb=Decimal(20 * 1024))
    lines = rate_subscription(sub(plan=small, later_plans=(change,)), OCT, usage, ZONES)
    # then 6.5 GB is included, and 14 started GB beyond are priced by the plan held at the end
    overage = next(line for line in lines if line.kind == "data_overage")
    assert overage.detail.params["included"] == Decimal("6.5")
    assert overage.amount == Decimal("266.00")  # 14 × 19


def test_what_the_month_included_is_the_figure_the_overage_was_priced_against() -> None:
    # given the same change as above: Mobil 3 GB until 27 October, then Mobil 30 GB
    small = dataclasses.replace(
        PLAN, code="mobil-3", name="Mobil 3 GB", data_included_gb=Decimal("3")
    )
    large = dataclasses.replace(
        PLAN, code="mobil-30", name="Mobil 30 GB", data_included_gb=Decimal("30")
    )
    change = PlanPeriod(starts=date(2026, 10, 28), plan=large, price=Decimal("399.00"))
    terms = sub(plan=small, later_plans=(change,))
    # when the month's allowance is asked for
    included = month_allowance(terms, OCT)
    # then it is each plan's share, named by the plan held at the end
    assert included is not None
    assert (included.name, included.data_included_gb) == ("Mobil 30 GB", Decimal("6.5"))
    # and without a change it is the plan's own allowance; outside its days, nothing
    assert month_allowance(sub(plan=small), OCT).data_included_gb == Decimal("3")
    assert month_allowance(sub(plan=small), date(2020, 1, 1)) is None
