"""Payments received: booked on their invoice once, or left for a person to match.

A BgMax file (Bankgirot's incoming payments) is read and checked whole first
(``billing.bgmax``): nothing of a file that does not add up is booked. Then, in one
transaction, each payment is booked once (its ``source_key``: the same payment delivered in a
second file is not booked again, and the same file uploaded again books nothing) on the
invoice its OCR reference names, when that invoice has money open. Everything else waits in
the unmatched queue: references that name no invoice, or an invoice with nothing open
(paid, credited), deductions, and money in another currency. A payment beyond what its
invoice had open pays it and keeps the rest as its ``surplus``.
"""

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from zoneinfo import ZoneInfo

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from billing.bgmax import BgMaxDeposit, BgMaxPayment, bgmax_parse
from core.bulk import cycle_collection_paused, insert_rows
from core.errors import DomainError
from core.lookups import AnyOf
from core.money import money_sum
from invoices.models import (
    INVOICE_STATUS_TRANSITIONS,
    OPEN_STATUSES,
    BgMaxImport,
    DocumentKind,
    Invoice,
    InvoiceCharge,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    SurplusMove,
    SurplusMoveKind,
)
from invoices.selectors import invoice_charged, invoice_paid
from invoices.services.status import invoice_set_status, invoice_touch, invoices_told

ZERO = Decimal(0)
STOCKHOLM = ZoneInfo("Europe/Stockholm")


@dataclass(frozen=True)
class InvoiceBalance:
    """What an invoice asks, what credit notes took off it, what the claim grew by since
    (fees, interest: ``InvoiceCharge``), what payments brought (their surplus not counted),
    and what is open: ``total + charged == credited + paid + open`` while open, and open is
    never below zero."""

    total: Decimal
    credited: Decimal
    paid: Decimal
    charged: Decimal = ZERO

    @property
    def open(self) -> Decimal:
        return max(self.total + self.charged - self.credited - self.paid, ZERO)


def invoice_balance(invoice: Invoice) -> InvoiceBalance:
    """Three queries: the invoice's credit notes, its charges and its booked payments."""
    credited = -money_sum(
        Invoice.objects.filter(credited_invoice=invoice).aggregate(s=Sum("total"))["s"]
    )
    return InvoiceBalance(
        total=invoice.total,
        credited=credited,
        paid=invoice_paid(invoice.id),
        charged=invoice_charged(invoice.id),
    )


def bgmax_import(
    *, data: bytes, name: str, uploaded_by: User | None = None
) -> tuple[BgMaxImport, bool]:
    """Book a BgMax file: (its import, True), or (the first import of the same file, False)
    when it was uploaded before. Raises ``BgMaxError`` (``bgmax_invalid``) for a file that
    cannot be read or does not add up, and ``bgmax_test_file`` for one of Bankgirot's test
    files; nothing is booked then."""
    digest = hashlib.sha256(data).hexdigest()
    earlier = BgMaxImport.objects.filter(sha256=digest).first()
    if earlier is not None:
        return earlier, False
    parsed = bgmax_parse(data)
    if parsed.test:
        raise DomainError(
            code="bgmax_test_file",
            message="This is a test file from Bankgirot (marked T): nothing is booked.",
        )
    try:
        with cycle_collection_paused():
            return _book(parsed.deposits, parsed.written_at, digest, name, uploaded_by), True
    except IntegrityError:
        # the same file, uploaded twice at once: the other upload booked it
        earlier = BgMaxImport.objects.filter(sha256=digest).first()
        if earlier is not None:
            return earlier, False
    # Or another file holding some of the same payments was booked at the same moment: now
    # that it has committed, those count as booked before.
    with cycle_collection_paused():
        return _book(parsed.deposits, parsed.written_at, digest, name, uploaded_by), True


# What a file's payments are written as (``insert_rows``' columns; the rest take defaults).
_COLUMNS = (
    "invoice_id",
    "status",
    "method",
    "amount",
    "surplus",
    "surplus_at_booking",  # (the same: what the booking left over, never changed)
    "currency",
    "paid_on",
    "booked_at",
    "reference",
    "payer",
    "source_key",
    "bgmax_import_id",
    "record",
)


