"""The accounting export's verifications: one per invoice, credit note, charge and payment,
each balancing to zero in öre, on the accounts finance staff set (BAS by default)."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User
from django.utils import timezone

from core.errors import DomainError
from core.sie import SieVerification
from invoices.accounting import (
    AccountPlan,
    accounting_settings,
    accounting_sie_file,
    accounting_verifications,
    fiscal_years,
)
from invoices.models import ChargeKind, Invoice, InvoiceCharge, LedgerAccount
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.credit_notes import credit_note_issue
from invoices.services.payments import payment_match
from tests.chat.conftest import issue_october
from tests.factories import PlanFactory, SubscriptionFactory
from tests.invoices.bookings import bank_deposit, bank_paid, card_paid, card_refunded, noon

pytestmark = pytest.mark.django_db

ALL_TIME = {"first": date(2000, 1, 1), "last": date(2099, 12, 31)}


def verifications(**period: date) -> list[SieVerification]:
    plan = AccountPlan.of(accounting_settings())
    return list(accounting_verifications(plan=plan, **(period or ALL_TIME)))


def rows(verification: SieVerification) -> dict[str, Decimal]:
    return {row.account: row.amount for row in verification.transactions}


def only(series: str, text: str) -> SieVerification:
    """The one verification of ``series`` whose text holds ``text``."""
    (found,) = [v for v in verifications() if v.series == series and text in v.text]
    return found


def d(amount: str) -> Decimal:
    return Decimal(amount)


@pytest.fixture
def invoice() -> Invoice:
    """October: 299 kr at 25 % VAT and 99.50 kr at 6 % (a magazine), 398.50 kr rounded to
    399 kr. Issued 1 November 2026."""
    magazine = PlanFactory(
        code="tidning", name="Tidning", monthly_fee=d("99.50"), vat_rate=d("0.06")
    )
    sub = SubscriptionFactory(agreed_monthly_price=d("299.00"))
    SubscriptionFactory(customer=sub.customer, plan=magazine, agreed_monthly_price=d("99.50"))
    (issued,) = issue_october()
    return issued


def test_an_invoice_books_revenue_and_vat_per_rate_and_its_rounding(invoice: Invoice) -> None:
    (booked,) = verifications()
    assert (booked.series, booked.on, booked.number) == ("F", date(2026, 11, 1), "")
    customer = invoice.customer.customer_number
    assert booked.text == f"Faktura {invoice.display_number}, kund {customer}"
    assert rows(booked) == {
        "1510": d("399.00"),
        "3001": d("-239.20"),
        "2611": d("-59.80"),
        "3003": d("-93.87"),
        "2631": d("-5.63"),
        "3740": d("-0.50"),
    }
    assert sum(rows(booked).values()) == 0


def test_a_credit_note_books_its_invoice_back(invoice: Invoice) -> None:
    note = credit_note_issue(invoice_id=invoice.id, reason="Fel kund")
    booked = only("F", "Kreditfaktura")
    assert booked.text.startswith(
        f"Kreditfaktura {note.display_number} för faktura {invoice.display_number}"
    )
    assert booked.on == note.invoice_date
    assert rows(booked) == {
        "1510": d("-399.00"),
        "3001": d("239.20"),
        "2611": d("59.80"),
        "3003": d("93.87"),
        "2631": d("5.63"),
        "3740": d("0.50"),
    }


def test_a_partial_payment_books_the_bank_against_receivables(invoice: Invoice) -> None:
    paid = bank_paid(invoice.ocr or "", "100.00", day="20261105")
    booked = only("I", "Betalning")
    assert (booked.on, booked.registered_on) == (date(2026, 11, 5), timezone.localdate())
    assert booked.text == f"Betalning {paid.id} (Bankgiro), faktura {invoice.display_number}"
    assert rows(booked) == {"1930": d("100.00"), "1510": d("-100.00")}


def test_an_overpayment_books_the_surplus_as_a_customer_advance(invoice: Invoice) -> None:
    bank_paid(invoice.ocr or "", "500.00")
    assert rows(only("I", "Betalning")) == {
        "1930": d("500.00"),
        "1510": d("-399.00"),
        "2420": d("-101.00"),
    }


def test_a_credit_note_on_a_paid_invoice_moves_the_paid_money_to_customer_advances(
    invoice: Invoice,
) -> None:
    # given the invoice paid in full
    bank_paid(invoice.ocr or "", "399.00")
    # when the magazine's 99.50 kr is credited (100 kr once rounded)
    magazine = invoice.lines.get(vat_rate=d("0.06"))
    credit_note_issue(invoice_id=invoice.id, reason="Avbeställd", line_ids=[magazine.id])
    # then the credit note takes its revenue and VAT back, and the 100 kr paid for it is the
    # customer's credit balance (receivables: -100 by the note, +100 by the move)
    assert rows(only("F", "Kreditfaktura")) == {
        "3003": d("93.87"),
        "2631": d("5.63"),
        "3740": d("0.50"),
        "2420": d("-100.00"),
    }


def test_a_card_refund_takes_from_the_customer_advance_first(invoice: Invoice) -> None:
    # given 500 kr by card on the 399 kr invoice: 101 kr is a customer advance
    card = card_paid(invoice, "500.00", at=noon(2026, 11, 10))
    assert rows(only("I", f"Betalning {card.id} (Kort)")) == {
        "1580": d("500.00"),
        "1510": d("-399.00"),
        "2420": d("-101.00"),
    }
    # when 150 kr goes back to the card
    refund = card_refunded(card, "150.00", at=noon(2026, 11, 12))
    # then 101 kr leaves the advance and 49 kr is owed on the invoice again
    booked = only("I", "Återbetalning")
    assert (booked.on, booked.text) == (
        date(2026, 11, 12),
        f"Återbetalning {refund.id} (Kort), faktura {invoice.display_number}",
    )
    assert rows(booked) == {"1580": d("-150.00"), "1510": d("49.00"), "2420": d("101.00")}


def test_a_payment_from_the_credit_balance_books_the_advance_against_receivables(
    invoice: Invoice,
) -> None:
    # given 101 kr paid beyond October
    bank_paid(invoice.ocr or "", "500.00")
    # when November is issued, it spends the 101 kr
    run = bill_run_start(period=date(2026, 11, 1), invoice_date=date(2026, 12, 1))
    bill_run_execute(bill_run_id=run.id)
    booked = only("I", "Tillgodohavande")
    assert booked.on == date(2026, 12, 1)
    assert rows(booked) == {"2420": d("101.00"), "1510": d("-101.00")}


def test_fees_and_interest_are_booked_when_they_are_added_to_the_claim(invoice: Invoice) -> None:
    for kind, amount, key in (
        (ChargeKind.REMINDER_FEE, "60.00", "fee"),
        (ChargeKind.INTEREST, "3.27", "interest"),
        (ChargeKind.INSTALMENT_FEE, "170.00", "plan"),
    ):
        InvoiceCharge.objects.create(
            invoice=invoice,
            kind=kind,
            amount=d(amount),
            texts={"en": {"title": kind, "detail": ""}},
            charged_on=date(2026, 12, 8),
            source_key=key,
            created_at=invoice.issued_at,
        )
    fee, interest, plan_fee = [v for v in verifications() if v.series == "R"]
    assert fee.text.startswith(f"Påminnelseavgift, faktura {invoice.display_number}")
    assert fee.on == date(2026, 12, 8)
    assert rows(fee) == {"1510": d("60.00"), "3591": d("-60.00")}
    assert interest.text.startswith("Dröjsmålsränta")
    assert rows(interest) == {"1510": d("3.27"), "8313": d("-3.27")}
    assert rows(plan_fee) == {"1510": d("170.00"), "3591": d("-170.00")}


def test_an_unmatched_payment_waits_on_the_suspense_account_until_it_is_matched(
    invoice: Invoice,
) -> None:
    # given a payment whose reference names no invoice, and a bank's deduction
    waiting, _deduction = bank_deposit([("1234567897", "450.00"), ("", "-50.00")], day="20261104")
    received, deducted = [v for v in verifications() if v.series == "I"]
    assert received.text.startswith(f"Ej matchad betalning {waiting.id} (Bankgiro), referens")
    assert rows(received) == {"1930": d("450.00"), "2999": d("-450.00")}
    assert rows(deducted) == {"1930": d("-50.00"), "2999": d("50.00")}
    # when finance staff put it on the invoice, on 20 November
    with time_machine.travel(noon(2026, 11, 20)):
        payment_match(
            payment_id=waiting.id, invoice_id=invoice.id, by=User.objects.create(username="f")
        )
    # then it leaves the suspense account for receivables and the customer's advance
    matched = only("I", "placerad på faktura")
    assert matched.on == date(2026, 11, 20)
    assert rows(matched) == {"2999": d("450.00"), "1510": d("-399.00"), "2420": d("-51.00")}
    # and its receipt is still booked as unmatched, on the day it came
    assert rows(only("I", f"Ej matchad betalning {waiting.id} (")) == rows(received)


def test_only_the_period_s_verifications_are_exported(invoice: Invoice) -> None:
    bank_paid(invoice.ocr or "", "100.00", day="20261130")
    bank_paid(invoice.ocr or "", "100.00", day="20261201")
    november = verifications(first=date(2026, 11, 1), last=date(2026, 11, 30))
    assert [(v.series, v.on) for v in november] == [
        ("F", date(2026, 11, 1)),
        ("I", date(2026, 11, 30)),
    ]


def test_the_accounts_are_the_ones_finance_staff_set(invoice: Invoice) -> None:
    found = accounting_settings()
    found.receivables = LedgerAccount.objects.create(number="1511", name="Kundfordringar, privat")
    found.series_invoices = "KF"
    found.save()
    (booked,) = verifications()
    assert booked.series == "KF"
    assert rows(booked)["1511"] == d("399.00")


def test_a_vat_rate_without_accounts_is_refused_rather_than_booked_elsewhere() -> None:
    odd = PlanFactory(code="udda", name="Udda", monthly_fee=d("110.00"), vat_rate=d("0.10"))
    SubscriptionFactory(plan=odd, agreed_monthly_price=d("110.00"))
    issue_october()
    with pytest.raises(DomainError) as refused:
        accounting_sie_file(generated_by="", **ALL_TIME)
    assert refused.value.code == "vat_rate_without_account"
    assert "10 %" in refused.value.message


def test_a_period_backwards_is_refused() -> None:
    with pytest.raises(DomainError) as refused:
        accounting_sie_file(first=date(2026, 12, 1), last=date(2026, 11, 1), generated_by="")
    assert refused.value.code == "period_invalid"


def test_the_fiscal_years_run_back_from_the_last_day_s() -> None:
    assert fiscal_years(first=date(2026, 11, 1), last=date(2026, 11, 30), start_month=1) == (
        (date(2026, 1, 1), date(2026, 12, 31)),
    )
    assert fiscal_years(first=date(2026, 4, 1), last=date(2026, 7, 31), start_month=5) == (
        (date(2026, 5, 1), date(2027, 4, 30)),
        (date(2025, 5, 1), date(2026, 4, 30)),
    )
