"""What a person does on one invoice (crediting it, matching a payment to it, spending a credit
balance on it) locks that invoice's row, not its number series: a bill run's chunk holds the
series while it numbers its invoices, after it has locked its customers' credit balances, so
waiting for the series here could deadlock with it."""

import threading
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from invoices.models import Invoice, InvoiceSeries, Payment, PaymentMethod, PaymentStatus
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.credit_balance import credit_balance_use
from invoices.services.credit_notes import credit_note_issue
from invoices.services.numbering import INVOICE_SERIES
from invoices.services.payments import payment_match, payment_register
from tests.invoices.test_payments import invoices  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def series_held(postgres: None) -> Iterator[None]:
    """Another transaction holds the invoice series' row (a chunk numbering its invoices) while
    the test runs; this connection gives up on a lock after 5 s."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                InvoiceSeries.objects.select_for_update().get(code=INVOICE_SERIES)
                held.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '5s'")
    try:
        yield
    finally:
        release.set()
        holder.join(30)


def unmatched(amount: str) -> Payment:
    return Payment.objects.create(
        status=PaymentStatus.UNMATCHED,
        method=PaymentMethod.BANKGIRO,
        amount=Decimal(amount),
        paid_on=date(2026, 11, 20),
        booked_at=timezone.now(),
        source_key=f"test:{amount}",
    )


def test_a_credit_note_does_not_wait_for_the_invoice_series(
    invoices: list[Invoice],  # noqa: F811
    series_held: None,
) -> None:
    note = credit_note_issue(invoice_id=invoices[0].id, reason="Charged twice")
    assert note.credited_invoice_id == invoices[0].id


def test_matching_a_payment_and_spending_a_credit_balance_do_not_wait_for_it(
    invoices: list[Invoice],  # noqa: F811
    postgres: None,
    request: pytest.FixtureRequest,
) -> None:
    # given November's invoices too, still open
    run = bill_run_start(period=date(2026, 11, 1), invoice_date=date(2026, 12, 1))
    bill_run_execute(bill_run_id=run.id)
    october = invoices[0]
    november = Invoice.objects.get(customer=october.customer, period_start=date(2026, 11, 1))
    staff = User.objects.create_user("finance", is_staff=True)
    request.getfixturevalue("series_held")
    # when a payment 100 kr beyond October's invoice is matched to it (the customer's credit
    # balance), and the balance is spent on November's, while a chunk holds the series
    payment = unmatched(str(october.total + 100))
    matched = payment_match(payment_id=payment.id, invoice_id=october.id, by=staff)
    spent = credit_balance_use(invoice_id=november.id, by=staff)
    registered = payment_register(
        external_id="shop-1",
        amount=Decimal("10.00"),
        paid_on=date(2026, 11, 21),
        invoice_id=invoices[1].id,
    )
    # then each is done without waiting for the series
    assert matched.surplus == Decimal("100.00")
    assert spent.amount == Decimal("100.00")
    assert registered.payment.amount == Decimal("10.00")