@transaction.atomic
def _book(
    deposits: list[BgMaxDeposit],
    written_at: datetime,
    digest: str,
    name: str,
    uploaded_by: User | None,
) -> BgMaxImport:
    """A file's payments in one transaction, a few statements whatever their number (a
    day's file of a large operator holds hundreds of thousands): the known ones looked up,
    the invoices named locked with their balances, the payments written with COPY, the
    invoices' statuses set."""
    now = timezone.now()
    imported = BgMaxImport.objects.create(
        sha256=digest,
        name=name[:200],
        uploaded_at=now,
        uploaded_by=uploaded_by,
        written_at=written_at,
        deposits=len(deposits),
        payments=sum(len(deposit.payments) for deposit in deposits),
        booked=0,
        unmatched=0,
        already_booked=0,
    )
    keys: list[str] = []
    seen: dict[str, int] = {}
    references: set[str] = set()
    for deposit in deposits:
        for payment in deposit.payments:
            key = _source_key(deposit, payment, digest)
            # Two payments of one file under one key (Bankgirot's sample files repeat a
            # serial number) are two payments: the second is numbered, the same way in any
            # copy.
            count = seen[key] = seen.get(key, 0) + 1
            keys.append(key if count == 1 else f"{key}:{count}")
            if _bookable(deposit, payment):
                references.add(payment.ocr)
    known: set[str] = set()
    for chunk in _chunks(keys):
        known.update(
            Payment.objects.filter(AnyOf(F("source_key"), chunk)).values_list(
                "source_key", flat=True
            )
        )
    payable = _payable_invoices(references)
    # Rows as tuples in ``_COLUMNS``' order, no dict per row. The file's and each deposit's
    # dates go as their text, made once: psycopg formats a datetime in about 2 µs, which
    # 100,000 rows would repeat.
    rows: list[tuple[object, ...]] = []
    booked = unmatched = 0
    unmatched_status, booked_status = PaymentStatus.UNMATCHED.value, PaymentStatus.BOOKED.value
    method, booked_at = PaymentMethod.BANKGIRO.value, now.isoformat()
    index = 0
    for deposit in deposits:
        currency, paid_on = deposit.currency, deposit.payment_date.isoformat()
        for payment in deposit.payments:
            key = keys[index]
            index += 1
            if key in known:
                continue
            known.add(key)
            ore = -payment.amount_ore if payment.deduction else payment.amount_ore
            amount = Decimal(ore).scaleb(-2)  # exact: öre to kronor
            invoice = payable.get(payment.ocr) if _bookable(deposit, payment) else None
            if invoice is None:
                invoice_id, status, surplus = None, unmatched_status, ZERO
                unmatched += 1
            else:
                paying = min(amount, invoice.open)
                invoice.open -= paying
                invoice.touched = True
                invoice_id, status, surplus = invoice.id, booked_status, amount - paying
                booked += 1
            rows.append(
                (
                    invoice_id,
                    status,
                    method,
                    amount,
                    surplus,
                    surplus,
                    currency,
                    paid_on,
                    booked_at,
                    payment.reference[:35],
                    payment.name[:120],
                    key,
                    imported.id,
                    payment.record,
                )
            )
    insert_rows(Payment, rows, returning_ids=False, columns=_COLUMNS)
    touched = [invoice for invoice in payable.values() if invoice.touched]
    _statuses_after_payments(touched)
    payments_announce(invoice_ids=[invoice.id for invoice in touched])
    imported.booked, imported.unmatched = booked, unmatched
    imported.already_booked = index - booked - unmatched
    imported.save(update_fields=["booked", "unmatched", "already_booked"])
    return imported


# Values per statement on SQLite, which binds each as a parameter (and allows a few tens of
# thousands); PostgreSQL takes a batch of any size as one array (``AnyOf``).
CHUNK = 5000


def _chunks[T](values: Iterable[T]) -> Iterator[list[T]]:
    if connection.vendor == "postgresql":
        whole = list(values)
        if whole:
            yield whole
        return
    batch: list[T] = []
    for value in values:
        batch.append(value)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(slots=True)
class _Payable:
    """An invoice being paid by a file: what it has open as it moves, payment by payment."""

    id: int
    status: str
    open: Decimal
    touched: bool = False


