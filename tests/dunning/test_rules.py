"""The legal arithmetic: reminder fees within the cap and the customer's terms, interest in
öre, and what is open split into capital, fees and interest."""

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from core.money import quantize_ore
from dunning.rules import (
    Reduction,
    capital_days,
    claim_split,
    interest,
    interest_exact,
    interest_rate,
    reminder_fee,
)
from invoices.services.payments import InvoiceBalance

CAP = Decimal("60.00")
DUE = date(2026, 12, 1)
kronor = st.decimals(min_value=0, max_value=100_000, places=2)


def test_no_fee_unless_the_customer_agreed_to_one() -> None:
    assert (
        reminder_fee(
            step_fee=CAP, cap=CAP, agreed_on=None, debt_arose_on=DUE, earlier_fees=Decimal(0)
        )
        == 0
    )


def test_no_fee_when_it_was_agreed_after_the_debt_arose() -> None:
    fee = reminder_fee(
        step_fee=CAP,
        cap=CAP,
        agreed_on=DUE + timedelta(days=1),
        debt_arose_on=DUE,
        earlier_fees=Decimal(0),
    )
    assert fee == 0


def test_a_fee_agreed_on_the_day_the_debt_arose_is_allowed() -> None:
    fee = reminder_fee(
        step_fee=Decimal("45.00"), cap=CAP, agreed_on=DUE, debt_arose_on=DUE, earlier_fees=0
    )
    assert fee == Decimal("45.00")


def test_a_second_fee_on_the_same_claim_is_none() -> None:
    fee = reminder_fee(
        step_fee=CAP, cap=CAP, agreed_on=DUE, debt_arose_on=DUE, earlier_fees=Decimal("60.00")
    )
    assert fee == 0


def test_a_step_fee_above_the_cap_is_cut_to_the_cap() -> None:
    fee = reminder_fee(
        step_fee=Decimal("95.00"), cap=CAP, agreed_on=DUE, debt_arose_on=DUE, earlier_fees=0
    )
    assert fee == CAP


@given(
    step_fees=st.lists(st.decimals(min_value=-100, max_value=1000, places=2), max_size=8),
    agreed_days=st.none() | st.integers(min_value=-400, max_value=400),
)
def test_fees_of_any_number_of_reminders_never_exceed_the_cap(step_fees, agreed_days) -> None:
    # given any policy's fees and any agreement date, reminder after reminder
    agreed_on = None if agreed_days is None else DUE + timedelta(days=agreed_days)
    charged = Decimal(0)
    for step_fee in step_fees:
        fee = reminder_fee(
            step_fee=step_fee, cap=CAP, agreed_on=agreed_on, debt_arose_on=DUE, earlier_fees=charged
        )
        # then each is between nothing and the cap, and all together are within the cap
        assert 0 <= fee <= CAP
        charged += fee
    assert charged <= CAP
    if agreed_on is None or agreed_on > DUE:
        assert charged == 0


def test_interest_is_the_reference_rate_plus_the_margin() -> None:
    assert interest_rate(reference_rate=Decimal("2.00"), margin=Decimal("8.00")) == Decimal("10.00")


def test_twenty_days_of_ten_percent_on_299_kr() -> None:
    # 299 × 10 % × 20 / 365 = 1.6383… kr
    amount = interest(
        capital=Decimal("299.00"),
        reductions=[],
        after=DUE,
        through=DUE + timedelta(days=20),
        rate=Decimal("10.00"),
    )
    assert amount == Decimal("1.64")


def test_a_payment_stops_interest_from_the_next_day() -> None:
    # given 200 of 299 kr paid on the fifth day after the due date
    paid = [Reduction(on=DUE + timedelta(days=5), amount=Decimal("200.00"))]
    days = capital_days(
        capital=Decimal("299.00"), reductions=paid, after=DUE, through=DUE + timedelta(days=10)
    )
    # then five days on 299 kr (the day paid included) and five on 99 kr
    assert days == Decimal("299.00") * 5 + Decimal("99.00") * 5


def test_no_interest_for_no_days_or_a_zero_rate() -> None:
    assert interest(capital=Decimal(100), reductions=[], after=DUE, through=DUE, rate=10) == 0
    later = DUE + timedelta(days=30)
    assert interest(capital=Decimal(100), reductions=[], after=DUE, through=later, rate=0) == 0


@given(
    capital=kronor,
    days=st.integers(min_value=0, max_value=800),
    split=st.integers(min_value=0, max_value=800),
    paid=st.lists(st.tuples(st.integers(min_value=-30, max_value=800), kronor), max_size=5),
    rate=st.decimals(min_value=0, max_value=30, places=2),
)
def test_interest_over_a_period_is_the_sum_of_its_parts_and_never_negative(
    capital, days, split, paid, rate
) -> None:
    # given any capital, payments on any days and a period cut in two anywhere inside it
    reductions = [Reduction(on=DUE + timedelta(days=d), amount=a) for d, a in paid]
    end = DUE + timedelta(days=days)
    cut = DUE + timedelta(days=min(split, days))

    def days_of(after: date, through: date) -> Decimal:
        return capital_days(capital=capital, reductions=reductions, after=after, through=through)

    def exact(after: date, through: date) -> Decimal:
        return interest_exact(
            capital=capital, reductions=reductions, after=after, through=through, rate=rate
        )

    # then the parts' capital-days add up to the whole's exactly, and nothing is negative
    assert days_of(DUE, cut) + days_of(cut, end) == days_of(DUE, end)
    whole = exact(DUE, end)
    assert whole >= 0
    # and rounding each part costs at most an öre against rounding the whole
    rounded = quantize_ore(exact(DUE, cut)) + quantize_ore(exact(cut, end))
    assert abs(rounded - quantize_ore(whole)) <= Decimal("0.01")
    # and never more than the whole capital would have cost unpaid
    assert days_of(DUE, end) <= capital * days


@given(
    total=kronor,
    credited_share=st.integers(min_value=0, max_value=100),
    paid=kronor,
    fees=st.decimals(min_value=0, max_value=60, places=2),
    interest_charged=st.decimals(min_value=0, max_value=5000, places=2),
)
def test_payments_and_credits_and_what_is_open_add_up_to_invoiced_and_charges(
    total, credited_share, paid, fees, interest_charged
) -> None:
    credited = quantize_ore(total * credited_share / 100)
    claim = claim_split(
        total=total, credited=credited, paid=paid, fees=fees, interest=interest_charged
    )
    balance = InvoiceBalance(
        total=total, credited=credited, paid=paid, charged=fees + interest_charged
    )
    # the split agrees with what the invoice's balance says is open
    assert claim.open == balance.open
    assert min(claim.capital, claim.fees, claim.interest) >= 0
    invoiced_and_charges = total + fees + interest_charged
    if paid + credited <= invoiced_and_charges:
        assert paid + credited + claim.open == invoiced_and_charges
    else:  # paid too much: nothing is open, the rest is the payment's surplus
        assert claim.open == 0


def test_payments_pay_the_capital_first_then_interest_then_fees() -> None:
    claim = claim_split(
        total=Decimal("299.00"),
        credited=Decimal(0),
        paid=Decimal("300.00"),
        fees=Decimal("60.00"),
        interest=Decimal("5.00"),
    )
    assert (claim.capital, claim.interest, claim.fees) == (0, Decimal("4.00"), Decimal("60.00"))
