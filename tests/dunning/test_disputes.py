"""A disputed line ("I don't recognise this"): dunning pauses on that amount only; an agent
upholds it with a credit note or rejects it, and dunning resumes on it."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from core.errors import DomainError
from dunning.models import (
    ActionKind,
    Dispute,
    DisputeOutcome,
    DisputeStatus,
    DunningAction,
    GrantedBy,
)
from dunning.selectors import invoice_dunning_hold
from dunning.services.ways_out import dispute_open, dispute_resolve
from invoices.models import DocumentKind, Invoice, InvoiceStatus
from invoices.services.payments import invoice_balance
from tests.dunning.conftest import make_invoice

pytestmark = pytest.mark.django_db

TODAY = date(2026, 12, 10)


@pytest.fixture
def agent() -> User:
    return User.objects.create_user("agnes")


def fee_line(invoice: Invoice):
    return invoice.lines.get(kind="fee")


def open_dispute(invoice, *, line=None, reason: str = "I never ordered this", **kwargs):
    return dispute_open(
        invoice_id=invoice.id,
        line_id=(line or fee_line(invoice)).id,
        reason=reason,
        opened_by=GrantedBy.CUSTOMER,
        **kwargs,
    )


def test_disputing_a_line_holds_dunning_on_its_amount(invoice, run_on) -> None:
    # given the invoice's one line of 299 kr
    line = fee_line(invoice)
    # when the customer disputes that line
    granted = open_dispute(invoice, conversation_id=41)
    # then the whole line is under dispute, with the reason and the chat it is discussed in
    dispute = granted.row
    assert granted.created
    assert (dispute.amount, dispute.reason, dispute.conversation_id) == (
        line.amount,
        "I never ordered this",
        41,
    )
    assert invoice_dunning_hold(invoice_id=invoice.id, today=TODAY).disputed == line.amount
    # and the engine's reminder would ask what is open less what is disputed: nothing here
    run_on(date(2026, 12, 2))
    run_on(date(2026, 12, 6))
    assert not DunningAction.objects.filter(invoice=invoice, kind=ActionKind.REMINDER).exists()


def test_a_part_of_a_line_is_left_out_of_the_reminder(invoice, run_on) -> None:
    # given 100 kr of the 299 kr line disputed
    open_dispute(invoice, amount=Decimal("100.00"))
    # when the first reminder goes
    run_on(date(2026, 12, 2))
    run_on(date(2026, 12, 6))
    # then it asks the rest
    reminder = DunningAction.objects.get(invoice=invoice, kind=ActionKind.REMINDER)
    assert reminder.amount_asked == Decimal("199.00")


def test_disputing_a_line_again_returns_the_open_dispute(invoice) -> None:
    first = open_dispute(invoice, idempotency_key="page:1:a").row
    assert open_dispute(invoice, idempotency_key="page:1:a").row.id == first.id
    again = open_dispute(invoice, reason="Still not mine", idempotency_key="page:1:b")
    assert (again.row.id, again.created) == (first.id, False)
    assert Dispute.objects.count() == 1


@pytest.mark.parametrize(
    ("amount", "reason", "code"),
    [
        (Decimal("299.01"), "Not mine", "dispute_amount_invalid"),
        (Decimal("0.00"), "Not mine", "dispute_amount_invalid"),
        (None, "   ", "dispute_reason_required"),
        (None, "x" * 501, "dispute_reason_too_long"),
    ],
    ids=["more than the line", "nothing", "no reason", "a long reason"],
)
def test_what_a_dispute_cannot_be_is_refused(invoice, amount, reason: str, code: str) -> None:
    with pytest.raises(DomainError) as refused:
        open_dispute(invoice, amount=amount, reason=reason)
    assert refused.value.code == code
    assert not Dispute.objects.exists()


def test_a_line_of_another_invoice_or_the_rounding_is_not_disputed(invoice) -> None:
    other = make_invoice()
    with pytest.raises(DomainError) as refused:
        open_dispute(invoice, line=fee_line(other))
    assert refused.value.code == "line_not_found"


def test_a_claim_with_collection_is_not_disputed_here(invoice) -> None:
    invoice.status = InvoiceStatus.COLLECTION
    invoice.save(update_fields=["status"])
    with pytest.raises(DomainError) as refused:
        open_dispute(invoice)
    assert refused.value.code == "handed_to_collection"


def test_upheld_the_line_is_credited_and_the_hold_lets_go(invoice, agent) -> None:
    # given the whole fee line disputed
    dispute = open_dispute(invoice).row
    # when an agent upholds it
    resolved = dispute_resolve(
        dispute_id=dispute.id, upheld=True, resolution="Charged twice by mistake", by=agent
    )
    # then a credit note credits the line, with the resolution as its reason
    dispute = resolved.row
    assert (dispute.status, dispute.outcome, dispute.resolved_by) == (
        DisputeStatus.RESOLVED,
        DisputeOutcome.UPHELD,
        agent,
    )
    note = dispute.credit_note
    assert note.kind == DocumentKind.CREDIT_NOTE
    assert note.credited_invoice_id == invoice.id
    assert note.credit_reason == "Charged twice by mistake"
    assert note.total == -invoice.total
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.CREDITED
    assert invoice_dunning_hold(invoice_id=invoice.id, today=TODAY).disputed == 0
    # and resolving it again changes nothing
    again = dispute_resolve(dispute_id=dispute.id, upheld=True, resolution="Again", by=agent)
    assert not again.created
    assert Invoice.objects.filter(kind=DocumentKind.CREDIT_NOTE).count() == 1


def test_upheld_in_part_the_part_is_credited(invoice, agent) -> None:
    dispute = open_dispute(invoice, amount=Decimal("100.00")).row
    note = dispute_resolve(dispute_id=dispute.id, upheld=True, resolution="Half", by=agent).row
    assert note.credit_note.total == Decimal("-100.00")
    assert invoice_balance(invoice).open == Decimal("199.00")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.ISSUED


def test_rejected_the_amount_is_owed_again(invoice, agent, run_on) -> None:
    dispute = open_dispute(invoice).row
    resolved = dispute_resolve(
        dispute_id=dispute.id,
        upheld=False,
        resolution="The roaming was on 3 October in Norway",
        by=agent,
    ).row
    assert (resolved.outcome, resolved.credit_note) == (DisputeOutcome.REJECTED, None)
    assert invoice_dunning_hold(invoice_id=invoice.id, today=TODAY).disputed == 0
    # dunning goes on with all of it
    run_on(date(2026, 12, 2))
    run_on(date(2026, 12, 6))
    reminder = DunningAction.objects.get(invoice=invoice, kind=ActionKind.REMINDER)
    assert reminder.amount_asked == Decimal("299.00")


def test_a_resolution_says_what_was_found(invoice, agent) -> None:
    dispute = open_dispute(invoice).row
    with pytest.raises(DomainError) as refused:
        dispute_resolve(dispute_id=dispute.id, upheld=False, resolution=" ", by=agent)
    assert refused.value.code == "resolution_required"