def _payable_invoices(references: set[str]) -> dict[str, _Payable]:
    """The invoices with money open that ``references`` name, by reference, locked, with
    their balances read once they are: four statements. On PostgreSQL all of them are
    locked by one statement in ascending id order, so two files (or a file and a card
    payment) take turns instead of deadlocking; SQLite locks the whole database instead,
    and takes them in chunks."""
    found: dict[str, _Payable] = {}
    for named in _chunks(sorted(references)):
        locked = list(
            Invoice.objects.select_for_update()
            .filter(AnyOf(F("ocr"), named), status__in=OPEN_STATUSES)
            .order_by("id")
            .values_list("id", "ocr", "status", "total")
        )
        ids = [invoice_id for invoice_id, *_rest in locked]
        # read after the lock (a statement of its own sees what committed while it waited)
        credited = dict(
            Invoice.objects.filter(AnyOf(F("credited_invoice_id"), ids))
            .values("credited_invoice_id")
            .annotate(total=Sum("total"))
            .values_list("credited_invoice_id", "total")
        )
        paid = dict(
            Payment.objects.filter(AnyOf(F("invoice_id"), ids), status=PaymentStatus.BOOKED)
            .values("invoice_id")
            .annotate(paid=Sum(F("amount") - F("surplus")))
            .values_list("invoice_id", "paid")
        )
        charged = dict(
            InvoiceCharge.objects.filter(AnyOf(F("invoice_id"), ids))
            .values("invoice_id")
            .annotate(charged=Sum("amount"))
            .values_list("invoice_id", "charged")
        )
        for invoice_id, ocr, status, total in locked:
            if ocr is None:
                continue  # (a credit note: none is payable)
            owed = (
                total
                + money_sum(credited.get(invoice_id))  # (a credit note's total is negative)
                + money_sum(charged.get(invoice_id))
                - money_sum(paid.get(invoice_id))
            )
            found[ocr] = _Payable(id=invoice_id, status=status, open=max(owed, ZERO))
    return found


def status_after_payment(status: str, still_open: Decimal) -> str:
    """An invoice's status once a payment left ``still_open`` of it: paid when nothing is
    left; partly paid when something is and it was only issued; else as it was (overdue, in
    collection, partly paid already)."""
    if still_open == ZERO:
        return InvoiceStatus.PAID
    if status == InvoiceStatus.ISSUED:
        return InvoiceStatus.PARTLY_PAID
    return status


def _statuses_after_payments(invoices: list[_Payable]) -> None:
    """Paid in full: paid; partly, and it was only issued: partly paid; otherwise (overdue,
    in collection, already partly paid) the status stays and only what is open changed.
    Every invoice's ``revision`` moves: its page shows the new amount. Precondition: the
    invoices are locked in this transaction."""
    by_status: dict[str | None, list[int]] = {}
    for invoice in invoices:
        after = status_after_payment(invoice.status, invoice.open)
        status = after if after != invoice.status else None
        if status is not None and status not in INVOICE_STATUS_TRANSITIONS[invoice.status]:
            raise DomainError(
                code="invalid_status_transition",
                message=f"An invoice that is {invoice.status} cannot become {status}.",
            )
        by_status.setdefault(status, []).append(invoice.id)
    for status, ids in by_status.items():
        for chunk in _chunks(ids):
            changes: dict[str, object] = {"revision": F("revision") + 1}
            if status is not None:
                changes["status"] = status
            Invoice.objects.filter(AnyOf(F("id"), chunk)).update(**changes)
        invoices_told(status=status or "", ids=ids)


ANNOUNCE_CHUNK = 1000  # invoices per announcing task (a day's file may touch many thousands)


def payments_announce(*, invoice_ids: list[int]) -> None:
    """Once this transaction commits, tell the customers' open pages of these invoices that
    their payments changed (``invoices.tasks.invoice_payments_announce_task``), in tasks of
    ``ANNOUNCE_CHUNK`` so a large file's booking is not held up by it."""
    from invoices.tasks import invoice_payments_announce_task

    for start in range(0, len(invoice_ids), ANNOUNCE_CHUNK):
        chunk = invoice_ids[start : start + ANNOUNCE_CHUNK]
        transaction.on_commit(partial(invoice_payments_announce_task.delay, invoice_ids=chunk))


