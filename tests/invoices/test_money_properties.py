"""Money properties, whatever happens in whatever order: random runs of bill runs, payments
(part, exact, beyond), credit notes, charges and spendings of credit balances, through the
real services on the database. After each step:

- on every invoice, payments + credit notes + what is open == its total + its charges, and
  what is open is never below zero;
- every payment's surplus is what it brought beyond what it paid, and is its surplus at
  booking plus the moves recorded since (``SurplusMove``);
- a credit balance never spends more than the surpluses it draws on (each source's used
  part is within its surplus, and each spending is the sum of its uses), and every krona a
  customer paid either pays an invoice or is in their balance;
- an invoice's status says whether money is open.
"""

from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.contrib.auth.models import User
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from core.errors import DomainError
from invoices.models import (
    OPEN_STATUSES,
    ChargeKind,
    CreditUse,
    DocumentKind,
    Invoice,
    InvoiceCharge,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
)
from invoices.selectors import customer_credit_balance
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.credit_balance import credit_balance_use
from invoices.services.credit_notes import credit_note_issue
from invoices.services.payments import bgmax_import, invoice_balance
from tests.billing.bgmax_files import Deposit, File, Paid, bgmax_file
from tests.factories import SubscriptionFactory

ZERO = Decimal(0)
MONTHS = [date(2026, month, 1) for month in (8, 9, 10, 11)]


@dataclass(frozen=True)
class Bill:
    """Issue the next month."""


@dataclass(frozen=True)
class Pay:
    invoice: int  # which of the invoices issued so far (modulo their number)
    how: str  # "part", "exact", "beyond"
    share: int  # of what is open, in percent (part), or öre beyond it (beyond)


@dataclass(frozen=True)
class Credit:
    invoice: int
    whole: bool  # every line not credited yet, else the first of them


@dataclass(frozen=True)
class Charge:
    invoice: int
    ore: int


@dataclass(frozen=True)
class UseCredit:
    invoice: int


steps = st.lists(
    st.one_of(
        st.just(Bill()),
        st.builds(
            Pay,
            invoice=st.integers(0, 20),
            how=st.sampled_from(["part", "exact", "beyond"]),
            share=st.integers(1, 60_000),
        ),
        st.builds(Credit, invoice=st.integers(0, 20), whole=st.booleans()),
        st.builds(Charge, invoice=st.integers(0, 20), ore=st.integers(1, 6000)),
        st.builds(UseCredit, invoice=st.integers(0, 20)),
    ),
    min_size=1,
    max_size=10,
)


class MoneyAddsUp(TestCase):
    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(steps=steps)
    def test_money_adds_up_after_every_step(self, steps: list[object]) -> None:
        # two customers: one subscription of 299 kr, and two of 199.50 and 99 kr
        SubscriptionFactory(agreed_monthly_price=Decimal("299.00"))
        sub = SubscriptionFactory(agreed_monthly_price=Decimal("199.50"))
        SubscriptionFactory(customer=sub.customer, agreed_monthly_price=Decimal("99.00"))
        staff = User.objects.create(username="finance")
        run = Run(staff)
        run.apply(Bill())
        for step in steps:
            run.apply(step)
            self.check()

    def check(self) -> None:
        for invoice in Invoice.objects.filter(kind=DocumentKind.INVOICE):
            balance = invoice_balance(invoice)
            assert balance.open >= ZERO
            assert (
                balance.paid + balance.credited + balance.open == balance.total + balance.charged
            ), invoice
            booked = Payment.objects.filter(invoice=invoice, status=PaymentStatus.BOOKED)
            amounts = list(booked.values_list("amount", "surplus"))
            assert sum(a for a, _s in amounts) == balance.paid + sum(s for _a, s in amounts)
            if invoice.status == InvoiceStatus.PAID:
                assert balance.open == ZERO, invoice
            if invoice.status in OPEN_STATUSES:
                assert balance.open > ZERO, invoice
        for payment in Payment.objects.filter(status=PaymentStatus.BOOKED):
            assert ZERO <= payment.surplus_used <= payment.surplus <= payment.amount
            # the surplus is what its booking left over and every move since, each recorded
            moves = payment.surplus_moves.values_list("amount", flat=True)
            assert payment.surplus == payment.surplus_at_booking + sum(moves, ZERO), payment
            uses = CreditUse.objects.filter(source=payment).values_list("amount", flat=True)
            assert sum(uses, ZERO) == payment.surplus_used
            if payment.method == PaymentMethod.CREDIT:
                spent = CreditUse.objects.filter(payment=payment).values_list("amount", flat=True)
                assert sum(spent, ZERO) == payment.amount
        for customer_id in Invoice.objects.values_list("customer_id", flat=True).distinct():
            mine = Payment.objects.filter(
                invoice__customer_id=customer_id, status=PaymentStatus.BOOKED
            )
            received = sum(
                mine.exclude(method=PaymentMethod.CREDIT).values_list("amount", flat=True), ZERO
            )
            paid = sum(
                (
                    invoice_balance(invoice).paid
                    for invoice in Invoice.objects.filter(customer_id=customer_id)
                ),
                ZERO,
            )
            left = customer_credit_balance(customer_id)
            assert left >= ZERO
            assert received == paid + left


