"""Reads that the invoice page, the PDF, the admin and the API share."""

import hmac
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import (
    Count,
    DecimalField,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest
from django.http import Http404
from django.utils import timezone

from core.days import swedish_midnight
from core.money import ZERO, money_sum
from invoices.models import (
    OPEN_STATUSES,
    DocumentKind,
    Invoice,
    InvoiceCharge,
    InvoiceLink,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
)
from invoices.services.links import token_hash


@dataclass(frozen=True)
class LinkLookup:
    link: InvoiceLink | None  # the live link, if the token opens one
    known: bool  # the token was issued once (it may since have expired or been revoked)


def invoice_link_lookup(token: str) -> LinkLookup:
    """What ``token`` is: a live link, a link that was issued but no longer works, or a guess.

    Only the token's SHA-256 is looked up; the stored hash is compared in constant time.
    """
    if not 20 <= len(token) <= 100:
        return LinkLookup(link=None, known=False)
    digest = token_hash(token)
    try:
        # the customer comes along: pages name their delivery channels (the chat panel)
        link = InvoiceLink.objects.select_related(
            "invoice", "invoice__series", "invoice__customer"
        ).get(token_hash=digest)
    except InvoiceLink.DoesNotExist:
        return LinkLookup(link=None, known=False)
    if not hmac.compare_digest(link.token_hash, digest):
        return LinkLookup(link=None, known=False)
    if link.revoked_at is not None or link.expires_at <= timezone.now():
        return LinkLookup(link=None, known=True)
    return LinkLookup(link=link, known=True)


def invoice_link_is_live(digest: str) -> bool:
    """Whether the link with SHA-256 ``digest`` (``InvoiceLink.token_hash``) still opens its
    invoice: neither revoked nor expired. For what holds a link open for long (the chat's
    socket, at each post), so a revocation reaches it too. One indexed query, written out:
    the ORM took four times as long to build it as the query took to run."""
    table = InvoiceLink._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {table} WHERE token_hash = %s AND revoked_at IS NULL "  # noqa: S608
            "AND expires_at > %s LIMIT 1",
            [digest, timezone.now()],
        )
        return cursor.fetchone() is not None


def invoice_get_by_token(token: str) -> Invoice | None:
    """The invoice a live link opens; None for unknown, expired and revoked tokens alike."""
    link = invoice_link_lookup(token).link
    return link.invoice if link else None


def invoice_paid(invoice_id: int) -> Decimal:
    """What booked payments have paid of the invoice (their surplus not counted). One query."""
    paid = Payment.objects.filter(invoice_id=invoice_id, status=PaymentStatus.BOOKED).aggregate(
        paid=Sum(F("amount") - F("surplus"))
    )["paid"]
    return money_sum(paid)


def invoices_filtered(
    *,
    customer: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    period: str | None = None,
) -> QuerySet[Invoice]:
    """Invoices and credit notes for the API's list: ``customer`` is a customer number,
    ``period`` a month as YYYY-MM."""
    found = Invoice.objects.select_related("series", "customer")
    if customer:
        found = found.filter(customer__customer_number=customer)
    if status:
        found = found.filter(status=status)
    if kind:
        found = found.filter(kind=kind)
    if period:
        year, month = (int(part) for part in period.split("-"))
        found = found.filter(period_start__year=year, period_start__month=month)
    return found


