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
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.bgmax import BgMaxDeposit, BgMaxPayment, bgmax_parse
from core.errors import DomainError
from invoices.models import (
    BgMaxImport,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
)
from invoices.services.status import invoice_set_status, invoice_touch

ZERO = Decimal(0)
# An invoice in one of these has money open that a payment may pay.
PAYABLE = frozenset(
    {
        InvoiceStatus.ISSUED,
        InvoiceStatus.PARTLY_PAID,
        InvoiceStatus.OVERDUE,
        InvoiceStatus.COLLECTION,
    }
)


@dataclass(frozen=True)
class InvoiceBalance:
    """What an invoice asks, what credit notes took off it, what payments brought (their
    surplus not counted), and what is open: ``total == credited + paid + open`` while open,
    and open is never below zero."""

    total: Decimal
    credited: Decimal
    paid: Decimal

    @property
    def open(self) -> Decimal:
        return max(self.total - self.credited - self.paid, ZERO)


def invoice_balance(invoice: Invoice) -> InvoiceBalance:
    """Two queries: the invoice's credit notes and its booked payments."""
    credited = -(
        Invoice.objects.filter(credited_invoice=invoice).aggregate(s=Sum("total"))["s"] or ZERO
    )
    paid = ZERO
    for amount, surplus in Payment.objects.filter(
        invoice=invoice, status=PaymentStatus.BOOKED
    ).values_list("amount", "surplus"):
        paid += amount - surplus
    return InvoiceBalance(total=invoice.total, credited=credited, paid=paid)


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
        return _book(parsed.deposits, parsed.written_at, digest, name, uploaded_by), True
    except IntegrityError:
        # the same file, uploaded twice at once: the other upload booked it
        earlier = BgMaxImport.objects.filter(sha256=digest).first()
        if earlier is None:
            raise
        return earlier, False


@transaction.atomic
def _book(
    deposits: list[BgMaxDeposit],
    written_at: datetime,
    digest: str,
    name: str,
    uploaded_by: User | None,
) -> BgMaxImport:
    now = timezone.now()
    received = [(deposit, payment) for deposit in deposits for payment in deposit.payments]
    imported = BgMaxImport.objects.create(
        sha256=digest,
        name=name[:200],
        uploaded_at=now,
        uploaded_by=uploaded_by,
        written_at=written_at,
        deposits=len(deposits),
        payments=len(received),
        booked=0,
        unmatched=0,
        already_booked=0,
    )
    keys: dict[int, str] = {}
    seen: dict[str, int] = {}
    for deposit, payment in received:
        key = _source_key(deposit, payment, digest)
        # Two payments of one file under one key (Bankgirot's sample files repeat a serial
        # number) are two payments: the second is numbered, the same way in any copy.
        seen[key] = seen.get(key, 0) + 1
        keys[id(payment)] = key if seen[key] == 1 else f"{key}:{seen[key]}"
    known = set(
        Payment.objects.filter(source_key__in=keys.values()).values_list("source_key", flat=True)
    )
    # The invoices the references name, locked in id order (two files at once take turns).
    references = {p.ocr for d, p in received if _bookable(d, p)}
    invoices = {
        invoice.ocr: invoice
        for invoice in Invoice.objects.select_for_update().filter(ocr__in=references).order_by("id")
    }
    balances = {invoice.id: invoice_balance(invoice) for invoice in invoices.values()}
    rows: list[Payment] = []
    touched: dict[int, Invoice] = {}
    for deposit, payment in received:
        key = keys[id(payment)]
        if key in known:
            imported.already_booked += 1
            continue
        known.add(key)
        amount = Decimal(-payment.amount_ore if payment.deduction else payment.amount_ore) / 100
        row = Payment(
            status=PaymentStatus.UNMATCHED,
            method=PaymentMethod.BANKGIRO,
            amount=amount,
            currency=deposit.currency,
            paid_on=deposit.payment_date,
            booked_at=now,
            reference=payment.reference[:35],
            payer=payment.name[:120],
            source_key=key,
            bgmax_import=imported,
            record=payment.record,
        )
        invoice = invoices.get(payment.ocr) if _bookable(deposit, payment) else None
        if invoice is not None and invoice.status in PAYABLE:
            balance = balances[invoice.id]
            row.invoice, row.status = invoice, PaymentStatus.BOOKED
            row.surplus = max(amount - balance.open, ZERO)
            balances[invoice.id] = InvoiceBalance(
                total=balance.total,
                credited=balance.credited,
                paid=balance.paid + amount - row.surplus,
            )
            touched[invoice.id] = invoice
            imported.booked += 1
        else:
            imported.unmatched += 1
        rows.append(row)
    Payment.objects.bulk_create(rows)
    for invoice in touched.values():
        _status_after_payment(invoice, balances[invoice.id])
    imported.save(update_fields=["booked", "unmatched", "already_booked"])
    return imported


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


def _status_after_payment(invoice: Invoice, balance: InvoiceBalance) -> None:
    """Precondition: ``invoice`` is locked in this transaction."""
    if balance.open == ZERO:
        invoice_set_status(invoice=invoice, status=InvoiceStatus.PAID)
    elif invoice.status == InvoiceStatus.ISSUED:
        invoice_set_status(invoice=invoice, status=InvoiceStatus.PARTLY_PAID)
    else:
        invoice_touch(invoice_id=invoice.id)  # still overdue (or partly paid): less is open
