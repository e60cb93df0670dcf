"""Finance reports: by month, what was invoiced, credited, paid, and what of it is open and
overdue today; VAT per rate and month; credit notes per month. Aggregated in the database (a
handful of queries whatever the number of invoices), shown in the admin with charts and
downloadable as CSV (``/admin/reports/finance/``).

Months are those of the documents' legal dates (invoice date, the payment's date), in
Europe/Stockholm as stored. Amounts are kronor, VAT included unless named "base".
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Count, DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth

from core.money import money_sum
from invoices.models import (
    OPEN_STATUSES,
    DocumentKind,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentStatus,
)
from invoices.selectors import invoices_with_open_amount

ZERO = Decimal(0)
_MONEY = DecimalField(max_digits=16, decimal_places=2)


def _zero() -> Value:
    return Value(ZERO, output_field=_MONEY)


@dataclass
class MonthRow:
    month: date
    invoices: int = 0
    invoiced: Decimal = ZERO
    credit_notes: int = 0
    credited: Decimal = ZERO  # positive: what credit notes took off
    paid: Decimal = ZERO  # money received in the month (all methods, surplus included)
    open: Decimal = ZERO  # of the month's invoices, open today
    overdue: Decimal = ZERO  # of that, past its due date


SUMMED = ("invoices", "invoiced", "credit_notes", "credited", "paid", "open", "overdue")


@dataclass
class VatRow:
    month: date
    rate: Decimal  # percent, as the invoice prints it (25.00)
    base: Decimal
    vat: Decimal


@dataclass
class FinanceReport:
    first: date
    last: date
    today: date
    months: list[MonthRow] = field(default_factory=list)
    vat: list[VatRow] = field(default_factory=list)

    @property
    def totals(self) -> MonthRow:
        total = MonthRow(month=self.first)
        for row in self.months:
            for name in (
                "invoices",
                "invoiced",
                "credit_notes",
                "credited",
                "paid",
                "open",
                "overdue",
            ):
                setattr(total, name, getattr(total, name) + getattr(row, name))
        return total


def _month_starts(first: date, last: date) -> list[date]:
    months, day = [], first.replace(day=1)
    while day <= last:
        months.append(day)
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return months


def finance_report(*, first: date, last: date, today: date) -> FinanceReport:
    """The months from ``first``'s to ``last``'s (both included). Four queries."""
    first, end = first.replace(day=1), last
    report = FinanceReport(first=first, last=last, today=today)
    rows = {month: MonthRow(month=month) for month in _month_starts(first, end)}
    documents = Invoice.objects.filter(invoice_date__gte=first, invoice_date__lte=end)
    for month, kind, count, amount in (
        documents.annotate(month=TruncMonth("invoice_date"))
        .values("month", "kind")
        .annotate(count=Count("id"), amount=Sum("total"))
        .values_list("month", "kind", "count", "amount")
        .order_by()
    ):
        row = rows[_as_date(month)]
        if kind == DocumentKind.INVOICE:
            row.invoices, row.invoiced = count, amount or ZERO
        else:
            row.credit_notes, row.credited = count, -(amount or ZERO)
    paid = (
        Payment.objects.filter(status=PaymentStatus.BOOKED, paid_on__gte=first, paid_on__lte=end)
        .annotate(month=TruncMonth("paid_on"))
        .values("month")
        .annotate(amount=Sum("amount"))
        .values_list("month", "amount")
        .order_by()
    )
    for month, amount in paid:
        rows[_as_date(month)].paid = amount or ZERO
    # (the balance rule of invoices.services.payments.invoice_balance, as one expression)
    owed = (
        invoices_with_open_amount(
            documents.filter(kind=DocumentKind.INVOICE, status__in=OPEN_STATUSES)
        )
        .annotate(month=TruncMonth("invoice_date"))
        .values("month")
        .annotate(open=Sum("open_amount"), overdue=Sum("open_amount", filter=Q(due_date__lt=today)))
        .values_list("month", "open", "overdue")
        .order_by()
    )
    for month, open_amount, overdue in owed:
        row = rows[_as_date(month)]
        row.open, row.overdue = money_sum(open_amount), money_sum(overdue)
    report.months = list(rows.values())
    vat = (
        InvoiceLine.objects.filter(invoice__invoice_date__gte=first, invoice__invoice_date__lte=end)
        .annotate(month=TruncMonth("invoice__invoice_date"))
        .values("month", "vat_rate")
        .annotate(amount=Coalesce(Sum("amount"), _zero()), vat=Coalesce(Sum("vat_amount"), _zero()))
        .values_list("month", "vat_rate", "amount", "vat")
        .order_by("month", "vat_rate")
    )
    report.vat = [
        VatRow(
            month=_as_date(month),
            rate=(rate * 100).quantize(Decimal("0.01")),  # (stored as a fraction: 0.25)
            base=amount - vat_amount,
            vat=vat_amount,
        )
        for month, rate, amount, vat_amount in vat
    ]
    return report


def _as_date(value: object) -> date:
    """TruncMonth answers a date for a DateField (a datetime on some backends)."""
    if hasattr(value, "date") and callable(value.date):
        return value.date()  # type: ignore[no-any-return]
    assert isinstance(value, date)  # noqa: S101
    return value
