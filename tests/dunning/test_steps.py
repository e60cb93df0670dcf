"""The engine's steps one rule at a time, with time frozen: the overdue transition, the
friendly notice, reminder fees, holds (postponement, instalment plan, dispute), a claim paid
meanwhile, customers we cannot reach, and a task run twice."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from billing.models import DeliveryMethod
from dunning.models import (
    CaseStage,
    Dispute,
    DunningAction,
    DunningCase,
    DunningPolicy,
    DunningStep,
    GrantedBy,
    InstalmentPlan,
    PlanStatus,
    Postponement,
    ReferenceRate,
)
from dunning.services.run import dunning_run
from dunning.tasks import dunning_run_task
from invoices.models import ChargeKind, Invoice, InvoiceCharge, InvoiceStatus, OutboundMessage
from tests.billing.bgmax_files import Paid, bgmax_file
from tests.dunning.conftest import DUE, make_invoice
from tests.invoices.test_payments import deposit_of, ore

pytestmark = pytest.mark.django_db

DAY_AFTER = DUE + timedelta(days=1)
FIRST_REMINDER = DUE + timedelta(days=5)  # the default policy's first step
SECOND_REMINDER = FIRST_REMINDER + timedelta(days=15)  # 14 days on, then one day after


def remind_twice(run_on) -> None:
    for day in (DAY_AFTER, FIRST_REMINDER, SECOND_REMINDER):
        run_on(day)


def fees(invoice: Invoice) -> list[Decimal]:
    return list(
        InvoiceCharge.objects.filter(invoice=invoice, kind=ChargeKind.REMINDER_FEE).values_list(
            "amount", flat=True
        )
    )


# --- overdue ---------------------------------------------------------------------------------


def test_nothing_is_overdue_on_the_due_date_itself(invoice, run_on) -> None:
    assert run_on(DUE).overdue == 0
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.ISSUED


def test_a_partly_paid_invoice_past_its_due_date_becomes_overdue(invoice, run_on) -> None:
    # given 100 of 299 kr paid before the due date
    deposit = deposit_of(Paid(ore("100.00"), invoice.ocr))
    from invoices.services.payments import bgmax_import

    bgmax_import(data=bgmax_file(deposit), name="a.txt")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PARTLY_PAID
    # when the engine runs the day after the due date
    run_on(DAY_AFTER)
    # then it is overdue with its case open
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OVERDUE
    assert DunningCase.objects.filter(invoice=invoice, stage=CaseStage.OVERDUE).exists()


def test_the_case_keeps_the_rate_in_force_on_the_due_date(invoice, run_on) -> None:
    # given a new reference rate from the day after the due date
    ReferenceRate.objects.create(valid_from=DAY_AFTER, rate=Decimal("3.50"))
    run_on(DAY_AFTER)
    case = DunningCase.objects.get(invoice=invoice)
    # then the claim keeps the rate in force when it fell due
    assert (case.reference_rate, case.interest_rate) == (Decimal("2.00"), Decimal("10.00"))


def test_without_an_active_policy_the_invoice_is_overdue_but_nothing_is_sent(
    invoice, run_on
) -> None:
    DunningPolicy.objects.update(is_active=False)
    run_on(DAY_AFTER)
    run_on(FIRST_REMINDER)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OVERDUE
    assert not DunningCase.objects.exists()
    assert not DunningAction.objects.exists()


def test_without_a_reference_rate_the_run_refuses_that_invoice_and_goes_on(invoice, run_on) -> None:
    ReferenceRate.objects.all().delete()
    report = run_on(DAY_AFTER)
    assert (report.overdue, report.refused) == (0, 1)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.ISSUED  # (the transaction rolled back whole)


# --- the friendly notice ---------------------------------------------------------------------


def test_the_friendly_notice_goes_once_in_the_days_before_the_due_date(invoice, run_on) -> None:
    assert run_on(DUE - timedelta(days=4)).friendly_notices == 0  # too early
    assert run_on(DUE - timedelta(days=3)).friendly_notices == 1
    assert run_on(DUE - timedelta(days=2)).friendly_notices == 0  # sent already
    message = mail.outbox[-1]
    assert message.subject == "Din faktura 100001 förfaller 1 december 2026"
    assert "Ett vänligt tips" in message.body
    assert "/i/" in message.body


def test_no_friendly_notice_when_the_policy_has_it_off(invoice, run_on) -> None:
    DunningPolicy.objects.update(friendly_notice_enabled=False)
    assert run_on(DUE - timedelta(days=1)).friendly_notices == 0


def test_no_friendly_notice_after_a_postponement(invoice, run_on) -> None:
    postpone(invoice, to=DUE + timedelta(days=20))
    assert run_on(DUE - timedelta(days=1)).friendly_notices == 0


# --- reminders and their fees ----------------------------------------------------------------


def test_the_first_reminder_is_free_and_reads_like_a_nudge(invoice, run_on) -> None:
    run_on(DAY_AFTER)
    run_on(FIRST_REMINDER)
    action = DunningAction.objects.get(key="reminder:1")
    assert (action.fee, action.interest) == (Decimal("0.00"), Decimal("0.00"))
    assert fees(invoice) == []
    message = mail.outbox[-1]
    assert message.subject == "Påminnelse: faktura 100001"
    assert "Det är lätt hänt att missa en faktura" in message.body
    assert "Betala 299,00\xa0kr senast 20 december 2026." in message.body
    assert f"Bankgiro 5050-1055, OCR-nummer {invoice.ocr}." in message.body
    assert "anstånd" in message.body
    assert "delbetalningar" in message.body


def test_no_reminder_fee_where_the_customer_never_agreed_to_one(run_on) -> None:
    invoice = make_invoice(agreed_on=None)
    remind_twice(run_on)
    assert DunningAction.objects.filter(key="reminder:2").exists()
    assert fees(invoice) == []


def test_no_reminder_fee_when_it_was_agreed_after_the_debt_arose(run_on) -> None:
    invoice = make_invoice(agreed_on=invoice_period_start() + timedelta(days=1))
    remind_twice(run_on)
    assert fees(invoice) == []


def invoice_period_start() -> date:
    return date(2026, 10, 1)


def test_a_policy_fee_above_the_cap_is_charged_at_the_cap(invoice, run_on) -> None:
    # given a step saved with 95 kr around the admin's checks
    DunningStep.objects.filter(charge_fee=True).update(fee=Decimal("95.00"))
    remind_twice(run_on)
    assert fees(invoice) == [Decimal("60.00")]


def test_two_fee_steps_still_charge_one_fee_per_claim(invoice, run_on) -> None:
    # given a policy whose first reminder also has a fee (around the admin's checks)
    DunningStep.objects.filter(position=1).update(charge_fee=True, fee=Decimal("60.00"))
    remind_twice(run_on)
    assert fees(invoice) == [Decimal("60.00")]
    assert list(DunningAction.objects.order_by("id").values_list("fee", flat=True)) == [
        Decimal("60.00"),
        Decimal("0.00"),
    ]


def test_a_customer_we_cannot_reach_gets_a_recorded_step_without_a_fee(run_on) -> None:
    invoice = make_invoice(
        agreed_on=date(2025, 1, 1), email="", phone="", delivery_method=DeliveryMethod.PAPER
    )
    remind_twice(run_on)
    action = DunningAction.objects.get(invoice=invoice, key="reminder:2")
    assert (action.sent_at, action.channels, action.fee) == (None, "", Decimal("0.00"))
    assert fees(invoice) == []


def test_a_paper_customer_with_an_email_address_is_reminded_by_email(run_on) -> None:
    invoice = make_invoice(delivery_method=DeliveryMethod.PAPER)
    run_on(DAY_AFTER)
    run_on(FIRST_REMINDER)
    action = DunningAction.objects.get(invoice=invoice, key="reminder:1")
    assert action.channels == "email"
    assert mail.outbox[-1].to == [invoice.customer.email]


def test_an_english_customer_is_reminded_in_english_by_sms_too(run_on, sms_outbox) -> None:
    make_invoice(language="en", delivery_method=DeliveryMethod.EMAIL_AND_SMS)
    run_on(DAY_AFTER)
    run_on(FIRST_REMINDER)
    assert mail.outbox[-1].subject == "Reminder: invoice 100001"
    assert "Please pay 299.00\xa0kr by 20 December 2026." in mail.outbox[-1].body
    _to, text = sms_outbox[-1]
    assert "we have not received the payment for your invoice yet" in text
    assert "299.00 kr" in text  # (plain spaces: an SMS stays in the GSM alphabet)


def test_a_reminder_moves_the_due_date_by_the_steps_shift(invoice, run_on) -> None:
    DunningStep.objects.filter(position=1).update(due_date_shift_days=10)
    run_on(DAY_AFTER)
    run_on(FIRST_REMINDER)
    case = DunningCase.objects.get(invoice=invoice)
    assert case.due_date == FIRST_REMINDER + timedelta(days=10)
    # and the next step counts from it
    assert case.next_action_on == case.due_date + timedelta(days=1)


def test_a_claim_paid_after_a_reminder_closes_and_gets_nothing_more(invoice, run_on) -> None:
    run_on(DAY_AFTER)
    run_on(FIRST_REMINDER)
    from invoices.services.payments import bgmax_import

    bgmax_import(data=bgmax_file(deposit_of(Paid(ore(invoice.total), invoice.ocr))), name="p")
    sent = len(mail.outbox)
    report = run_on(SECOND_REMINDER)
    assert (report.closed, report.steps) == (1, 0)
    assert DunningCase.objects.get(invoice=invoice).stage == CaseStage.CLOSED
    assert len(mail.outbox) == sent


# --- holds -------------------------------------------------------------------------------------


def postpone(invoice: Invoice, *, to: date) -> Postponement:
    return Postponement.objects.create(
        invoice=invoice,
        previous_due_date=invoice.due_date,
        new_due_date=to,
        granted_by=GrantedBy.CUSTOMER,
        granted_at=timezone.now(),
    )


def test_a_postponement_before_the_due_date_moves_the_overdue_day(invoice, run_on) -> None:
    postpone(invoice, to=DUE + timedelta(days=20))
    assert run_on(DAY_AFTER).overdue == 0
    assert run_on(DUE + timedelta(days=21)).overdue == 1
    case = DunningCase.objects.get(invoice=invoice)
    assert case.original_due_date == DUE + timedelta(days=20)


def test_no_reminder_while_a_postponement_runs_then_they_count_from_its_date(
    invoice, run_on
) -> None:
    # given an overdue invoice postponed after it fell due
    run_on(DAY_AFTER)
    postpone(invoice, to=DUE + timedelta(days=30))
    # then no reminder on the policy's day, nor on the new due date
    assert run_on(FIRST_REMINDER).steps == 0
    assert run_on(DUE + timedelta(days=30)).steps == 0
    # and the first comes five days after the new due date
    assert run_on(DUE + timedelta(days=34)).steps == 0
    assert run_on(DUE + timedelta(days=35)).steps == 1


def test_no_reminder_while_an_instalment_plan_runs_and_dunning_resumes_when_it_breaks(
    invoice, run_on
) -> None:
    run_on(DAY_AFTER)
    plan = InstalmentPlan.objects.create(
        invoice=invoice,
        parts=3,
        amount=invoice.total,
        granted_by=GrantedBy.AGENT,
        granted_at=timezone.now(),
    )
    assert run_on(FIRST_REMINDER).steps == 0
    assert run_on(FIRST_REMINDER + timedelta(days=10)).steps == 0
    plan.status = PlanStatus.BROKEN
    plan.save(update_fields=["status"])
    assert run_on(FIRST_REMINDER + timedelta(days=11)).steps == 1


def dispute(invoice: Invoice, amount: str) -> Dispute:
    return Dispute.objects.create(
        invoice=invoice,
        line=invoice.lines.first(),
        amount=Decimal(amount),
        reason="Jag sade upp abonnemanget",
        opened_by=GrantedBy.CUSTOMER,
        opened_at=timezone.now(),
        conversation_id=42,
    )


def test_a_reminder_leaves_out_the_disputed_amount(invoice, run_on) -> None:
    dispute(invoice, "99.00")
    run_on(DAY_AFTER)
    run_on(FIRST_REMINDER)
    action = DunningAction.objects.get(key="reminder:1")
    assert action.amount_asked == Decimal("200.00")
    assert "Betala 200,00\xa0kr" in mail.outbox[-1].body


def test_no_reminder_when_all_that_is_open_is_disputed(invoice, run_on) -> None:
    dispute(invoice, "299.00")
    run_on(DAY_AFTER)
    assert run_on(FIRST_REMINDER).steps == 0
    assert not DunningAction.objects.exists()


def test_interest_runs_only_on_the_undisputed_capital(invoice, run_on) -> None:
    dispute(invoice, "99.00")
    remind_twice(run_on)
    interest = InvoiceCharge.objects.get(invoice=invoice, kind=ChargeKind.INTEREST)
    # 200 kr × 10 % × 20 days / 365 = 1.0958… kr
    assert interest.amount == Decimal("1.10")


# --- idempotency and the book in chunks ----------------------------------------------------


def test_the_task_run_twice_a_day_sends_nothing_twice(
    invoice, run_on, django_capture_on_commit_callbacks
) -> None:
    run_on(DAY_AFTER)
    run_on(FIRST_REMINDER)
    before = (OutboundMessage.objects.count(), DunningAction.objects.count(), len(mail.outbox))
    charges = InvoiceCharge.objects.count()
    # when the beat task runs again the same day, twice
    with django_capture_on_commit_callbacks(execute=True):
        first = dunning_run_task.delay().get()
        second = dunning_run_task.delay().get()
    # then nothing more was sent, recorded or charged
    assert first["steps"] == second["steps"] == 0
    after = (OutboundMessage.objects.count(), DunningAction.objects.count(), len(mail.outbox))
    assert after == before
    assert InvoiceCharge.objects.count() == charges


def test_a_step_taken_twice_for_the_same_day_acts_once(invoice, run_on) -> None:
    from dunning.services.steps import case_step_run

    run_on(DAY_AFTER)
    run_on(FIRST_REMINDER)
    case = DunningCase.objects.get(invoice=invoice)
    # the same case forced due again the same day: the next step is not due yet
    DunningCase.objects.filter(id=case.id).update(next_action_on=FIRST_REMINDER)
    assert case_step_run(case_id=case.id, today=FIRST_REMINDER) is None
    assert DunningAction.objects.filter(key__startswith="reminder").count() == 1


def test_a_large_book_is_run_in_chunks(run_on, settings) -> None:
    settings.DUNNING_CHUNK_SIZE = 2
    for _ in range(5):
        make_invoice()
    assert run_on(DAY_AFTER).overdue == 5
    assert run_on(FIRST_REMINDER).steps == 5
    assert dunning_run(today=FIRST_REMINDER).steps == 0


def test_final_notice_warns_of_collection_and_its_fee(invoice, run_on) -> None:
    remind_twice(run_on)
    run_on(SECOND_REMINDER + timedelta(days=15))
    message = mail.outbox[-1]
    assert message.subject == "Sista påminnelse: faktura 100001"
    assert "inkassoavgift på upp till 180,00\xa0kr" in message.body


def test_the_command_runs_a_pass_and_says_what_it_did(invoice) -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("dunning_run", "--date", DAY_AFTER.isoformat(), stdout=out)
    assert "Dunning 2026-12-02: 1 overdue" in out.getvalue()
    call_command("dunning_run", "--date", DAY_AFTER.isoformat(), stdout=out)
    assert "Dunning 2026-12-02: 0 overdue" in out.getvalue()
