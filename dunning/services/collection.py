"""Handing a claim to debt collection: a person's confirmed decision, never automatic, never
before the policy's day, never while a postponement, an instalment plan or a dispute covers
the claim.

The collection day is ``collection_after_days`` after the final notice's due date (the later
of it and a postponement's); ``case_step_run`` marks the case ready on that day, and finance
staff confirm the handover in the admin. The claim then shows in the collection export (CSV
and ``/api/v1/dunning/collection-claims/``) with what is owed: capital, fees and interest.
"""

from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from core.errors import DomainError
from core.money import ZERO
from dunning.models import ActionKind, CaseStage, DunningAction, DunningCase
from dunning.rules import Claim
from dunning.selectors import DunningHold, invoice_claim, invoice_dunning_hold
from dunning.services.messages import Notice, dunning_action_send, notice_channels
from dunning.services.steps import (
    case_interest_charge,
    case_interest_due,
    case_next_step,
    invoice_changed,
    lock_invoice,
)
from invoices.models import Invoice, InvoiceStatus
from invoices.services.status import invoice_set_status


@dataclass(frozen=True)
class HandoverPreview:
    """What a handover would do, shown before it is confirmed: the claim as it stands (the
    interest up to today comes on top), the first day allowed, and why not, if not."""

    case: DunningCase
    claim: Claim
    ready_on: date | None
    refusal: DomainError | None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def _refusal(
    case: DunningCase, invoice: Invoice, hold: DunningHold, today: date
) -> tuple[date | None, DomainError | None]:
    due = case_next_step(case, hold)
    ready_on = due.on if due.step is None else None
    if case.stage == CaseStage.HANDED_OVER:
        return ready_on, DomainError(
            code="already_handed_over", message="This claim is with debt collection already."
        )
    if invoice.status != InvoiceStatus.OVERDUE:
        return ready_on, DomainError(
            code="invoice_not_overdue",
            message=f"Invoice {invoice.display_number} is {invoice.get_status_display()}: "
            "only an overdue invoice can be handed to collection.",
        )
    if ready_on is None:
        return ready_on, DomainError(
            code="final_notice_not_sent",
            message="The final notice has not been sent: the customer first gets it, and "
            "the chance to pay or choose a way out.",
        )
    if today < ready_on:
        return ready_on, DomainError(
            code="collection_too_early",
            message=f"The policy allows handing this claim over from {ready_on} on.",
        )
    if hold.holds_reminders:
        return ready_on, DomainError(
            code="dunning_on_hold",
            message="A postponement or an instalment plan runs on this invoice.",
        )
    if hold.disputed > 0:
        return ready_on, DomainError(
            code="dispute_open",
            message=f"{hold.disputed} kr of the invoice is disputed: resolve that first.",
        )
    return ready_on, None


def case_handover_preview(*, case_id: int, today: date) -> HandoverPreview:
    case = DunningCase.objects.select_related("policy", "invoice__series").get(id=case_id)
    hold = invoice_dunning_hold(invoice_id=case.invoice_id, today=today)
    ready_on, refusal = _refusal(case, case.invoice, hold, today)
    return HandoverPreview(
        case=case, claim=invoice_claim(case.invoice), ready_on=ready_on, refusal=refusal
    )


def case_hand_to_collection(*, case_id: int, by: User, today: date) -> DunningAction:
    """Hand an overdue claim to debt collection, as finance staff confirmed: the interest
    run up to today is charged, the invoice becomes "handed to collection", and the customer
    is told. Raises ``DomainError`` saying why not (too early, on hold, disputed, …)."""
    invoice_id = DunningCase.objects.filter(id=case_id).values_list("invoice_id", flat=True).first()
    if invoice_id is None:
        raise DomainError(code="case_not_found", message="No such dunning case.")
    with transaction.atomic():
        invoice = lock_invoice(invoice_id, skip_locked=False)
        case = (
            DunningCase.objects.select_for_update(of=("self",))
            .select_related("policy")
            .get(id=case_id)
        )
        if invoice is None:
            raise DomainError(code="case_not_found", message="No such dunning case.")
        hold = invoice_dunning_hold(invoice_id=invoice.id, today=today)
        _ready_on, refusal = _refusal(case, invoice, hold, today)
        if refusal is not None:
            raise refusal
        interest = case_interest_due(case=case, invoice=invoice, hold=hold, through=today)
        owed = invoice_claim(invoice).open + (interest.amount if interest else ZERO)
        if interest:
            case_interest_charge(case=case, invoice=invoice, due=interest, pay_by=None, asked=owed)
        invoice_set_status(invoice=invoice, status=InvoiceStatus.COLLECTION)
        now = timezone.now()
        case.stage, case.next_action_on = CaseStage.HANDED_OVER, None
        case.handed_over_at, case.handed_over_by = now, by
        case.save(
            update_fields=[
                "stage",
                "next_action_on",
                "handed_over_at",
                "handed_over_by",
                "interest_charged_until",
            ]
        )
        action = DunningAction.objects.create(
            invoice=invoice,
            case=case,
            kind=ActionKind.COLLECTION,
            key=ActionKind.COLLECTION,
            acted_on=today,
            amount_asked=owed,
            interest=interest.amount if interest else ZERO,
            created_at=now,
            acted_by=by,
        )
        dunning_action_send(
            action=action,
            invoice=invoice,
            notice=Notice(kind=ActionKind.COLLECTION, amount=owed, due=None),
            channels=notice_channels(invoice.customer),
        )
        invoice_changed(invoice)
        return action
