"""The accounting export: a period's invoices, credit notes, charges and payments as balanced
verifications for the operator's bookkeeping program, written as an SIE 4I file
(``core.sie``). Finance staff download it from the admin (``/admin/reports/accounting/``),
source systems from the API (``GET /api/v1/accounting/sie/``).

The accounts are the operator's (``AccountingSettings``, BAS defaults). Debit is positive, as
SIE writes it. One verification per event, on its legal date (Europe/Stockholm), each summing
to zero in öre:

- invoice (series of invoices; invoice date): debit receivables the total; credit revenue per
  VAT rate its base, output VAT per rate its VAT, and rounding the öresavrundning.
- credit note (series of invoices; its date): the same, the other way (its amounts are
  negative); and what the credit note made of paid money into surplus (its ``SurplusMove``
  rows): debit receivables, credit customer advances, in the credit note's own verification,
  since it happens in the same transaction and because of it.
- fee or interest (series of charges; ``charged_on``): debit receivables, credit reminder fees,
  instalment fees or interest (no VAT on these); a verification of its own, since a charge
  comes weeks after its invoice, often in another period.
- payment booked on its invoice (series of payments; ``paid_on``): debit the method's account
  (bankgiro, card, Swish, by hand) the amount; credit receivables what paid the invoice and
  customer advances its surplus at booking.
- payment from the credit balance (same): debit customer advances, credit receivables.
- card refund (same; a negative card payment): credit card its amount; debit customer
  advances what it took from the card payment's surplus (its ``SurplusMove``) and receivables
  the rest (open again on the invoice).
- payment that matched no invoice, or a bank's deduction (same): debit the method's account,
  credit unmatched payments, a suspense account (an OBS account, 2999): the money is the
  operator's but owed to no invoice yet.
- that payment put on an invoice by hand (same; the day it was matched): debit unmatched
  payments; credit receivables and customer advances as a booked payment.

So the receivables account's balance is what is open on the invoices
(``invoices_with_open_amount``), customer advances' is the customers' credit balances (the
surplus not spent), and unmatched payments' is the money waiting to be matched.

Verifications are selected by their own date. A period is best exported once it is over and
its bank files are in (BgMax comes the next banking day): something recorded later with an
earlier date (a late file, a Stripe event caught up days later) would belong to a period
already exported; each verification carries the date it was recorded (``regdatum``) so such
cases are seen. Verification numbers are left empty: the importing program numbers them in
its own series, in the file's order (by date within each series); each text names the
document and Touchpoint's payment id, so every verification leads back to its source.

The file declares every account of the settings (``#KONTO``, a few more than a period may
use), so every account a verification names is declared.

Reads go by ``values_list(...).iterator()``, a few statements whatever the period's size, no
model instances; the file is written to a spooled temporary file (``accounting_sie_file``),
so a refusal (a VAT rate without accounts) is an error before any byte is sent.
"""

import heapq
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from importlib import metadata
from typing import IO, Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone, translation
from django.utils.translation import gettext