def invoices_with_balances(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """Each invoice with ``paid_amount`` (booked payments, their surplus not), ``charged_amount``
    (fees, interest) and ``credited_amount`` (by credit notes, positive): one query for a page."""
    zero = Value(Decimal(0), output_field=DecimalField(max_digits=14, decimal_places=2))
    paid = (
        Payment.objects.filter(invoice_id=OuterRef("id"), status=PaymentStatus.BOOKED)
        .values("invoice_id")
        .annotate(s=Sum(F("amount") - F("surplus")))
        .values("s")
    )
    charged = (
        InvoiceCharge.objects.filter(invoice_id=OuterRef("id"))
        .values("invoice_id")
        .annotate(s=Sum("amount"))
        .values("s")
    )
    credited = (
        Invoice.objects.filter(credited_invoice_id=OuterRef("id"))
        .values("credited_invoice_id")
        .annotate(s=Sum("total"))
        .values("s")
    )
    return invoices.annotate(
        paid_amount=Coalesce(Subquery(paid), zero),
        charged_amount=Coalesce(Subquery(charged), zero),
        credited_amount=-Coalesce(Subquery(credited), zero),
    )


def invoice_get_for_api(invoice_id: int) -> Invoice:
    """An invoice or credit note with its balance and ``open_amount`` annotations, or
    ``Http404``."""
    found = (
        invoices_with_open_amount(Invoice.objects.select_related("series", "customer"))
        .prefetch_related("lines")
        .filter(id=invoice_id)
        .first()
    )
    if found is None:
        raise Http404("No such invoice.")
    return found


def payments_filtered(
    *,
    invoice: int | None = None,
    status: str | None = None,
    method: str | None = None,
    booked_from: date | None = None,
    booked_to: date | None = None,
) -> QuerySet[Payment]:
    """Payments for the API's list, with their invoice and its customer: those of an invoice
    (id), a status, a method, booked from and to a day (inclusive, in Swedish time)."""
    found = Payment.objects.select_related("invoice__series", "invoice__customer")
    if invoice is not None:
        found = found.filter(invoice_id=invoice)
    if status:
        found = found.filter(status=status)
    if method:
        found = found.filter(method=method)
    # Swedish days, as a range of the stored time (which the index on booked_at serves)
    if booked_from is not None:
        found = found.filter(booked_at__gte=swedish_midnight(booked_from))
    if booked_to is not None:
        found = found.filter(booked_at__lt=swedish_midnight(booked_to + timedelta(days=1)))
    return found


def payment_get_for_api(payment_id: int) -> Payment:
    """A payment with its invoice and its customer, or ``Http404``."""
    found = payments_filtered().filter(id=payment_id).first()
    if found is None:
        raise Http404("No such payment.")
    return found


@dataclass(frozen=True)
class InvoiceMoney:
    """What the page says about an invoice's money beyond its document, in kronor."""

    credited: Decimal  # by credit notes (positive)
    paid: Decimal  # by every booked payment, the credit balance's included (surplus not)
    from_credit: Decimal  # of ``paid``: by the customer's credit balance
    surplus: Decimal  # what its payments brought beyond what it had open
    charged: Decimal  # fees and interest added after issue
    credit_left: Decimal  # the customer's credit balance now (``customer_credit_balance``)


def _booked_sum(expression: Any, **where: Any) -> Subquery:
    """The sum of ``expression`` over the booked payments of the outer invoice."""
    return Subquery(
        Payment.objects.filter(invoice_id=OuterRef("id"), status=PaymentStatus.BOOKED, **where)
        .values("invoice_id")
        .annotate(s=Sum(expression))
        .values("s")
    )


def _credit_left_of(customer: Any) -> Subquery:
    """The credit balance of ``customer`` (an expression naming its id)."""
    return Subquery(
        _credit_sources()
        .filter(invoice__customer_id=customer)
        .values("invoice__customer_id")
        .annotate(s=Sum(F("surplus") - F("surplus_used")))
        .values("s")
    )


def invoice_money(invoice_id: int) -> InvoiceMoney:
    """``invoices_with_balances``' figures of the invoice, what the credit balance paid of it
    and what its payments brought beyond it, and the customer's credit balance: one query,
    for the page, its summary alone and the PDF."""
    row = (
        invoices_with_balances(Invoice.objects.filter(id=invoice_id))
        .annotate(
            from_credit=_booked_sum(F("amount") - F("surplus"), method=PaymentMethod.CREDIT),
            surplus=_booked_sum(F("surplus")),
            credit_left=_credit_left_of(OuterRef("customer_id")),
        )
        .values_list(
            "credited_amount",
            "paid_amount",
            "from_credit",
            "surplus",
            "charged_amount",
            "credit_left",
        )
        .first()
    )
    credited, paid, from_credit, surplus, charged, left = map(money_sum, row or [None] * 6)
    return InvoiceMoney(
        credited=credited,
        paid=paid,
        from_credit=from_credit,
        surplus=surplus,
        charged=charged,
        credit_left=left,
    )


def invoice_charged(invoice_id: int) -> Decimal:
    """What the claim grew by after issue (reminder fees, interest, an instalment plan's
    fee). One query."""
    charged = InvoiceCharge.objects.filter(invoice_id=invoice_id).aggregate(s=Sum("amount"))["s"]
    return money_sum(charged)


# --- the credit balance ----------------------------------------------------------------------


def _credit_sources() -> QuerySet[Payment]:
    """Booked payments with surplus not spent yet: what credit balances are made of."""
    return Payment.objects.filter(status=PaymentStatus.BOOKED, surplus__gt=F("surplus_used"))


# The credit-balance payment made when an invoice is issued; later ones (finance staff's) are
# numbered from 1.
CREDIT_AT_ISSUE = "issue"


def credit_source_key(invoice_id: int, spending: str) -> str:
    """The ``source_key`` of a payment from the credit balance: ``credit:<invoice id>:issue``
    for the one the bill run makes, ``credit:<invoice id>:<n>`` for finance staff's."""
    return f"credit:{invoice_id}:{spending}"


def invoice_credit_at_issue(invoice_id: int) -> Decimal:
    """What the credit balance paid of the invoice when it was issued (kronor): the document
    (the PDF) asks for the rest. One query."""
    amount = (
        Payment.objects.filter(source_key=credit_source_key(invoice_id, CREDIT_AT_ISSUE))
        .values_list("amount", flat=True)
        .first()
    )
    return amount or ZERO


def customer_credit_balance(customer_id: int) -> Decimal:
    """What the customer paid beyond their invoices and has not spent yet (kronor, never
    negative). One query."""
    left = (
        _credit_sources()
        .filter(invoice__customer_id=customer_id)
        .aggregate(s=Sum(F("surplus") - F("surplus_used")))["s"]
    )
    return money_sum(left)


def credit_balances(customer_ids: Iterable[int]) -> dict[int, Decimal]:
    """``customer_credit_balance`` of each customer that has one. One query."""
    rows = (
        _credit_sources()
        .filter(invoice__customer_id__in=list(customer_ids))
        .values("invoice__customer_id")
        .annotate(s=Sum(F("surplus") - F("surplus_used")))
        .values_list("invoice__customer_id", "s")
    )
    return {customer_id: money_sum(left) for customer_id, left in rows}


# --- receivables -------------------------------------------------------------------------------


def invoices_with_open_amount(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """``invoices_with_balances``, and ``open_amount``: total, less credit notes, plus
    charges, less what booked payments paid, never below zero (``invoice_balance``'s open
    amount, as an expression, for lists and sums)."""
    money = DecimalField(max_digits=14, decimal_places=2)
    owed = F("total") - F("credited_amount") + F("charged_amount") - F("paid_amount")
    return invoices_with_balances(invoices).annotate(
        open_amount=Greatest(owed, Value(ZERO, output_field=money), output_field=money)
    )


@dataclass(frozen=True)
class AgingBucket:
    """Open invoices by how many days their due date has passed (``None``: no bound)."""

    key: str  # "not_due", "0-30", "31-60", "61-90", "90+"
    first_day: int | None
    last_day: int | None
    count: int = 0
    amount: Decimal = ZERO  # kronor open

    def where(self, today: date) -> Q:
        """The bucket's invoices (among the open ones), by due date, on ``today``."""
        where = Q()
        if self.first_day is not None:
            where &= Q(due_date__lte=today - timedelta(days=self.first_day))
        if self.last_day is not None:
            where &= Q(due_date__gte=today - timedelta(days=self.last_day))
        return where


# Days past the due date. Due today counts as 0 days; "not due" are the days before it.
AGING_BUCKETS: tuple[AgingBucket, ...] = (
    AgingBucket("not_due", None, -1),
    AgingBucket("0-30", 0, 30),
    AgingBucket("31-60", 31, 60),
    AgingBucket("61-90", 61, 90),
    AgingBucket("90+", 91, None),
)


def aging_bucket(key: str) -> AgingBucket | None:
    return next((bucket for bucket in AGING_BUCKETS if bucket.key == key), None)


def open_invoices() -> QuerySet[Invoice]:
    """Invoices with money open (``OPEN_STATUSES``), not credit notes."""
    return Invoice.objects.filter(kind=DocumentKind.INVOICE, status__in=OPEN_STATUSES)


@dataclass(frozen=True)
class ReceivablesReport:
    """What customers owe on ``today``: open invoices by age, overdue ones, paid ones, and
    the payments waiting to be matched by hand. Amounts in kronor."""

    today: date
    open_count: int
    open_amount: Decimal
    overdue_count: int  # open, due date passed
    overdue_amount: Decimal
    paid_count: int
    paid_amount: Decimal  # the paid invoices' totals
    buckets: list[AgingBucket]
    unmatched_count: int
    unmatched_amount: Decimal


def receivables_report(*, today: date) -> ReceivablesReport:
    """Three queries, whatever the number of invoices: the open ones summed by age bucket,
    the paid ones, and the unmatched payments."""
    sums: dict[str, Any] = {}
    for bucket in AGING_BUCKETS:
        where = bucket.where(today)
        sums[f"n_{bucket.key}"] = Count("id", filter=where)
        sums[f"s_{bucket.key}"] = Sum("open_amount", filter=where)
    overdue = Q(due_date__lt=today)
    figures = invoices_with_open_amount(open_invoices()).aggregate(
        n=Count("id"),
        s=Sum("open_amount"),
        n_overdue=Count("id", filter=overdue),
        s_overdue=Sum("open_amount", filter=overdue),
        **sums,
    )
    paid = Invoice.objects.filter(kind=DocumentKind.INVOICE, status=InvoiceStatus.PAID).aggregate(
        n=Count("id"), s=Sum("total")
    )
    unmatched = Payment.objects.filter(status=PaymentStatus.UNMATCHED).aggregate(
        n=Count("id"), s=Sum("amount")
    )
    return ReceivablesReport(
        today=today,
        open_count=figures["n"],
        open_amount=money_sum(figures["s"]),
        overdue_count=figures["n_overdue"],
        overdue_amount=money_sum(figures["s_overdue"]),
        paid_count=paid["n"],
        paid_amount=money_sum(paid["s"]),
        buckets=[
            replace(
                bucket,
                count=figures[f"n_{bucket.key}"],
                amount=money_sum(figures[f"s_{bucket.key}"]),
            )
            for bucket in AGING_BUCKETS
        ],
        unmatched_count=unmatched["n"],
        unmatched_amount=money_sum(unmatched["s"]),
    )
