"""The surplus ledger: what a payment's booking left over is kept as it was
(``surplus_at_booking``), and each later move of its surplus is a dated row (``SurplusMove``),
written with the move; for payments booked before the ledger, a migration reads it back."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from invoices.models import Invoice, Payment, SurplusMove, SurplusMoveKind
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.credit_notes import credit_note_issue
from invoices.services.payments import payment_match
from tests.chat.conftest import issue_october
from tests.factories import SubscriptionFactory
from tests.invoices.bookings import bank_paid, card_paid, card_refunded, noon

pytestmark = pytest.mark.django_db


def moves() -> list[tuple[int, str, Decimal, date, int | None, int | None]]:
    return list(
        SurplusMove.objects.order_by("id").values_list(
            "payment_id", "kind", "amount", "moved_on", "credit_note_id", "refund_id"
        )
    )


def test_a_booking_keeps_what_it_left_over_and_a_credit_note_records_what_it_moves(
    invoice: Invoice,
) -> None:
    # given the 299 kr invoice paid with 350 kr: 51 kr over at booking
    paid = bank_paid(invoice.ocr or "", "350.00")
    assert (paid.surplus, paid.surplus_at_booking) == (Decimal("51.00"), Decimal("51.00"))
    # when it is credited in full
    note = credit_note_issue(invoice_id=invoice.id, reason="Fel kund")
    # then the 299 kr that paid it moved into the surplus, on the credit note's date
    paid.refresh_from_db()
    assert (paid.surplus, paid.surplus_at_booking) == (Decimal("350.00"), Decimal("51.00"))
    assert moves() == [
        (paid.id, SurplusMoveKind.CREDIT_NOTE, Decimal("299.00"), note.invoice_date, note.id, None)
    ]


def test_a_card_refund_records_what_it_took_from_the_surplus(invoice: Invoice) -> None:
    # given a card payment of 400 kr on the 299 kr invoice: 101 kr over
    card = card_paid(invoice, "400.00", at=noon(2026, 11, 10))
    # when 150 kr goes back to the card, on 12 November
    refund = card_refunded(card, "150.00", at=noon(2026, 11, 12))
    # then 101 kr came from the surplus, recorded with the refund; 49 kr is open again
    card.refresh_from_db()
    assert (card.surplus, card.surplus_at_booking) == (Decimal("0.00"), Decimal("101.00"))
    assert moves() == [
        (card.id, SurplusMoveKind.REFUND, Decimal("-101.00"), date(2026, 11, 12), None, refund.id)
    ]
    assert (refund.amount, refund.surplus, refund.surplus_at_booking) == (
        Decimal("-150.00"),
        Decimal("0.00"),
        Decimal("0.00"),
    )


def test_a_refund_within_what_paid_the_invoice_moves_no_surplus(invoice: Invoice) -> None:
    card = card_paid(invoice, "299.00")
    card_refunded(card, "100.00")
    assert moves() == []


def test_a_payment_matched_by_hand_keeps_what_the_match_left_over(invoice: Invoice) -> None:
    waiting = bank_paid("1234567897", "320.00")  # a reference that names no invoice
    assert (waiting.status, waiting.surplus_at_booking) == ("unmatched", Decimal("0.00"))
    payment_match(
        payment_id=waiting.id, invoice_id=invoice.id, by=User.objects.create(username="f")
    )
    waiting.refresh_from_db()
    assert (waiting.surplus, waiting.surplus_at_booking) == (Decimal("21.00"), Decimal("21.00"))


def test_spending_a_credit_balance_is_no_move_of_the_surplus(invoice: Invoice) -> None:
    # (its ledger is CreditUse: the surplus stays, what is spent of it grows)
    paid = bank_paid(invoice.ocr or "", "400.00")
    run = bill_run_start(period=date(2026, 11, 1), invoice_date=date(2026, 12, 1))
    bill_run_execute(bill_run_id=run.id)
    paid.refresh_from_db()
    assert (paid.surplus, paid.surplus_at_booking, paid.surplus_used) == (
        Decimal("101.00"),
        Decimal("101.00"),
        Decimal("101.00"),
    )
    assert moves() == []


def test_the_database_refuses_a_move_that_names_no_cause(invoice: Invoice) -> None:
    paid = bank_paid(invoice.ocr or "", "299.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        SurplusMove.objects.create(
            payment=paid,
            kind=SurplusMoveKind.CREDIT_NOTE,
            amount=Decimal("1.00"),
            moved_on=date(2026, 12, 1),
            created_at=paid.booked_at,
        )


# --- payments booked before the ledger ---------------------------------------------------------

BEFORE = [("invoices", "0011_lean_indexes")]
AFTER = [("invoices", "0013_surplus_moves_backfill")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_reads_back_the_history_the_services_recorded() -> None:
    # given payments whose surplus moved: an invoice overpaid and then credited, a card
    # payment overpaid and partly refunded, one matched by hand, and one never moved
    subs = [SubscriptionFactory(agreed_monthly_price=Decimal(p)) for p in ("299", "199", "99")]
    SubscriptionFactory(customer=subs[0].customer, agreed_monthly_price=Decimal("50.00"))
    first, second, third = issue_october()
    bank_paid(first.ocr or "", "300.00", day="20261102")
    bank_paid(first.ocr or "", "100.00", day="20261103")  # (349 kr: 51 kr over)
    credit_note_issue(invoice_id=first.id, reason="Fel kund")
    card = card_paid(second, "250.00", at=noon(2026, 11, 4))
    card_refunded(card, "80.00", at=noon(2026, 11, 5))
    waiting = bank_paid("1234567897", "120.00", day="20261106")
    payment_match(payment_id=waiting.id, invoice_id=third.id, by=User.objects.create(username="f"))
    credit_note_issue(invoice_id=third.id, reason="Fel kund")
    recorded = dict(Payment.objects.values_list("id", "surplus_at_booking"))
    recorded_moves = {(m[0], m[1], m[2], m[3], m[4], m[5]) for m in moves()}
    assert len(recorded_moves) == 4  # (two into the first's payments, a refund, the third's)
    try:
        # when the ledger is taken away and made again from what is stored
        executor = MigrationExecutor(connection)
        executor.migrate(BEFORE)
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    # then it reads the same history back
    assert dict(Payment.objects.values_list("id", "surplus_at_booking")) == recorded
    assert set(moves()) == recorded_moves


@pytest.mark.django_db(transaction=True)
def test_an_invoice_whose_history_does_not_read_back_keeps_its_surplus_as_booked() -> None:
    SubscriptionFactory(agreed_monthly_price=Decimal("299.00"))
    (invoice,) = issue_october()
    paid = bank_paid(invoice.ocr or "", "299.00")
    credit_note_issue(invoice_id=invoice.id, reason="Fel kund")
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(BEFORE)
        # (a surplus changed by hand: no replay of the history ends there)
        with connection.cursor() as cursor:
            cursor.execute("UPDATE invoices_payment SET surplus = 250 WHERE id = %s", [paid.id])
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    paid.refresh_from_db()
    assert (paid.surplus, paid.surplus_at_booking) == (Decimal("250.00"), Decimal("250.00"))
    assert moves() == []