from core.days import swedish_midnight
from core.errors import DomainError
from core.money import ZERO, money_sum
from core.sie import SieHeader, SieTransaction, SieVerification, sie_write
from invoices.models import (
    AccountingSettings,
    ChargeKind,
    DocumentKind,
    Invoice,
    InvoiceCharge,
    LedgerAccount,
    Payment,
    PaymentMethod,
    PaymentStatus,
    SurplusMove,
    SurplusMoveKind,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
CHUNK = 2000  # rows per round trip of the iterators

# The BAS chart's usual accounts for each of the settings' accounts: made on first use.
DEFAULT_ACCOUNTS: dict[str, tuple[str, str]] = {
    "receivables": ("1510", "Kundfordringar"),
    "customer_advances": ("2420", "Förskott från kunder"),
    "unmatched_payments": ("2999", "OBS-konto, ej matchade inbetalningar"),
    "rounding": ("3740", "Öres- och kronutjämning"),
    "bankgiro": ("1930", "Företagskonto/checkkonto/affärskonto"),
    "card": ("1580", "Fordringar för kontokort och kuponger"),
    "swish": ("1580", "Fordringar för kontokort och kuponger"),
    "manual": ("1930", "Företagskonto/checkkonto/affärskonto"),
    "revenue_25": ("3001", "Försäljning inom Sverige, 25 % moms"),
    "revenue_12": ("3002", "Försäljning inom Sverige, 12 % moms"),
    "revenue_6": ("3003", "Försäljning inom Sverige, 6 % moms"),
    "revenue_0": ("3004", "Försäljning inom Sverige, momsfri"),
    "vat_25": ("2611", "Utgående moms på försäljning inom Sverige, 25 %"),
    "vat_12": ("2621", "Utgående moms på försäljning inom Sverige, 12 %"),
    "vat_6": ("2631", "Utgående moms på försäljning inom Sverige, 6 %"),
    "reminder_fees": ("3591", "Påminnelse- och förseningsavgifter, ej moms"),
    "instalment_fees": ("3591", "Påminnelse- och förseningsavgifter, ej moms"),
    "interest": ("8313", "Ränteintäkter från kortfristiga fordringar"),
}
ACCOUNT_FIELDS = tuple(DEFAULT_ACCOUNTS)


@transaction.atomic
def accounting_settings() -> AccountingSettings:
    """The export's settings, with their accounts; made with ``DEFAULT_ACCOUNTS`` (and the
    accounts they name, unless they exist) the first time."""
    found = AccountingSettings.objects.select_related(*ACCOUNT_FIELDS).filter(id=1).first()
    if found is not None:
        return found
    accounts = {
        field: LedgerAccount.objects.get_or_create(number=number, defaults={"name": name})[0]
        for field, (number, name) in DEFAULT_ACCOUNTS.items()
    }
    AccountingSettings.objects.get_or_create(id=1, defaults=accounts)
    return AccountingSettings.objects.select_related(*ACCOUNT_FIELDS).get(id=1)


@dataclass(frozen=True)
class AccountPlan:
    """The settings' account numbers and series, read once for an export."""

    receivables: str
    customer_advances: str
    unmatched_payments: str
    rounding: str
    reminder_fees: str
    instalment_fees: str
    interest: str
    numbers: dict[str, str]  # every account's number, by settings field
    names: dict[str, str]  # every account's name, by number
    series_invoices: str
    series_payments: str
    series_charges: str

    @classmethod
    def of(cls, found: AccountingSettings) -> "AccountPlan":
        accounts: dict[str, LedgerAccount] = {
            field: getattr(found, field) for field in ACCOUNT_FIELDS
        }
        numbers = {field: account.number for field, account in accounts.items()}
        return cls(
            receivables=numbers["receivables"],
            customer_advances=numbers["customer_advances"],
            unmatched_payments=numbers["unmatched_payments"],
            rounding=numbers["rounding"],
            reminder_fees=numbers["reminder_fees"],
            instalment_fees=numbers["instalment_fees"],
            interest=numbers["interest"],
            numbers=numbers,
            names={account.number: account.name for account in accounts.values()},
            series_invoices=found.series_invoices,
            series_payments=found.series_payments,
            series_charges=found.series_charges,
        )

    def for_rate(self, rate: Decimal, document: str) -> tuple[str, str | None]:
        """The revenue and output VAT accounts of a VAT rate (a fraction: 0.25); None for
        VAT at 0 %. Raises ``DomainError`` ``vat_rate_without_account``."""
        fields = _RATE_FIELDS.get(rate)
        if fields is None:
            raise DomainError(
                code="vat_rate_without_account",
                message=f"{document} has VAT at {rate * 100:.0f} %, which has no revenue "
                "account in the accounting export's settings.",
            )
        revenue, vat = fields
        return self.numbers[revenue], self.numbers[vat] if vat else None

    def for_method(self, method: str) -> str:
        """The account money of ``method`` comes in on (the credit balance's: customer
        advances)."""
        if method == PaymentMethod.CREDIT:
            return self.numbers["customer_advances"]
        return self.numbers[method]


_RATE_FIELDS: dict[Decimal, tuple[str, str | None]] = {
    Decimal("0.25"): ("revenue_25", "vat_25"),
    Decimal("0.12"): ("revenue_12", "vat_12"),
    Decimal("0.06"): ("revenue_6", "vat_6"),
    Decimal("0"): ("revenue_0", None),
}


def _verification(
    series: str,
    on: date,
    text: str,
    registered_on: date | None,
    postings: Iterable[tuple[str, Decimal]],
) -> SieVerification | None:
    """The postings summed per account (in the order each account first comes), zeros left
    out; None when nothing is left. Raises ``DomainError`` ``verification_unbalanced`` for
    postings that do not sum to zero (stored amounts that disagree with each other)."""
    sums: dict[str, Decimal] = {}
    for account, amount in postings:
        sums[account] = sums.get(account, ZERO) + amount
    rows = tuple(SieTransaction(account, amount) for account, amount in sums.items() if amount)
    if not rows:
        return None
    if sum((row.amount for row in rows), ZERO) != ZERO:
        raise DomainError(
            code="verification_unbalanced", message=f"{text} ({on}) does not balance."
        )
    return SieVerification(
        series=series, on=on, text=text, transactions=rows, registered_on=registered_on
    )


def _local_day(moment: datetime) -> date:
    """The day in Stockholm of an aware moment (``timezone.localdate`` without its checks,
    once per row)."""
    return moment.astimezone(STOCKHOLM).date()


class _Texts:
    """The verifications' words, in Swedish (the books' language), looked up once."""

    def __init__(self) -> None:
        with translation.override("sv"):
            self.invoice = gettext("Invoice %(number)s, customer %(customer)s")
            self.credit_note = gettext(
                "Credit note %(number)s of invoice %(invoice)s, customer %(customer)s"
            )
            self.charges: dict[str, str] = {
                ChargeKind.REMINDER_FEE: gettext(
                    "Reminder fee, invoice %(invoice)s, customer %(customer)s"
                ),
                ChargeKind.INTEREST: gettext(
                    "Late-payment interest, invoice %(invoice)s, customer %(customer)s"
                ),
                ChargeKind.INSTALMENT_FEE: gettext(
                    "Instalment plan fee, invoice %(invoice)s, customer %(customer)s"
                ),
            }
            self.payment = gettext("Payment %(id)s (%(method)s), invoice %(invoice)s")
            self.refund = gettext("Refund %(id)s (%(method)s), invoice %(invoice)s")
            self.from_credit = gettext("Credit balance used, payment %(id)s, invoice %(invoice)s")
            self.unmatched = gettext(
                "Unmatched payment %(id)s (%(method)s), reference %(reference)s, %(payer)s"
            )
            self.matched = gettext("Unmatched payment %(id)s put on invoice %(invoice)s")
            self.methods = {method: str(method.label) for method in PaymentMethod}


def accounting_verifications(
    *, first: date, last: date, plan: AccountPlan
) -> Iterator[SieVerification]:
    """The verifications dated from ``first`` through ``last``: invoices and credit notes,
    then charges, then payments, each series by date. A generator: the rows are read as the
    verifications are taken. Raises ``DomainError`` (``vat_rate_without_account``,
    ``verification_unbalanced``) as it meets a document it cannot book."""
    texts = _Texts()
    yield from _documents(first, last, plan, texts)
    yield from _charges(first, last, plan, texts)
    yield from _payments(first, last, plan, texts)


def accounting_document_rows(*, first: date, last: date) -> QuerySet[Invoice, tuple[Any, ...]]:
    """The invoices and credit notes dated ``first`` through ``last``, as the export reads
    them: a tuple each, by date."""
    return (
        Invoice.objects.filter(invoice_date__gte=first, invoice_date__lte=last)
        .order_by("invoice_date", "id")
        .values_list(
            "id",
            "kind",
            "series__prefix",
            "number",
            "invoice_date",
            "issued_at",
            "total",
            "rounding",
            "vat_summary",
            "customer__customer_number",
            "credited_invoice__series__prefix",
            "credited_invoice__number",
        )
    )


def accounting_payment_rows(*, first: date, last: date) -> QuerySet[Payment, tuple[Any, ...]]:
    """The payments (booked or unmatched) paid ``first`` through ``last``, as the export
    reads them (``_PAYMENT_FIELDS``), by date."""
    return (
        Payment.objects.filter(paid_on__gte=first, paid_on__lte=last)
        .order_by("paid_on", "id")
        .values_list(*_PAYMENT_FIELDS)
    )


def _moves_by_cause(kind: str, **where: Any) -> dict[int, Decimal]:
    """The surplus moves of ``kind`` (``where`` their causes), summed by what caused them: the
    credit note's id, or the refund's."""
    cause = "credit_note_id" if kind == SurplusMoveKind.CREDIT_NOTE else "refund_id"
    return dict(
        SurplusMove.objects.filter(kind=kind, **where)
        .values(cause)
        .annotate(s=Sum("amount"))
        .values_list(cause, "s")
        .order_by()
    )


def _documents(
    first: date, last: date, plan: AccountPlan, texts: _Texts
) -> Iterator[SieVerification]:
    """Invoices and credit notes; a credit note with what it moved into surplus."""
    moved = _moves_by_cause(
        SurplusMoveKind.CREDIT_NOTE, credit_note__invoice_date__range=(first, last)
    )
    for (
        document_id,
        kind,
        prefix,
        number,
        on,
        issued_at,
        total,
        rounding,
        vat_summary,
        customer,
        credited_prefix,
        credited_number,
    ) in accounting_document_rows(first=first, last=last).iterator(chunk_size=CHUNK):
        if kind == DocumentKind.INVOICE:
            text = texts.invoice % {"number": f"{prefix}{number}", "customer": customer}
        else:
            text = texts.credit_note % {
                "number": f"{prefix}{number}",
                "invoice": f"{credited_prefix}{credited_number}",
                "customer": customer,
            }
        postings = [(plan.receivables, total)]
        for row in vat_summary:
            revenue, vat_account = plan.for_rate(Decimal(row["rate"]), text)
            postings.append((revenue, -Decimal(row["base"])))
            vat = Decimal(row["vat"])
            if vat:
                if vat_account is None:
                    raise DomainError(
                        code="verification_unbalanced",
                        message=f"{text} has VAT at 0 % that is not zero.",
                    )
                postings.append((vat_account, -vat))
        postings.append((plan.rounding, -rounding))
        into_surplus = money_sum(moved.get(document_id))
        postings += [(plan.receivables, into_surplus), (plan.customer_advances, -into_surplus)]
        verification = _verification(
            plan.series_invoices, on, text, _local_day(issued_at), postings
        )
        if verification is not None:
            yield verification


def _charges(
    first: date, last: date, plan: AccountPlan, texts: _Texts
) -> Iterator[SieVerification]:
    accounts: dict[str, str] = {
        ChargeKind.REMINDER_FEE: plan.reminder_fees,
        ChargeKind.INTEREST: plan.interest,
        ChargeKind.INSTALMENT_FEE: plan.instalment_fees,
    }
    rows = (
        InvoiceCharge.objects.filter(charged_on__gte=first, charged_on__lte=last)
        .order_by("charged_on", "id")
        .values_list(
            "kind",
            "amount",
            "charged_on",
            "created_at",
            "invoice__series__prefix",
            "invoice__number",
            "invoice__customer__customer_number",
        )
    )
    for kind, amount, on, created_at, prefix, number, customer in rows.iterator(chunk_size=CHUNK):
        text = texts.charges[kind] % {"invoice": f"{prefix}{number}", "customer": customer}
        postings = [(plan.receivables, amount), (accounts[kind], -amount)]
        verification = _verification(
            plan.series_charges, on, text, _local_day(created_at), postings
        )
        if verification is not None:
            yield verification


_PAYMENT_FIELDS = (
    "id",
    "status",
    "method",
    "amount",
    "surplus_at_booking",
    "paid_on",
    "booked_at",
    "matched_at",
    "reference",
    "payer",
    "invoice__series__prefix",
    "invoice__number",
)


def _by_hand(status: str, method: str, matched_at: datetime | None) -> bool:
    """Whether a booked payment was matched to its invoice by a person (it first waited as
    unmatched). A spending of the credit balance by finance staff records who did it too,
    but was never unmatched."""
    return status == PaymentStatus.BOOKED and matched_at is not None and method != "credit"


def _payments(
    first: date, last: date, plan: AccountPlan, texts: _Texts
) -> Iterator[SieVerification]:
    """Payments received (booked, or into unmatched), refunds and credit-balance spendings
    by ``paid_on``, merged with the matches by hand by the day they were made."""
    refunded = _moves_by_cause(SurplusMoveKind.REFUND, refund__paid_on__range=(first, last))
    received = accounting_payment_rows(first=first, last=last)
    start, end = swedish_midnight(first), swedish_midnight(last + timedelta(days=1))
    matched = (
        Payment.objects.filter(
            status=PaymentStatus.BOOKED, matched_at__gte=start, matched_at__lt=end
        )
        .exclude(method=PaymentMethod.CREDIT)
        .order_by("matched_at", "id")
        .values_list(*_PAYMENT_FIELDS)
    )

    def receipts() -> Iterator[tuple[date, int, SieVerification | None]]:
        for row in received.iterator(chunk_size=CHUNK):
            yield row[5], row[0], _payment_received(row, plan, texts, refunded)

    def matches() -> Iterator[tuple[date, int, SieVerification | None]]:
        for row in matched.iterator(chunk_size=CHUNK):
            day = _local_day(row[7])
            yield day, row[0], _payment_matched(row, day, plan, texts)

    for _day, _id, verification in heapq.merge(
        receipts(), matches(), key=lambda item: (item[0], item[1])
    ):
        if verification is not None:
            yield verification


def _payment_received(
    row: tuple[Any, ...], plan: AccountPlan, texts: _Texts, refunded: dict[int, Decimal]
) -> SieVerification | None:
    """A payment on its date: booked on its invoice, or into unmatched payments (also one
    matched by hand later: the match is a verification of its own)."""
    (payment_id, status, method, amount, surplus, paid_on, booked_at, matched_at) = row[:8]
    reference, payer, prefix, number = row[8:]
    words = {
        "id": payment_id,
        "method": texts.methods.get(method, method),
        "invoice": f"{prefix}{number}",
        "reference": reference or "-",
        "payer": payer,
    }
    money_account = plan.for_method(method)
    if status == PaymentStatus.UNMATCHED or _by_hand(status, method, matched_at):
        postings = [(money_account, amount), (plan.unmatched_payments, -amount)]
        return _verification(
            plan.series_payments,
            paid_on,
            (texts.unmatched % words).rstrip(", "),
            _local_day(booked_at),
            postings,
        )
    if method == PaymentMethod.CREDIT:
        template = texts.from_credit
    else:
        template = texts.refund if amount < ZERO else texts.payment
    # a refund's move out of its card payment's surplus (negative), booked with the refund
    taken = money_sum(refunded.get(payment_id))
    postings = [
        (money_account, amount),
        (plan.receivables, -(amount - surplus) + taken),
        (plan.customer_advances, -(surplus + taken)),
    ]
    return _verification(
        plan.series_payments, paid_on, template % words, _local_day(booked_at), postings
    )


def _payment_matched(
    row: tuple[Any, ...], day: date, plan: AccountPlan, texts: _Texts
) -> SieVerification | None:
    """An unmatched payment put on an invoice by a person, on the day they did it."""
    payment_id, _status, _method, amount, surplus = row[:5]
    prefix, number = row[10:]
    text = texts.matched % {"id": payment_id, "invoice": f"{prefix}{number}"}
    postings = [
        (plan.unmatched_payments, amount),
        (plan.receivables, -(amount - surplus)),
        (plan.customer_advances, -surplus),
    ]
    return _verification(plan.series_payments, day, text, day, postings)


# --- the file ------------------------------------------------------------------------------------


# What the file is, for a download: text in IBM PC code page 437 (SIE's "PC8").
SIE_CONTENT_TYPE = "text/plain; charset=IBM437"


def sie_file_name(*, first: date, last: date) -> str:
    return f"touchpoint-{first:%Y%m%d}-{last:%Y%m%d}.si"


def fiscal_years(*, first: date, last: date, start_month: int) -> tuple[tuple[date, date], ...]:
    """The fiscal years from the one ``last`` falls in back to the one ``first`` falls in,
    each as (first day, last day), for ``#RAR`` 0, -1, …"""

    def year_of(day: date) -> date:
        return date(day.year if day.month >= start_month else day.year - 1, start_month, 1)

    years = []
    start = year_of(last)
    while True:
        following = date(start.year + 1, start.month, 1)
        years.append((start, following - timedelta(days=1)))
        if start <= first:
            return tuple(years)
        start = date(start.year - 1, start.month, 1)


def _program_version() -> str:
    try:
        return metadata.version("touchpoint")
    except metadata.PackageNotFoundError:
        return "0"


def accounting_sie_write(out: IO[bytes], *, first: date, last: date, generated_by: str) -> int:
    """Write the SIE 4I file of the verifications dated ``first`` through ``last`` to
    ``out``; returns how many. Raises ``DomainError`` as ``accounting_verifications`` does
    (``out`` then holds part of a file: throw it away)."""
    found = accounting_settings()
    plan = AccountPlan.of(found)
    header = SieHeader(
        program="Touchpoint",
        version=_program_version(),
        generated_on=timezone.localdate(timezone=STOCKHOLM),
        generated_by=generated_by,
        company_name=str(settings.SELLER["name"]),
        org_number=str(settings.SELLER["org_number"]),
        fiscal_years=fiscal_years(
            first=first, last=last, start_month=found.fiscal_year_start_month
        ),
        chart_type=found.chart_type,
    )
    try:
        return sie_write(
            out,
            header=header,
            accounts=sorted(plan.names.items()),
            verifications=accounting_verifications(first=first, last=last, plan=plan),
        )
    except ValueError as error:  # (the writer's own check: a bug, not the data's)
        raise DomainError(code="verification_unbalanced", message=str(error)) from error


@contextmanager
def _one_snapshot() -> Iterator[None]:
    """Every read of the export sees the database as it was at one moment (PostgreSQL's
    REPEATABLE READ): a credit note or a refund committed while the file is written is in it
    with its surplus move, or neither is. Inside a caller's transaction, that transaction's
    own isolation holds (it can no longer be changed once it has read)."""
    outer = connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and not outer:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


# Kept in memory up to this size, then in a temporary file on disk.
SPOOL_BYTES = 8 * 1024 * 1024


def accounting_sie_file(*, first: date, last: date, generated_by: str) -> IO[bytes]:
    """The SIE 4I file of the period, written whole to a spooled temporary file and rewound
    (the caller closes it). Raises ``DomainError`` before anything is sent:
    ``period_invalid`` for a first day after the last, and as ``accounting_sie_write``."""
    if first > last:
        raise DomainError(code="period_invalid", message="The first day comes after the last day.")
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    try:
        with _one_snapshot():
            accounting_sie_write(spooled, first=first, last=last, generated_by=generated_by)
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return spooled  # type: ignore[return-value]
