"""The customer's credit balance: what they paid beyond their invoices, spent on the next.

A payment that brings more than its invoice had open keeps the rest as its ``surplus``
(``payments.py``; a credit note that takes the claim below what was paid moves the
difference there too), whatever the method. The surpluses of a customer's booked payments,
less what was spent of them (``Payment.surplus_used``), are the customer's credit balance.
It is spent:

- by the bill run, on each customer's new invoice as it is issued, in bulk: a few statements
  per chunk, not per invoice (``credit_balances_lock``, ``CreditBalances``);
- by finance staff on an invoice already open, after a review (``credit_balance_use``).

Every spending is a ``Payment`` of method ``credit`` on the invoice, so every read of what an
invoice was paid counts it, with one ``CreditUse`` per surplus it draws on, oldest first: each
krona can be followed from the payment that brought it to the invoice it paid. Each source's
``surplus_used`` moves with its uses under the source's row lock, and a check constraint keeps
it between zero and the surplus: the balance is never spent twice nor taken below zero, also
by two spendings at once (the second waits for the first's locks, then reads what is left).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.bulk import insert_rows
from core.errors import DomainError
from core.lookups import AnyOf
from core.money import ZERO, money_sum
from invoices.models import (
    OPEN_STATUSES,
    CreditUse,
    DocumentKind,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
)
from invoices.selectors import credit_balances, credit_source_key, invoices_with_open_amount
from invoices.services.payments import (
    invoice_balance,
    invoice_status_follow,
    status_after_payment,
)


@dataclass
class _Source:
    """A booked payment with surplus left, locked; ``used`` moves as this transaction spends."""

    id: int
    surplus: Decimal
    used: Decimal

    @property
    def left(self) -> Decimal:
        return self.surplus - self.used


@dataclass
class _Spending:
    """What one customer's invoice takes from their balance: the amount, source by source."""

    amount: Decimal = ZERO
    uses: list[tuple[_Source, Decimal]] = field(default_factory=list)


class CreditBalances:
    """The credit balances of some customers, their sources locked until the transaction
    ends. ``spend`` plans what each customer's invoice takes; ``book`` writes it all."""

    def __init__(self, sources: dict[int, list[_Source]]) -> None:
        self._sources = sources  # by customer, oldest payment first
        self._spendings: dict[int, _Spending] = {}

    def left(self, customer_id: int) -> Decimal:
        """What the customer has left to spend (kronor)."""
        return sum((source.left for source in self._sources.get(customer_id, [])), ZERO)

    def spend(self, *, customer_id: int, amount: Decimal) -> Decimal:
        """Take up to ``amount`` of the customer's balance for their invoice, the oldest
        surplus first; returns what was taken (zero when there is no balance). One spending
        per customer and booking."""
        if customer_id in self._spendings:
            raise RuntimeError("one spending per customer and booking")
        spending = _Spending()
        wanted = max(amount, ZERO)
        for source in self._sources.get(customer_id, []):
            if wanted == ZERO:
                break
            take = min(source.left, wanted)
            if take > ZERO:
                source.used += take
                spending.uses.append((source, take))
                spending.amount += take
                wanted -= take
        if spending.amount:
            self._spendings[customer_id] = spending
        return spending.amount

    def book(
        self,
        *,
        invoice_ids: dict[int, int],
        paid_on: date,
        key: str,
        by: User | None = None,
    ) -> dict[int, int]:
        """Write the planned spendings on the customers' invoices (``invoice_ids``: invoice
        by customer): a payment of method ``credit`` each (source key
        ``credit_source_key``), their ``CreditUse`` rows and the sources' new
        ``surplus_used``. Three statements and the payments' ids, whatever their number;
        none without spendings. Returns the payments' ids by customer."""
        if not self._spendings:
            return {}
        now = timezone.now()
        customers = list(self._spendings)
        payment_ids = insert_rows(
            Payment,
            [
                {
                    "invoice_id": invoice_ids[customer_id],
                    "status": PaymentStatus.BOOKED,
                    "method": PaymentMethod.CREDIT,
                    "amount": self._spendings[customer_id].amount,
                    "paid_on": paid_on,
                    "booked_at": now,
                    "source_key": credit_source_key(invoice_ids[customer_id], key),
                    "matched_by_id": by.id if by else None,
                    "matched_at": now if by else None,
                }
                for customer_id in customers
            ],
        )
        uses = []
        touched: dict[int, _Source] = {}
        for customer_id, payment_id in zip(customers, payment_ids, strict=True):
            for source, amount in self._spendings[customer_id].uses:
                uses.append(
                    {
                        "source_id": source.id,
                        "payment_id": payment_id,
                        "amount": amount,
                        "created_at": now,
                    }
                )
                touched[source.id] = source
        insert_rows(CreditUse, uses, returning_ids=False)
        Payment.objects.bulk_update(
            [Payment(id=source.id, surplus_used=source.used) for source in touched.values()],
            ["surplus_used"],
        )
        self._spendings = {}
        return dict(zip(customers, payment_ids, strict=True))


