from datetime import date
from decimal import Decimal

import pytest

from billing.models import Discount
from core.errors import DomainError
from invoices.models import Invoice, InvoiceStatus
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.credit_notes import credit_note_issue
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice() -> Invoice:
    sub = SubscriptionFactory(agreed_monthly_price=Decimal("299.00"))
    SubscriptionFactory(customer=sub.customer, agreed_monthly_price=Decimal("199.50"))
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    bill_run_execute(bill_run_id=run.id)
    return Invoice.objects.get()


def test_crediting_in_full_cancels_the_invoice(invoice: Invoice) -> None:
    note = credit_note_issue(invoice_id=invoice.id, reason="Fel abonnemang")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.CREDITED
    assert note.kind == "credit_note"
    assert note.credited_invoice == invoice
    assert note.series.code == "K"
    # 498.50 rounds to 499 on the invoice; the credit note rounds its own −498.50 to −499
    assert note.total == -invoice.total


def test_crediting_one_line_leaves_the_invoice_open_and_changes_its_revision(
    invoice: Invoice,
) -> None:
    line = invoice.lines.get(kind="fee", amount=Decimal("199.50"))
    revision = invoice.revision
    note = credit_note_issue(invoice_id=invoice.id, reason="Dubbeldebiterad", line_ids=[line.id])
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.ISSUED
    assert invoice.revision == revision + 1
    credit_line = note.lines.exclude(kind="rounding").get()
    assert credit_line.amount == Decimal("-199.50")
    assert credit_line.credited_line == line
    assert "Dubbeldebiterad" in credit_line.texts["sv"]["detail"]


def test_a_line_cannot_be_credited_twice(invoice: Invoice) -> None:
    line = invoice.lines.filter(kind="fee").first()
    credit_note_issue(invoice_id=invoice.id, reason="Fel", line_ids=[line.id])
    with pytest.raises(DomainError) as error:
        credit_note_issue(invoice_id=invoice.id, reason="Fel igen", line_ids=[line.id])
    assert error.value.code == "line_already_credited"


def test_a_credit_note_needs_a_reason(invoice: Invoice) -> None:
    with pytest.raises(DomainError) as error:
        credit_note_issue(invoice_id=invoice.id, reason="  ")
    assert error.value.code == "credit_reason_required"


def test_lines_of_another_invoice_are_refused(invoice: Invoice) -> None:
    with pytest.raises(DomainError) as error:
        credit_note_issue(invoice_id=invoice.id, reason="x", line_ids=[999999])
    assert error.value.code == "line_not_found"


def test_issued_invoice_lines_and_totals_are_untouched_by_a_credit(invoice: Invoice) -> None:
    before = list(invoice.lines.values_list("amount", "texts"))
    total = invoice.total
    credit_note_issue(invoice_id=invoice.id, reason="Goodwill")
    invoice.refresh_from_db()
    assert list(invoice.lines.values_list("amount", "texts")) == before
    assert invoice.total == total


def test_crediting_line_by_line_takes_off_exactly_the_invoice_total() -> None:
    # given 50.50 + 49.90 = 100.40, payable 100 kr
    sub = SubscriptionFactory(agreed_monthly_price=Decimal("50.50"))
    SubscriptionFactory(customer=sub.customer, agreed_monthly_price=Decimal("49.90"))
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    bill_run_execute(bill_run_id=run.id)
    invoice = Invoice.objects.get(kind="invoice")
    assert invoice.total == Decimal("100.00")
    # when each line is credited on its own note
    first, second = invoice.lines.filter(kind="fee").order_by("position")
    one = credit_note_issue(invoice_id=invoice.id, reason="Fel", line_ids=[first.id])
    two = credit_note_issue(invoice_id=invoice.id, reason="Fel", line_ids=[second.id])
    # then the notes together credit 100 kr, not 101
    assert one.total == Decimal("-51.00")
    assert two.total == Decimal("-49.00")
    assert one.total + two.total == -invoice.total
    for note in (one, two):
        assert note.total == sum(line.amount for line in note.lines.all())


def test_a_line_named_twice_is_refused(invoice: Invoice) -> None:
    line = invoice.lines.filter(kind="fee").first()
    with pytest.raises(DomainError) as error:
        credit_note_issue(invoice_id=invoice.id, reason="x", line_ids=[line.id, line.id])
    assert error.value.code == "line_repeated"
    assert not invoice.credit_notes.exists()


def test_crediting_a_discount_alone_is_refused() -> None:
    # given an invoice with a fee and a discount
    sub = SubscriptionFactory()
    Discount.objects.create(
        subscription=sub, description="Kampanj", monthly_amount=50, valid_from=date(2026, 1, 1)
    )
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    bill_run_execute(bill_run_id=run.id)
    invoice = Invoice.objects.get()
    discount = invoice.lines.get(kind="discount")
    # when the discount alone is credited, it would raise what the customer owes
    with pytest.raises(DomainError) as error:
        credit_note_issue(invoice_id=invoice.id, reason="x", line_ids=[discount.id])
    assert error.value.code == "credit_increases_amount"
    # but the fee and its discount together can be credited
    fee = invoice.lines.get(kind="fee")
    note = credit_note_issue(invoice_id=invoice.id, reason="x", line_ids=[fee.id, discount.id])
    assert note.total == -invoice.total


def test_a_credit_line_reads_in_every_language(invoice: Invoice) -> None:
    note = credit_note_issue(invoice_id=invoice.id, reason="Fel pris")
    texts = note.lines.exclude(kind="rounding").first().texts
    assert texts["sv"]["title"].startswith("Kredit: ")
    assert texts["en"]["title"].startswith("Credit: ")
    assert "monthly fee" in texts["en"]["title"]
    assert "månadsavgift" in texts["sv"]["title"]
