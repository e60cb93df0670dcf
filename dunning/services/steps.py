"""The dunning steps on one invoice: the overdue transition, the friendly notice, reminders
and the final notice, with the fees and interest they add.

Every service here locks the invoice row first and then its case (the same order everywhere,
so two workers take turns instead of deadlocking), acts at most once per step (a unique
``DunningAction`` per invoice and step, written in the same transaction as the fee, the
interest, the case's new state and the outbox rows), and tells the caller ``None`` when there
was nothing to do. A task may therefore run any of them twice, or two workers at once: the
second finds the step done, or (``skip_locked``) skips the invoice the first holds.

``today`` is the legal date in Europe/Stockholm; the tasks pass ``timezone.localdate()``.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from core.money import ZERO
from dunning import rules
from dunning.models import (
    ActionKind,
    CaseStage,
    DunningAction,
    DunningCase,
    DunningStep,
    StepKind,
)
from dunning.selectors import (
    DunningHold,
    active_policy,
    invoice_dunning_hold,
    reference_rate_on,
)
from dunning.services.messages import Notice, dunning_action_send, notice_channels
from dunning.texts import (
    INTEREST_DETAIL,
    INTEREST_DETAIL_AT_HANDOVER,
    INTEREST_TITLE,
    REMINDER_FEE_DETAIL,
    REMINDER_FEE_TITLE,
    Money,
    Percent,
    charge_texts,
)
from invoices.models import (
    ChargeKind,
    DocumentKind,
    Invoice,
    InvoiceCharge,
    InvoiceStatus,
    Payment,
    PaymentStatus,
)
from invoices.services.payments import invoice_balance
from invoices.services.pdf import invoice_pdf_discard
from invoices.services.status import invoice_set_status, invoice_touch

# Statuses in which an invoice has not been found overdue yet.
NOT_YET_OVERDUE = (InvoiceStatus.ISSUED, InvoiceStatus.PARTLY_PAID)
# Stages in which a case still has steps (or the collection day) ahead of it.
RUNNING_STAGES = (CaseStage.OVERDUE, CaseStage.REMINDED, CaseStage.FINAL_NOTICE)


def lock_invoice(invoice_id: int, *, skip_locked: bool) -> Invoice | None:
    """The invoice, locked; None when another worker holds it and ``skip_locked``."""
    return (
        Invoice.objects.select_for_update(of=("self",), skip_locked=skip_locked)
        .select_related("customer", "series")
        .filter(id=invoice_id, kind=DocumentKind.INVOICE)
        .first()
    )


def invoice_changed(invoice: Invoice) -> None:
    """The page shows something new (a fee, a due date): a new revision, and the stored PDF
    is rendered again on its next request."""
    invoice_touch(invoice_id=invoice.id)
    invoice_pdf_discard(invoice_id=invoice.id)


# --- overdue -------------------------------------------------------------------------------


def invoice_mark_overdue(
    *, invoice_id: int, today: date, skip_locked: bool = False
) -> DunningCase | None:
    """An issued or partly paid invoice whose due date has passed with money open becomes
    overdue, and its dunning case opens under the active policy, with the interest rate in
    force on the due date stored on it. The due date counted from is the later of the
    invoice's and a postponement's; while an instalment plan runs nothing happens.

    Returns the case opened, or None (nothing to do, no active policy, or locked)."""
    with transaction.atomic():
        invoice = lock_invoice(invoice_id, skip_locked=skip_locked)
        if invoice is None or invoice.status not in NOT_YET_OVERDUE:
            return None
        hold = invoice_dunning_hold(invoice_id=invoice.id, today=today)
        due = hold.due_date(invoice.due_date)
        if due >= today or hold.plan_active:
            return None
        if invoice_balance(invoice).open <= 0:
            return None
        invoice_set_status(invoice=invoice, status=InvoiceStatus.OVERDUE)
        policy = active_policy()
        if policy is None:
            return None
        reference = reference_rate_on(due).rate
        first = policy.steps.order_by("position").first()
        case, _created = DunningCase.objects.get_or_create(
            invoice=invoice,
            defaults={
                "policy": policy,
                "stage": CaseStage.OVERDUE,
                "original_due_date": due,
                "due_date": due,
                "reference_rate": reference,
                "interest_rate": rules.interest_rate(
                    reference_rate=reference, margin=settings.DUNNING_INTEREST_MARGIN
                ),
                "next_action_on": due + timedelta(days=first.days_after_due) if first else None,
                "opened_at": timezone.now(),
            },
        )
        return case


def cases_close_settled() -> int:
    """Cases whose invoice is paid or credited close: nothing more happens on them. One
    statement; returns how many closed."""
    return DunningCase.objects.filter(
        closed_at__isnull=True,
        invoice__status__in=(InvoiceStatus.PAID, InvoiceStatus.CREDITED),
    ).update(stage=CaseStage.CLOSED, closed_at=timezone.now(), next_action_on=None)


# --- the friendly notice ---------------------------------------------------------------------


def invoice_friendly_notice_send(
    *, invoice_id: int, today: date, skip_locked: bool = False
) -> DunningAction | None:
    """A friendly note a few days before the due date (``friendly_notice_days_before``),
    once per invoice, when the active policy has it on, money is open, and no postponement,
    plan or dispute has been arranged (the customer has spoken to us already)."""
    policy = active_policy()
    if policy is None or not policy.friendly_notice_enabled:
        return None
    with transaction.atomic():
        invoice = lock_invoice(invoice_id, skip_locked=skip_locked)
        if invoice is None or invoice.status not in NOT_YET_OVERDUE:
            return None
        window_opens = invoice.due_date - timedelta(days=policy.friendly_notice_days_before)
        if not window_opens <= today <= invoice.due_date:
            return None
        hold = invoice_dunning_hold(invoice_id=invoice.id, today=today)
        if hold.postponed_to is not None or hold.plan_active or hold.disputed > 0:
            return None
        if DunningAction.objects.filter(invoice=invoice, key=ActionKind.FRIENDLY_NOTICE).exists():
            return None
        amount = invoice_balance(invoice).open
        if amount <= 0:
            return None
        channels = notice_channels(invoice.customer)
        notice = Notice(kind=ActionKind.FRIENDLY_NOTICE, amount=amount, due=invoice.due_date)
        now = timezone.now()
        action = DunningAction.objects.create(
            invoice=invoice,
            kind=ActionKind.FRIENDLY_NOTICE,
            key=ActionKind.FRIENDLY_NOTICE,
            acted_on=today,
            due_date=invoice.due_date,
            amount_asked=amount,
            created_at=now,
        )
        dunning_action_send(action=action, invoice=invoice, notice=notice, channels=channels)
        return action


# --- interest ----------------------------------------------------------------------------------


def _reductions(invoice: Invoice) -> list[rules.Reduction]:
    """What lowered the capital and when: credit notes (their date) and booked payments
    (the day paid, without their surplus). Two queries."""
    notes = Invoice.objects.filter(credited_invoice=invoice).values_list("invoice_date", "total")
    payments = (
        Payment.objects.filter(invoice=invoice, status=PaymentStatus.BOOKED)
        .values("paid_on")
        .annotate(paid=Sum(F("amount") - F("surplus")))
        .values_list("paid_on", "paid")
    )
    found = [rules.Reduction(on=day, amount=-total) for day, total in notes]
    found += [rules.Reduction(on=day, amount=paid) for day, paid in payments]
    return found


@dataclass(frozen=True)
class InterestDue:
    """Interest run up on a case: for the days after ``after`` through ``through``."""

    after: date
    through: date
    amount: Decimal


def case_interest_due(
    *, case: DunningCase, invoice: Invoice, hold: DunningHold, through: date
) -> InterestDue | None:
    """The late-payment interest run up since it was last charged (or since the due date)
    through ``through``, on the capital less what is disputed, at the case's rate; None when
    the policy charges none, or when it is less than ``DUNNING_INTEREST_MINIMUM`` (it keeps
    running and comes with a later step)."""
    if not case.policy.charge_interest:
        return None
    after = case.interest_charged_until or case.original_due_date
    amount = rules.interest(
        capital=invoice.total - hold.disputed,
        reductions=_reductions(invoice),
        after=after,
        through=through,
        rate=case.interest_rate,
    )
    if amount <= 0 or amount < settings.DUNNING_INTEREST_MINIMUM:
        return None
    return InterestDue(after=after, through=through, amount=amount)


def case_interest_charge(
    *, case: DunningCase, invoice: Invoice, due: InterestDue, pay_by: date | None, asked: Decimal
) -> InvoiceCharge:
    """Charge ``due`` on the invoice; ``asked`` (what the step asks in all) by ``pay_by`` go
    in its text (``pay_by`` None: charged at the handover to collection).

    Precondition: the invoice and the case are locked in this transaction. The charge's
    ``source_key`` names the period's first day, so a period is charged once; the caller
    saves ``case.interest_charged_until``."""
    charge, _created = InvoiceCharge.objects.get_or_create(
        source_key=f"dunning:interest:{invoice.id}:{due.after.isoformat()}",
        defaults={
            "invoice": invoice,
            "kind": ChargeKind.INTEREST,
            "amount": due.amount,
            "texts": charge_texts(
                INTEREST_TITLE,
                INTEREST_DETAIL if pay_by else INTEREST_DETAIL_AT_HANDOVER,
                start=due.after + timedelta(days=1),
                end=due.through,
                days=(due.through - due.after).days,
                rate=Percent(case.interest_rate),
                reference=Percent(case.reference_rate),
                margin=case.interest_rate - case.reference_rate,
                amount=Money(asked),
                due=pay_by,
            ),
            "charged_on": due.through,
            "period_start": due.after + timedelta(days=1),
            "period_end": due.through,
            "rate": case.interest_rate,
            "created_at": timezone.now(),
        },
    )
    case.interest_charged_until = due.through
    return charge


# --- reminders and the final notice ------------------------------------------------------------


@dataclass(frozen=True)
class StepDue:
    """The step a case is at (None: all done) and the day it may be taken."""

    step: DunningStep | None
    on: date | None


def case_next_step(case: DunningCase, hold: DunningHold) -> StepDue:
    """The policy's next step for ``case`` and its day: ``days_after_due`` after the current
    due date (the later of the case's and a postponement's). After the final notice there is
    no step, and ``on`` is the first day the claim may be handed to collection."""
    steps = list(case.policy.steps.order_by("position"))
    due = hold.due_date(case.due_date)
    if case.steps_done < len(steps):
        step = steps[case.steps_done]
        return StepDue(step=step, on=due + timedelta(days=step.days_after_due))
    if steps and steps[-1].kind == StepKind.FINAL_NOTICE:
        return StepDue(step=None, on=due + timedelta(days=case.policy.collection_after_days))
    return StepDue(step=None, on=None)


def case_step_run(*, case_id: int, today: date, skip_locked: bool = False) -> DunningAction | None:
    """Take the case's next step when its day has come: a reminder or the final notice, with
    the interest run up and (a reminder, where the terms allow, once per claim) the reminder
    fee; the due date moves ``due_date_shift_days`` on. After the final notice the case
    becomes ready for collection on its day; handing it over is a person's decision
    (``dunning.services.collection.case_hand_to_collection``).

    Nothing happens while a postponement or an instalment plan holds the case, or when what
    is open is all under dispute. Returns the action taken, or None."""
    invoice_id = DunningCase.objects.filter(id=case_id).values_list("invoice_id", flat=True).first()
    if invoice_id is None:
        return None
    with transaction.atomic():
        invoice = lock_invoice(invoice_id, skip_locked=skip_locked)
        if invoice is None:
            return None
        case = (
            DunningCase.objects.select_for_update(of=("self",), skip_locked=skip_locked)
            .select_related("policy")
            .filter(id=case_id)
            .first()
        )
        if case is None or case.stage not in RUNNING_STAGES:
            return None
        if invoice.status != InvoiceStatus.OVERDUE:
            return None  # paid or credited: cases_close_settled closes it
        hold = invoice_dunning_hold(invoice_id=invoice.id, today=today)
        tomorrow = today + timedelta(days=1)
        due = case_next_step(case, hold)
        if hold.holds_reminders:  # a postponement runs (its day is in ``due``) or a plan
            _wait(case, until=max(due.on or tomorrow, tomorrow))
            return None
        if due.on is None or due.on > today:
            _wait(case, until=due.on)
            return None
        if due.step is None:  # after the final notice: the collection day has come
            if hold.disputed == 0:
                case.stage, case.next_action_on = CaseStage.COLLECTION_READY, None
                case.save(update_fields=["stage", "next_action_on"])
            else:
                _wait(case, until=tomorrow)
            return None
        return _take_step(case, invoice, hold, due.step, today)


def _wait(case: DunningCase, *, until: date | None) -> None:
    if case.next_action_on != until:
        case.next_action_on = until
        case.save(update_fields=["next_action_on"])


def _take_step(
    case: DunningCase, invoice: Invoice, hold: DunningHold, step: DunningStep, today: date
) -> DunningAction | None:
    balance = invoice_balance(invoice)
    asked = balance.open - hold.disputed
    if asked <= 0:
        _wait(case, until=today + timedelta(days=1))  # all of it disputed: nothing to ask
        return None
    number = case.steps_done + 1
    is_final = step.kind == StepKind.FINAL_NOTICE
    kind = ActionKind.FINAL_NOTICE if is_final else ActionKind.REMINDER
    key = ActionKind.FINAL_NOTICE if is_final else f"reminder:{number}"
    if DunningAction.objects.filter(invoice=invoice, key=key).exists():
        return None  # (cannot happen under the lock; the unique constraint backs it anyway)
    pay_by = today + timedelta(days=step.due_date_shift_days)
    channels = notice_channels(invoice.customer)
    fee = ZERO
    if step.kind == StepKind.REMINDER and step.charge_fee and channels:
        fee = _reminder_fee(invoice, step)
    interest = case_interest_due(case=case, invoice=invoice, hold=hold, through=today)
    interest_amount = interest.amount if interest else ZERO
    asked += fee + interest_amount
    if fee:
        _reminder_fee_add(invoice, fee, today=today, pay_by=pay_by, asked=asked)
    if interest:
        case_interest_charge(case=case, invoice=invoice, due=interest, pay_by=pay_by, asked=asked)
    now = timezone.now()
    action = DunningAction.objects.create(
        invoice=invoice,
        case=case,
        step=step,
        kind=kind,
        key=key,
        acted_on=today,
        due_date=pay_by,
        amount_asked=asked,
        fee=fee,
        interest=interest_amount,
        created_at=now,
    )
    next_due = case_next_step(_after(case, pay_by), hold)
    case.stage = CaseStage.FINAL_NOTICE if is_final else CaseStage.REMINDED
    case.next_action_on = next_due.on
    case.save(
        update_fields=[
            "due_date",
            "steps_done",
            "stage",
            "next_action_on",
            "interest_charged_until",
        ]
    )
    notice = Notice(kind=kind, amount=asked, due=pay_by, fee=fee, interest=interest_amount)
    dunning_action_send(action=action, invoice=invoice, notice=notice, channels=channels)
    invoice_changed(invoice)
    return action


def _after(case: DunningCase, pay_by: date) -> DunningCase:
    """The case once a step is taken (in memory; the caller saves it)."""
    case.due_date = pay_by
    case.steps_done += 1
    return case


def _reminder_fee(invoice: Invoice, step: DunningStep) -> Decimal:
    """The reminder fee the law and the customer's terms allow on this reminder: none, or
    the step's fee within the cap, once per claim."""
    earlier = (
        InvoiceCharge.objects.filter(invoice=invoice, kind=ChargeKind.REMINDER_FEE).aggregate(
            s=Sum("amount")
        )["s"]
        or ZERO
    )
    return rules.reminder_fee(
        step_fee=step.fee,
        cap=settings.DUNNING_REMINDER_FEE_CAP,
        agreed_on=invoice.customer.reminder_fee_agreed_on,
        debt_arose_on=invoice.period_start,
        earlier_fees=earlier,
    )


def _reminder_fee_add(
    invoice: Invoice, fee: Decimal, *, today: date, pay_by: date, asked: Decimal
) -> InvoiceCharge:
    """The fee as a charge. Its ``source_key`` is one per invoice, so a second reminder fee
    on the claim cannot be stored, whatever a policy says."""
    charge, _created = InvoiceCharge.objects.get_or_create(
        source_key=f"dunning:reminder-fee:{invoice.id}",
        defaults={
            "invoice": invoice,
            "kind": ChargeKind.REMINDER_FEE,
            "amount": fee,
            "texts": charge_texts(
                REMINDER_FEE_TITLE,
                REMINDER_FEE_DETAIL,
                date=today,
                agreed_on=invoice.customer.reminder_fee_agreed_on,
                cap=Money(settings.DUNNING_REMINDER_FEE_CAP),
                amount=Money(asked),
                due=pay_by,
            ),
            "charged_on": today,
            "created_at": timezone.now(),
        },
    )
    return charge