def credit_balances_lock(*, customer_ids: list[int]) -> CreditBalances:
    """The customers' credit balances, their sources (booked payments with surplus left, on
    any of the customer's invoices) locked in id order until the transaction ends: one
    statement. Precondition: inside the transaction that spends them."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock credit balances inside the transaction that spends them")
    sources: dict[int, list[_Source]] = defaultdict(list)
    if not customer_ids:
        return CreditBalances(sources)
    rows = (
        Payment.objects.select_for_update(of=("self",))
        .filter(
            AnyOf(F("invoice__customer_id"), sorted(set(customer_ids))),
            status=PaymentStatus.BOOKED,
            surplus__gt=F("surplus_used"),
        )
        .order_by("id")
        .values_list("id", "invoice__customer_id", "surplus", "surplus_used")
    )
    for payment_id, customer_id, surplus, used in rows:
        sources[customer_id].append(_Source(id=payment_id, surplus=surplus, used=used))
    return CreditBalances(sources)


def status_at_issue(*, total: Decimal, from_credit: Decimal) -> str:
    """A new invoice's status once the credit balance paid ``from_credit`` of it."""
    if from_credit <= ZERO:
        return InvoiceStatus.ISSUED
    return status_after_payment(InvoiceStatus.ISSUED, total - from_credit)


# --- by finance staff -------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditUsePreview:
    """What spending the customer's credit balance on an open invoice would do."""

    invoice: Invoice
    open_before: Decimal
    credit_before: Decimal  # the customer's balance before this invoice takes its part
    used: Decimal
    status_after: str
    # why nothing can be spent on it, as ``credit_balance_use`` would refuse it:
    # "invoice_not_payable" or "no_credit_balance"; empty when something can
    refusal: str = ""

    @property
    def status_after_label(self) -> str:
        return str(InvoiceStatus(self.status_after).label)


def credit_balance_use_preview(*, invoice_ids: list[int]) -> list[CreditUsePreview]:
    """What ``credit_balance_use`` would do to each invoice, in the order it does them (due
    date, then number), each customer's balance going down as their invoices take it. Two
    queries, whatever the number of invoices."""
    invoices = list(
        invoices_with_open_amount(Invoice.objects.filter(id__in=invoice_ids))
        .select_related("series", "customer")
        .order_by("due_date", "number", "id")
    )
    left = credit_balances({invoice.customer_id for invoice in invoices})
    previews = []
    for invoice in invoices:
        credit = left.get(invoice.customer_id, ZERO)
        open_before = money_sum(invoice.open_amount)  # type: ignore[attr-defined]
        refusal = _refusal(invoice, open_before, credit)
        used = ZERO if refusal else min(open_before, credit)
        left[invoice.customer_id] = credit - used
        previews.append(
            CreditUsePreview(
                invoice=invoice,
                open_before=open_before,
                credit_before=credit,
                used=used,
                status_after=status_after_payment(invoice.status, open_before - used)
                if used
                else invoice.status,
                refusal=refusal,
            )
        )
    return previews


def _refusal(invoice: Invoice, open_amount: Decimal, credit: Decimal) -> str:
    if invoice.kind != DocumentKind.INVOICE or invoice.status not in OPEN_STATUSES:
        return "invoice_not_payable"
    if open_amount <= ZERO:
        return "invoice_not_payable"
    if credit <= ZERO:
        return "no_credit_balance"
    return ""


@transaction.atomic
def credit_balance_use(*, invoice_id: int, by: User) -> Payment:
    """Pay an open invoice from its customer's credit balance, as far as it goes (finance
    staff, after reading ``credit_balance_use_preview``). Raises ``DomainError``
    ``invoice_not_payable`` when the invoice has nothing open, ``no_credit_balance`` when the
    customer has nothing to spend."""
    invoice = (
        Invoice.objects.select_for_update(of=("self",)).select_related("series").get(id=invoice_id)
    )
    open_before = invoice_balance(invoice).open
    if invoice.kind != DocumentKind.INVOICE or invoice.status not in OPEN_STATUSES:
        raise DomainError(
            code="invoice_not_payable",
            message=f"Invoice {invoice.display_number} has nothing open ({invoice.status}).",
        )
    if open_before <= ZERO:
        raise DomainError(
            code="invoice_not_payable",
            message=f"Invoice {invoice.display_number} has nothing open.",
        )
    balances = credit_balances_lock(customer_ids=[invoice.customer_id])
    used = balances.spend(customer_id=invoice.customer_id, amount=open_before)
    if not used:
        raise DomainError(
            code="no_credit_balance", message="The customer has no credit balance to use."
        )
    number = Payment.objects.filter(invoice=invoice, method=PaymentMethod.CREDIT).count() + 1
    booked = balances.book(
        invoice_ids={invoice.customer_id: invoice.id},
        paid_on=timezone.localdate(),
        key=str(number),
        by=by,
    )
    # (the customer's open page follows)
    invoice_status_follow(
        invoice=invoice, status=status_after_payment(invoice.status, open_before - used)
    )
    return Payment.objects.get(id=booked[invoice.customer_id])