def invoice_status_follow(*, invoice: Invoice, status: str) -> None:
    """Money booked on ``invoice`` (or given back) changed what is open on it: it moves to
    ``status`` (the operator's systems hear of the moves they listen for, such as
    invoice.paid), or, staying where it is, shows its new amounts; either way its open pages
    hear of it after commit. Precondition: ``invoice`` is locked in this transaction."""
    if status != invoice.status:
        invoice_set_status(invoice=invoice, status=status)
    else:
        invoice_touch(invoice_id=invoice.id)
    payments_announce(invoice_ids=[invoice.id])


def payment_book_on_invoice(
    *,
    invoice: Invoice,
    method: str,
    amount: Decimal,
    currency: str,
    paid_on: date,
    source_key: str,
    reference: str = "",
    payer: str = "",
) -> Payment:
    """Money received for ``invoice`` (a card payment, a card refund that came back, a
    payment registered by hand) booked on it, as any payment is: what is beyond the invoice's
    open amount (kronor) is kept as the payment's surplus, the customer's credit balance; on
    an invoice with nothing open (paid meanwhile, credited) or in another currency all of it
    is. Precondition: the invoice is locked in this transaction and no payment has
    ``source_key`` yet."""
    payable = invoice.status in OPEN_STATUSES and currency == invoice.currency
    open_before = invoice_balance(invoice).open if payable else ZERO
    surplus = max(amount - open_before, ZERO)
    payment = Payment.objects.create(
        invoice=invoice,
        status=PaymentStatus.BOOKED,
        method=method,
        amount=amount,
        surplus=surplus,
        surplus_at_booking=surplus,
        currency=currency,
        paid_on=paid_on,
        booked_at=timezone.now(),
        reference=reference[:35],
        payer=payer[:120],
        source_key=source_key,
    )
    after = status_after_payment(invoice.status, open_before - (amount - surplus))
    invoice_status_follow(invoice=invoice, status=after if payable else invoice.status)
    return payment


def _bookable(deposit: BgMaxDeposit, payment: BgMaxPayment) -> bool:
    """Whether the payment may be booked on the invoice its reference names by itself: a
    payment (not a deduction) in kronor with a checked OCR reference."""
    return deposit.currency == "SEK" and not payment.deduction and bool(payment.ocr)


def _source_key(deposit: BgMaxDeposit, payment: BgMaxPayment, digest: str) -> str:
    """The same payment in any file: Bankgirot's serial numbers of the deposit and the
    payment, on the payee's bankgiro number and the payment date, with its amount; a payment
    without a serial number is known by its file and record."""
    if payment.serial.strip("0 "):
        return (
            f"bgmax:{deposit.payee_bankgiro}:{deposit.payment_date}:{deposit.serial}:"
            f"{payment.serial}:{payment.amount_ore}"
        )
    return f"bgmax-file:{digest}:{payment.record}"


def invoice_overpaid_to_surplus(*, invoice: Invoice, credit_note: Invoice) -> Decimal:
    """After ``credit_note``: what payments paid beyond what is now owed on ``invoice``
    becomes their surplus, the newest payment's first (the customer's credit balance, to be
    spent on the next invoice), each part recorded as a ``SurplusMove`` of the credit note,
    on its date. Returns the kronor moved. Precondition: ``invoice`` is locked in this
    transaction, so no payment is booked on it meanwhile."""
    balance = invoice_balance(invoice)
    excess = balance.paid - (balance.total + balance.charged - balance.credited)
    moved = ZERO
    if excess <= ZERO:
        return moved
    payments = (
        Payment.objects.select_for_update()
        .filter(invoice=invoice, status=PaymentStatus.BOOKED, amount__gt=F("surplus"))
        .order_by("-id")
    )
    now = timezone.now()
    for payment in payments:
        take = min(excess - moved, payment.amount - payment.surplus)
        payment.surplus += take
        payment.save(update_fields=["surplus"])
        SurplusMove.objects.create(
            payment=payment,
            kind=SurplusMoveKind.CREDIT_NOTE,
            amount=take,
            moved_on=credit_note.invoice_date,
            credit_note=credit_note,
            created_at=now,
        )
        moved += take
        if moved == excess:
            break
    return moved