class Run:
    """Applies steps through the services, as finance staff, the bank and the bill run
    would."""

    def __init__(self, staff: User) -> None:
        self.staff = staff
        self.months = iter(MONTHS)
        self.serial = 0

    def invoices(self) -> list[Invoice]:
        return list(Invoice.objects.filter(kind=DocumentKind.INVOICE).order_by("id"))

    def pick(self, n: int) -> Invoice:
        invoices = self.invoices()
        return invoices[n % len(invoices)]

    def apply(self, step: object) -> None:
        match step:
            case Bill():
                month = next(self.months, None)
                if month is not None:
                    invoice_date = date(2026, month.month + 1, 1)
                    run = bill_run_start(period=month, invoice_date=invoice_date)
                    bill_run_execute(bill_run_id=run.id)
            case Pay(invoice=n, how=how, share=share):
                self.pay(self.pick(n), how, share)
            case Credit(invoice=n, whole=whole):
                invoice = self.pick(n)
                lines = None if whole else list(invoice.lines.values_list("id", flat=True)[:1])
                with suppress(DomainError):  # (every line credited already)
                    credit_note_issue(invoice_id=invoice.id, reason="Rättelse", line_ids=lines)
            case Charge(invoice=n, ore=ore):
                invoice = self.pick(n)
                if invoice.status in OPEN_STATUSES:  # as dunning adds them: to open claims
                    self.serial += 1
                    InvoiceCharge.objects.create(
                        invoice=invoice,
                        kind=ChargeKind.INTEREST,
                        amount=Decimal(ore).scaleb(-2),
                        texts={"en": {"title": "Interest", "detail": ""}},
                        charged_on=invoice.due_date,
                        source_key=f"test:{self.serial}",
                        created_at=invoice.issued_at,
                    )
            case UseCredit(invoice=n):
                with suppress(DomainError):  # (nothing open, or no balance)
                    credit_balance_use(invoice_id=self.pick(n).id, by=self.staff)

    def pay(self, invoice: Invoice, how: str, share: int) -> None:
        open_ore = int(invoice_balance(invoice).open * 100)
        if how == "exact" or open_ore == 0:
            ore = open_ore or share
        elif how == "part":
            ore = max(open_ore * (share % 100) // 100, 1)
        else:
            ore = open_ore + share
        self.serial += 1
        made = File(
            [
                Deposit(
                    [Paid(ore, invoice.ocr or "", serial=f"{self.serial:012d}")],
                    serial=f"{self.serial:05d}",
                )
            ]
        )
        bgmax_import(data=bgmax_file(made), name=f"{self.serial}.txt")
