"""Money properties, whatever happens in whatever order: random runs of bill runs, payments
by bank (part, exact, beyond, to no invoice, a bank's deduction) and by card, card refunds,
unmatched payments put on invoices by hand, credit notes, fees and interest, and spendings of
credit balances, through the real services on the database. After each step:

- on every invoice, payments + credit notes + what is open == its total + its charges, and
  what is open is never below zero;
- every payment's surplus is what it brought beyond what it paid, and is its surplus at
  booking plus the moves recorded since (``SurplusMove``);
- a credit balance never spends more than the surpluses it draws on (each source's used
  part is within its surplus, and each spending is the sum of its uses), and every krona a
  customer paid either pays an invoice or is in their balance;
- an invoice's status says whether money is open;
- the books agree (the accounting export's verifications of all time): every verification
  sums to zero; receivables sum to what is open (``invoices_with_open_amount``); customer
  advances to the credit balances and unmatched payments to the money waiting to be matched,
  as credits.
"""

from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.contrib.auth.models import User
from django.db.models import F, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from core.errors import DomainError
from core.money import money_sum
from invoices.accounting import AccountPlan, accounting_settings, accounting_verifications
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
from invoices.selectors import customer_credit_balance, invoices_with_open_amount
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.card_payments import card_refundable
from invoices.services.credit_balance import credit_balance_use
from invoices.services.credit_notes import credit_note_issue
from invoices.services.payments import invoice_balance, payment_match
from tests.factories import PlanFactory, SubscriptionFactory
from tests.invoices.bookings import bank_deposit, card_paid, card_refunded

ZERO = Decimal(0)
MONTHS = [date(2026, month, 1) for month in (8, 9, 10, 11)]
NOWHERE = "1234567897"  # an OCR reference no invoice has


@dataclass(frozen=True)
class Bill:
    """Issue the next month."""


@dataclass(frozen=True)
class Pay:
    invoice: int  # which of the invoices issued so far (modulo their number)
    # "part", "exact", "beyond"; "nowhere" (a reference no invoice has), "deduction"
    how: str
    share: int  # of what is open, in percent (part), or öre (beyond, nowhere, deduction)


@dataclass(frozen=True)
class CardPay:
    invoice: int  # which of the open invoices
    beyond: int  # öre beyond what is open


@dataclass(frozen=True)
class Refund:
    payment: int  # which card payment
    share: int  # percent of what can still go back to the card


@dataclass(frozen=True)
class Match:
    payment: int  # which unmatched payment
    invoice: int  # which of the open invoices


@dataclass(frozen=True)
class Credit:
    invoice: int
    whole: bool  # every line not credited yet, else the first of them


@dataclass(frozen=True)
class Charge:
    invoice: int
    kind: str
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
            how=st.sampled_from(["part", "exact", "beyond", "nowhere", "deduction"]),
            share=st.integers(1, 60_000),
        ),
        st.builds(CardPay, invoice=st.integers(0, 20), beyond=st.integers(0, 30_000)),
        st.builds(Refund, payment=st.integers(0, 20), share=st.integers(1, 100)),
        st.builds(Match, payment=st.integers(0, 20), invoice=st.integers(0, 20)),
        st.builds(Credit, invoice=st.integers(0, 20), whole=st.booleans()),
        st.builds(
            Charge,
            invoice=st.integers(0, 20),
            kind=st.sampled_from(list(ChargeKind.values)),
            ore=st.integers(1, 6000),
        ),
        st.builds(UseCredit, invoice=st.integers(0, 20)),
    ),
    min_size=1,
    max_size=12,
)


class MoneyAddsUp(TestCase):
    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(steps=steps)
    def test_money_adds_up_after_every_step(self, steps: list[object]) -> None:
        # two customers: one subscription of 299 kr, and one of 199.50 kr with a magazine of
        # 99 kr at 6 % VAT (two rates, and rounding)
        SubscriptionFactory(agreed_monthly_price=Decimal("299.00"))
        sub = SubscriptionFactory(agreed_monthly_price=Decimal("199.50"))
        magazine = PlanFactory(
            code="tidning", name="Tidning", monthly_fee=Decimal("99.00"), vat_rate=Decimal("0.06")
        )
        SubscriptionFactory(customer=sub.customer, plan=magazine)
        staff = User.objects.create(username="finance")
        run = Run(staff)
        run.apply(Bill())
        for step in steps:
            run.apply(step)
            self.check()
            self.check_books()

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
            assert ZERO <= payment.surplus_used <= payment.surplus
            assert payment.surplus <= max(payment.amount, ZERO)
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

    def check_books(self) -> None:
        plan = AccountPlan.of(accounting_settings())
        sums: dict[str, Decimal] = {}
        for verification in accounting_verifications(
            first=date(2000, 1, 1), last=date(2099, 12, 31), plan=plan
        ):
            assert sum(row.amount for row in verification.transactions) == ZERO, verification
            for row in verification.transactions:
                sums[row.account] = sums.get(row.account, ZERO) + row.amount
        open_amount = invoices_with_open_amount(
            Invoice.objects.filter(kind=DocumentKind.INVOICE)
        ).aggregate(s=Sum("open_amount"))["s"]
        assert sums.get(plan.receivables, ZERO) == money_sum(open_amount)
        balances = Payment.objects.filter(status=PaymentStatus.BOOKED).aggregate(
            s=Sum(F("surplus") - F("surplus_used"))
        )["s"]
        assert -sums.get(plan.customer_advances, ZERO) == money_sum(balances)
        waiting = Payment.objects.filter(status=PaymentStatus.UNMATCHED).aggregate(s=Sum("amount"))[
            "s"
        ]
        assert -sums.get(plan.unmatched_payments, ZERO) == money_sum(waiting)