# --- by hand -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchPreview:
    """What booking an unmatched payment on an invoice would do, shown before it is done."""

    payment: Payment
    invoice: Invoice
    open_before: Decimal
    booked: Decimal  # what pays the invoice
    surplus: Decimal  # what is left over, kept on the payment
    status_after: str

    @property
    def status_after_label(self) -> str:
        return str(InvoiceStatus(self.status_after).label)


def payment_match_preview(*, payment_id: int, invoice_id: int) -> MatchPreview:
    """Raises ``DomainError`` when the payment cannot go on that invoice."""
    payment = Payment.objects.get(id=payment_id)
    invoice = Invoice.objects.select_related("series").get(id=invoice_id)
    return _preview(payment, invoice)


@transaction.atomic
def payment_match(*, payment_id: int, invoice_id: int, by: User) -> Payment:
    """Book an unmatched payment on the invoice a person chose (finance staff, after reading
    the payer's name and message): as a matched payment is booked, with who did it and when."""
    payment = Payment.objects.select_for_update().get(id=payment_id)
    invoice = (
        Invoice.objects.select_for_update(of=("self",)).select_related("series").get(id=invoice_id)
    )
    preview = _preview(payment, invoice)
    payment.invoice, payment.status = invoice, PaymentStatus.BOOKED
    payment.surplus = payment.surplus_at_booking = preview.surplus
    payment.matched_by, payment.matched_at = by, timezone.now()
    payment.save(
        update_fields=[
            "invoice",
            "status",
            "surplus",
            "surplus_at_booking",
            "matched_by",
            "matched_at",
        ]
    )
    invoice_status_follow(invoice=invoice, status=preview.status_after)
    return payment


def _preview(payment: Payment, invoice: Invoice) -> MatchPreview:
    if payment.status != PaymentStatus.UNMATCHED:
        raise DomainError(
            code="payment_not_unmatched", message="This payment is booked on an invoice already."
        )
    if payment.amount <= 0 or payment.currency != "SEK":
        raise DomainError(
            code="payment_not_bookable",
            message="Only a payment in kronor can go on an invoice (not a deduction).",
        )
    if invoice.status not in OPEN_STATUSES:
        raise DomainError(
            code="invoice_not_payable",
            message=f"Invoice {invoice.display_number} has nothing open ({invoice.status}).",
        )
    open_before = invoice_balance(invoice).open
    booked = min(payment.amount, open_before)
    return MatchPreview(
        payment=payment,
        invoice=invoice,
        open_before=open_before,
        booked=booked,
        surplus=payment.amount - booked,
        status_after=status_after_payment(invoice.status, open_before - booked),
    )


# --- registered through the API ----------------------------------------------------------------

# The methods a payment received outside Touchpoint's own channels is registered with: cash at
# the operator's shop or a bank transfer booked in their ERP (manual), and Swish, whose money
# reaches the operator's Swish account without Touchpoint hearing of it. Not bankgiro (a BgMax
# file books those, and would book the same payment again under its own key), not card
# (Stripe's events book those), not credit (money moved from a credit balance, not received).
REGISTRABLE_METHODS = frozenset({PaymentMethod.MANUAL.value, PaymentMethod.SWISH.value})
# A registered payment's ``source_key``: this, then the caller's own id of the payment.
REGISTERED_SOURCE = "registered:"
EXTERNAL_ID_MAX_LENGTH = 100


@dataclass(frozen=True)
class PaymentRegistered:
    payment: Payment
    created: bool  # False: the payment of this external id, registered before


