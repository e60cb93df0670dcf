"""The surplus ledger (0012) for the payments booked before it, as far as their history can be
read back.

Most payments' surplus never moved after their booking: their surplus at booking is their
surplus now, set in one statement (only where it is not zero, the column's default: a
payments table of tens of millions of rows is not rewritten whole). Only a payment on an invoice with a credit note, or a card
payment with a refund, can have moved. For each such invoice its history is replayed in the
order it was recorded, as the services did it:

- a charge (``created_at``) adds to what is owed;
- a payment (``booked_at``; ``matched_at`` for one matched by hand) pays what was open then and
  keeps the rest as its surplus at booking;
- a credit note (``issued_at``) lowers what is owed, and what payments had paid beyond it moves
  into their surplus, the newest payment's first: a move dated the credit note's date;
- a card refund (its negative payment's ``booked_at``) takes from its card payment's surplus
  first, as far as the credit balance had not spent it by then (``CreditUse.created_at``): a
  move dated the refund's date.

When the replay ends at every payment's stored surplus, the invoice's surpluses at booking and
its moves are written. What it cannot know, and then leaves as it is: the order of things
recorded at the very same instant, and whether the invoice was open when a card payment was
booked (on an invoice paid or credited meanwhile all of it was surplus, which the replay does
not see). On such an invoice (and on any whose rows were changed by hand) each payment keeps
its surplus now as its surplus at booking and gets no moves: the books then show its booking
with the surplus as it is, and the credit note or refund without a surplus part.
"""

from collections import defaultdict
from decimal import Decimal

from django.db import migrations
from django.db.models import F

ZERO = Decimal(0)


def backfill(apps, schema_editor):
    Payment = apps.get_model("invoices", "Payment")
    Invoice = apps.get_model("invoices", "Invoice")
    CardRefund = apps.get_model("invoices", "CardRefund")
    Payment.objects.exclude(surplus=0).update(surplus_at_booking=F("surplus"))
    # each booked refund (a negative card payment) and the card payment it gave back
    refunds = dict(
        CardRefund.objects.filter(booked__isnull=False).values_list(
            "booked_id", "card_payment__payment_id"
        )
    )
    touched = set(
        Invoice.objects.filter(credited_invoice__isnull=False).values_list(
            "credited_invoice_id", flat=True
        )
    )
    touched |= set(
        Payment.objects.filter(id__in=list(refunds)).values_list("invoice_id", flat=True)
    )
    for invoice_id in sorted(touched):
        _replay(apps, invoice_id, refunds)


def _replay(apps, invoice_id, refunds):
    Payment = apps.get_model("invoices", "Payment")
    Invoice = apps.get_model("invoices", "Invoice")
    InvoiceCharge = apps.get_model("invoices", "InvoiceCharge")
    CreditUse = apps.get_model("invoices", "CreditUse")
    SurplusMove = apps.get_model("invoices", "SurplusMove")
    invoice = Invoice.objects.get(id=invoice_id)
    events = []
    for charge in InvoiceCharge.objects.filter(invoice_id=invoice_id):
        events.append((charge.created_at, 0, charge.id, "charge", charge))
    for note in Invoice.objects.filter(credited_invoice_id=invoice_id):
        events.append((note.issued_at, 1, note.id, "credit_note", note))
    payments = list(Payment.objects.filter(invoice_id=invoice_id, status="booked"))
    for payment in payments:
        by_hand = payment.matched_at is not None and payment.method != "credit"
        when = payment.matched_at if by_hand else payment.booked_at
        kind = "refund" if payment.id in refunds else "payment"
        events.append((when, 2, payment.id, kind, payment))
    events.sort(key=lambda event: event[:3])

    owed = invoice.total
    amount, surplus, at_booking = {}, {}, {}
    moves = []
    for when, _rank, _id, kind, row in events:
        paid = sum(amount[i] - surplus[i] for i in amount)
        if kind == "charge":
            owed += row.amount
        elif kind == "payment":
            take = min(row.amount, max(owed - paid, ZERO))
            amount[row.id], surplus[row.id] = row.amount, row.amount - take
            at_booking[row.id] = surplus[row.id]
        elif kind == "credit_note":
            owed += row.total  # (negative)
            excess, moved = paid - owed, ZERO
            for payment_id in sorted(amount, reverse=True):
                if moved >= excess:
                    break
                if amount[payment_id] <= surplus[payment_id]:
                    continue
                take = min(excess - moved, amount[payment_id] - surplus[payment_id])
                surplus[payment_id] += take
                moved += take
                moves.append(
                    SurplusMove(
                        payment_id=payment_id,
                        kind="credit_note",
                        amount=take,
                        moved_on=row.invoice_date,
                        credit_note_id=row.id,
                        created_at=row.issued_at,
                    )
                )
        else:  # a refund: a negative card payment
            original = refunds[row.id]
            amount[row.id], surplus[row.id], at_booking[row.id] = row.amount, ZERO, ZERO
            if original not in surplus:
                return  # (its card payment is not on this invoice, or booked after it)
            spent = sum(
                CreditUse.objects.filter(source_id=original, created_at__lte=when).values_list(
                    "amount", flat=True
                ),
                ZERO,
            )
            taken = min(surplus[original] - spent, -row.amount)
            if taken > ZERO:
                surplus[original] -= taken
                moves.append(
                    SurplusMove(
                        payment_id=original,
                        kind="refund",
                        amount=-taken,
                        moved_on=row.paid_on,
                        refund_id=row.id,
                        created_at=when,
                    )
                )
    if any(surplus.get(payment.id) != payment.surplus for payment in payments):
        return  # the history does not read back to what is stored: left as it is
    by_value = defaultdict(list)
    for payment_id, value in at_booking.items():
        by_value[value].append(payment_id)
    for value, ids in by_value.items():
        Payment.objects.filter(id__in=ids).update(surplus_at_booking=value)
    SurplusMove.objects.bulk_create(moves)


class Migration(migrations.Migration):
    dependencies = [("invoices", "0012_surplus_moves")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