class Run:
    """Applies steps through the services, as finance staff, the bank, Stripe and the bill
    run would."""

    def __init__(self, staff: User) -> None:
        self.staff = staff
        self.months = iter(MONTHS)
        self.serial = 0

    def invoices(self) -> list[Invoice]:
        return list(Invoice.objects.filter(kind=DocumentKind.INVOICE).order_by("id"))

    def pick[T](self, n: int, among: list[T]) -> T | None:
        return among[n % len(among)] if among else None

    def open_invoices(self) -> list[Invoice]:
        return [invoice for invoice in self.invoices() if invoice.status in OPEN_STATUSES]

    def apply(self, step: object) -> None:
        match step:
            case Bill():
                month = next(self.months, None)
                if month is not None:
                    invoice_date = date(2026, month.month + 1, 1)
                    run = bill_run_start(period=month, invoice_date=invoice_date)
                    bill_run_execute(bill_run_id=run.id)
            case Pay(invoice=n, how=how, share=share):
                self.pay(n, how, share)
            case CardPay(invoice=n, beyond=beyond):
                if invoice := self.pick(n, self.open_invoices()):
                    owed = invoice_balance(invoice).open + Decimal(beyond).scaleb(-2)
                    card_paid(invoice, str(owed))
            case Refund(payment=n, share=share):
                cards = Payment.objects.filter(method=PaymentMethod.CARD, amount__gt=0)
                if card := self.pick(n, list(cards.order_by("id"))):
                    amount = (card_refundable(card) * share / 100).quantize(Decimal("0.01"))
                    if amount > ZERO:
                        card_refunded(card, str(amount))
            case Match(payment=n, invoice=m):
                waiting = Payment.objects.filter(status=PaymentStatus.UNMATCHED, amount__gt=0)
                payment = self.pick(n, list(waiting.order_by("id")))
                invoice = self.pick(m, self.open_invoices())
                if payment and invoice:
                    payment_match(payment_id=payment.id, invoice_id=invoice.id, by=self.staff)
            case Credit(invoice=n, whole=whole):
                if invoice := self.pick(n, self.invoices()):
                    lines = None if whole else list(invoice.lines.values_list("id", flat=True)[:1])
                    with suppress(DomainError):  # (every line credited already)
                        credit_note_issue(invoice_id=invoice.id, reason="Rättelse", line_ids=lines)
            case Charge(invoice=n, kind=kind, ore=ore):
                # as dunning adds them: to open claims
                if invoice := self.pick(n, self.open_invoices()):
                    self.serial += 1
                    InvoiceCharge.objects.create(
                        invoice=invoice,
                        kind=kind,
                        amount=Decimal(ore).scaleb(-2),
                        texts={"en": {"title": kind, "detail": ""}},
                        charged_on=invoice.due_date,
                        source_key=f"test:{self.serial}",
                        created_at=invoice.issued_at,
                    )
            case UseCredit(invoice=n):
                if invoice := self.pick(n, self.invoices()):
                    with suppress(DomainError):  # (nothing open, or no balance)
                        credit_balance_use(invoice_id=invoice.id, by=self.staff)

    def pay(self, n: int, how: str, share: int) -> None:
        """A bankgiro payment: on an invoice, to a reference no invoice has, or a deduction
        (in a deposit with a larger payment: a deposit is never negative)."""
        kronor = str(Decimal(share).scaleb(-2))
        if how == "nowhere":
            bank_deposit([(NOWHERE, kronor)])
            return
        if how == "deduction":
            bank_deposit([(NOWHERE, str(Decimal(share + 100).scaleb(-2))), ("", f"-{kronor}")])
            return
        invoice = self.pick(n, self.invoices())
        if invoice is None:
            return
        open_ore = int(invoice_balance(invoice).open * 100)
        if how == "exact" or open_ore == 0:
            ore = open_ore or share
        elif how == "part":
            ore = max(open_ore * (share % 100) // 100, 1)
        else:
            ore = open_ore + share
        bank_deposit([(invoice.ocr or "", str(Decimal(ore).scaleb(-2)))])