def payment_register(
    *,
    external_id: str,
    amount: Decimal,
    paid_on: date,
    method: str = PaymentMethod.MANUAL,
    invoice_id: int | None = None,
    ocr: str | None = None,
    reference: str = "",
    payer: str = "",
) -> PaymentRegistered:
    """Book a payment the operator received outside Touchpoint's channels (cash at a shop, a
    bank transfer their ERP booked, Swish) on the invoice named by id or by OCR reference, as
    any payment is booked (``payment_book_on_invoice``): a surplus beyond what is open, the
    invoice's status (invoice.paid told), its open pages told after commit.

    Once per ``external_id`` (the caller's own id of the payment, unique across its systems):
    registering it again with the same invoice, amount, date and method answers the first
    payment (``created`` False), also when both arrive at the same moment; with anything else
    it is refused (``external_id_reused``). Raises ``DomainError``: ``invoice_not_found``,
    ``not_an_invoice`` (a credit note), ``invoice_credited``, ``payment_method_not_registrable``,
    ``amount_not_positive``, ``amount_invalid`` (more than two decimals),
    ``paid_on_in_future`` (after today in Sweden), ``external_id_invalid``."""
    if (invoice_id is None) == (ocr is None):
        raise TypeError("name the invoice by its id or by its OCR reference")
    if not external_id.strip() or len(external_id) > EXTERNAL_ID_MAX_LENGTH:
        raise DomainError(
            code="external_id_invalid",
            message=f"Give the payment's own id, 1–{EXTERNAL_ID_MAX_LENGTH} characters.",
        )
    named = (
        Invoice.objects.filter(id=invoice_id)
        if invoice_id is not None
        else Invoice.objects.filter(ocr=(ocr or "").replace(" ", ""))
    )
    found = named.values_list("id", "kind").first()
    if found is None:
        raise DomainError(
            code="invoice_not_found",
            message="No invoice has that id." if ocr is None else "No invoice has that OCR.",
        )
    if found[1] != DocumentKind.INVOICE:
        raise DomainError(code="not_an_invoice", message="A credit note is not paid.")
    source_key = f"{REGISTERED_SOURCE}{external_id}"
    try:
        with transaction.atomic():
            return _register(
                invoice_id=found[0],
                source_key=source_key,
                amount=amount,
                paid_on=paid_on,
                method=method,
                reference=reference,
                payer=payer,
            )
    except IntegrityError:
        # the same id registered on another invoice at the same moment, committed first
        earlier = Payment.objects.filter(source_key=source_key).first()
        if earlier is None:
            raise
        return _registered_before(earlier, found[0], amount, paid_on, method)


def _register(
    *,
    invoice_id: int,
    source_key: str,
    amount: Decimal,
    paid_on: date,
    method: str,
    reference: str,
    payer: str,
) -> PaymentRegistered:
    # Under the invoice's lock (its row only: not its series, which a bill run holds while it
    # numbers invoices): a second registration of the same payment waits, then finds it.
    invoice = Invoice.objects.select_for_update().get(id=invoice_id)
    earlier = Payment.objects.filter(source_key=source_key).first()
    if earlier is not None:
        return _registered_before(earlier, invoice.id, amount, paid_on, method)
    if method not in REGISTRABLE_METHODS:
        raise DomainError(
            code="payment_method_not_registrable",
            message=f"A payment is registered as one of: {', '.join(sorted(REGISTRABLE_METHODS))}.",
        )
    if amount <= ZERO:
        raise DomainError(code="amount_not_positive", message="The amount must be above 0.")
    if amount != amount.quantize(Decimal("0.01")):
        raise DomainError(code="amount_invalid", message="The amount has at most two decimals.")
    today = timezone.localdate(timezone=STOCKHOLM)
    if paid_on > today:
        raise DomainError(
            code="paid_on_in_future", message=f"A payment is registered once made (by {today})."
        )
    if invoice.status == InvoiceStatus.CREDITED:
        raise DomainError(
            code="invoice_credited",
            message=f"Invoice {invoice.display_number} is credited in full: nothing is owed on it.",
        )
    payment = payment_book_on_invoice(
        invoice=invoice,
        method=method,
        amount=amount,
        currency=invoice.currency,
        paid_on=paid_on,
        source_key=source_key,
        reference=reference,
        payer=payer,
    )
    return PaymentRegistered(payment=payment, created=True)


def _registered_before(
    earlier: Payment, invoice_id: int, amount: Decimal, paid_on: date, method: str
) -> PaymentRegistered:
    """The payment registered before under the same id: the same payment told again, or
    another one under an id that is taken."""
    if (earlier.invoice_id, earlier.amount, earlier.paid_on, earlier.method) != (
        invoice_id,
        amount,
        paid_on,
        method,
    ):
        raise DomainError(
            code="external_id_reused",
            message="A payment with this id was registered before, with another invoice, "
            "amount, date or method.",
        )
    return PaymentRegistered(payment=earlier, created=False)
