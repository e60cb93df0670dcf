"""Instalment plans (avbetalningsplan): 2–6 parts a month apart in whole kronor summing to what
is open and the fee, the fee within the legal cap and charged on the invoice, one plan at a
time, a receipt; while it runs no reminder; the daily check breaks a plan whose part is
missed (and tells the customer, once) and completes a paid one."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core import mail

from core.errors import DomainError
from dunning.models import (
    ActionKind,
    DunningAction,
    GrantedBy,
    Instalment,
    InstalmentPlan,
    PlanStatus,
)
from dunning.selectors import invoice_dunning_hold
from dunning.services.ways_out import instalment_plan_check, instalment_plan_grant
from dunning.tasks import instalment_plans_check_task
from invoices.models import ChargeKind, InvoiceCharge, InvoiceStatus, OutboundMessage
from invoices.services.payments import invoice_balance
from tests.dunning.conftest import DUE, make_invoice
from tests.dunning.ways_out_fixtures import outbox, pay, policy

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 10)


def grant(invoice, parts: int, *, today: date = TODAY, key: str = "", **kwargs):
    return instalment_plan_grant(
        invoice_id=invoice.id,
        parts=parts,
        granted_by=kwargs.pop("granted_by", GrantedBy.CUSTOMER),
        idempotency_key=key,
        today=today,
        **kwargs,
    )


def schedule(plan: InstalmentPlan) -> list[tuple[date, Decimal]]:
    return [(part.due_date, part.amount) for part in plan.instalments.order_by("number")]


def test_a_plan_splits_what_is_open_into_whole_kronor_a_month_apart(invoice) -> None:
    # given 299 kr open, due 1 December
    # when the customer splits it into 3 parts on 10 November
    granted = grant(invoice, 3)
    # then the first part is due on the due date (more than 14 days away), then monthly,
    # the kronor the division leaves on the first parts
    plan = granted.row
    assert granted.created
    assert (plan.parts, plan.amount, plan.fee, plan.status) == (
        3,
        Decimal("299.00"),
        Decimal("0.00"),
        PlanStatus.ACTIVE,
    )
    assert schedule(plan) == [
        (date(2026, 12, 1), Decimal("100.00")),
        (date(2027, 1, 1), Decimal("100.00")),
        (date(2027, 2, 1), Decimal("99.00")),
    ]
    # and no fee is charged
    assert not InvoiceCharge.objects.filter(invoice=invoice).exists()


def test_the_first_part_gives_at_least_the_policys_days(invoice) -> None:
    # on 25 November the due date is 6 days away: the first part is due 14 days on
    plan = grant(invoice, 2, today=date(2026, 11, 25)).row
    assert schedule(plan)[0][0] == date(2026, 12, 9)
    assert schedule(plan)[1][0] == date(2027, 1, 9)


def test_the_fee_is_charged_on_the_invoice_and_is_in_the_parts(invoice) -> None:
    # given a plan fee of 50 kr
    policy(instalment_fee=Decimal("50.00"))
    # when a plan in 3 parts is made
    plan = grant(invoice, 3).row
    # then the fee is a charge on the invoice named by the plan, with its legal words
    charge = InvoiceCharge.objects.get(invoice=invoice)
    assert (charge.kind, charge.amount, charge.source_key) == (
        ChargeKind.INSTALMENT_FEE,
        Decimal("50.00"),
        f"instalment-plan:{plan.id}",
    )
    assert "170,00" in charge.texts["sv"]["detail"]
    assert "3 parts" in charge.texts["en"]["detail"]
    # and the parts add up to what is open and the fee, exactly
    assert plan.amount == Decimal("349.00") == invoice_balance(invoice).open
    assert [amount for _day, amount in schedule(plan)] == [
        Decimal("117.00"),
        Decimal("116.00"),
        Decimal("116.00"),
    ]


def test_an_agent_may_waive_the_fee(invoice) -> None:
    policy(instalment_fee=Decimal("50.00"))
    agent = User.objects.create_user("agnes")
    plan = grant(
        invoice, 2, granted_by=GrantedBy.AGENT, granted_by_user=agent, fee=Decimal("0.00")
    ).row
    assert (plan.fee, plan.amount, plan.granted_by_user) == (Decimal("0.00"), invoice.total, agent)
    assert not InvoiceCharge.objects.exists()


@pytest.mark.parametrize("fee", ["170.01", "-1.00"])
def test_a_fee_outside_the_legal_cap_is_refused(invoice, fee: str) -> None:
    policy(instalment_fee=Decimal("170.01"))
    with pytest.raises(DomainError) as refused:
        grant(invoice, 2, fee=Decimal(fee))
    assert refused.value.code == "instalment_fee_above_cap"
    assert not InstalmentPlan.objects.exists()


def test_the_cap_is_the_settings(invoice, settings) -> None:
    settings.DUNNING_INSTALMENT_FEE_CAP = Decimal("20.00")
    policy(instalment_fee=Decimal("30.00"))
    with pytest.raises(DomainError) as refused:
        grant(invoice, 2)
    assert refused.value.code == "instalment_fee_above_cap"


@pytest.mark.parametrize("parts", [1, 7, 5])
def test_parts_outside_two_to_the_policys_most_are_refused(invoice, parts: int) -> None:
    policy(instalment_max_parts=4)
    with pytest.raises(DomainError) as refused:
        grant(invoice, parts)
    assert refused.value.code == "instalment_parts_invalid"


def test_plans_are_offered_from_the_policys_amount_but_an_agent_may_make_one(invoice) -> None:
    policy(instalment_min_amount=Decimal("300.00"))
    with pytest.raises(DomainError) as refused:
        grant(invoice, 2)
    assert refused.value.code == "instalment_amount_too_small"
    agent = User.objects.create_user("agnes")
    assert grant(invoice, 2, granted_by=GrantedBy.AGENT, granted_by_user=agent).created


def test_one_plan_at_a_time_and_the_same_request_gives_the_first(invoice) -> None:
    first = grant(invoice, 3, key="page:1:a").row
    # the same form again, and the same choice from another tab: the first plan
    assert grant(invoice, 3, key="page:1:a").row.id == first.id
    again = grant(invoice, 3, key="page:1:b")
    assert (again.row.id, again.created) == (first.id, False)
    # another number of parts while it runs: refused
    with pytest.raises(DomainError) as refused:
        grant(invoice, 4, key="page:1:c")
    assert refused.value.code == "instalment_plan_active"
    assert InstalmentPlan.objects.count() == 1
    assert Instalment.objects.count() == 3
    assert len(outbox(invoice, OutboundMessage.Channel.EMAIL)) == 1


def test_a_changed_amount_is_shown_again_before_the_plan_is_made(invoice) -> None:
    with pytest.raises(DomainError) as refused:
        grant(invoice, 2, expected_total=Decimal("250.00"))
    assert refused.value.code == "instalment_total_changed"
    assert grant(invoice, 2, expected_total=Decimal("299.00")).created


def test_nothing_is_split_once_with_collection(invoice) -> None:
    invoice.status = InvoiceStatus.COLLECTION
    invoice.save(update_fields=["status"])
    with pytest.raises(DomainError) as refused:
        grant(invoice, 2)
    assert refused.value.code == "handed_to_collection"


def test_the_receipt_lists_the_parts_and_the_fee(django_capture_on_commit_callbacks) -> None:
    invoice = make_invoice(language="en", delivery_method="email_sms")
    policy(instalment_fee=Decimal("30.00"))
    with django_capture_on_commit_callbacks(execute=True):
        plan = grant(invoice, 2).row
    assert plan.receipt_sent_at is not None
    (email,) = outbox(invoice, OutboundMessage.Channel.EMAIL)
    assert email.subject == f"Invoice {invoice.display_number}: your plan in 2 parts"
    body = email.body_text.replace("\xa0", " ")
    assert "Part 1: 165.00 kr by 1 December 2026" in body
    assert "Part 2: 164.00 kr by 1 January 2027" in body
    assert "of which 30.00 kr is the plan's fee (the law allows at most 170.00 kr)" in body
    (sms,) = outbox(invoice, OutboundMessage.Channel.SMS)
    assert "2 parts, the first 165.00 kr by 1 December 2026" in sms.body_text
    assert mail.outbox[-1].subject == email.subject


def test_while_a_plan_runs_no_reminder_is_sent(invoice, run_on) -> None:
    # given a plan in 2 parts, the first paid on time
    grant(invoice, 2)
    pay(invoice, "150.00", on=date(2026, 11, 30), serial="00001")
    assert invoice_dunning_hold(invoice_id=invoice.id, today=date(2026, 12, 10)).holds_reminders
    # then the invoice is not found overdue, and nothing is sent, while the plan runs
    for day in (date(2026, 12, 2), date(2026, 12, 10), date(2026, 12, 31)):
        report = run_on(day)
        assert (report.overdue, report.steps) == (0, 0)
    assert not DunningAction.objects.filter(
        invoice=invoice, kind__in=[ActionKind.REMINDER, ActionKind.FINAL_NOTICE]
    ).exists()


def test_a_missed_part_breaks_the_plan_once_and_dunning_resumes(
    invoice, run_on, django_capture_on_commit_callbacks
) -> None:
    # given a plan in 2 parts (1 December, 1 January), nothing paid
    plan = grant(invoice, 2).row
    # within the grace days nothing happens
    assert instalment_plan_check(plan_id=plan.id, today=date(2026, 12, 6)) is None
    # when the check runs after them, twice
    with django_capture_on_commit_callbacks(execute=True):
        assert instalment_plan_check(plan_id=plan.id, today=date(2026, 12, 7)) == "broken"
        assert instalment_plan_check(plan_id=plan.id, today=date(2026, 12, 7)) is None
        assert instalment_plans_check_task.apply(kwargs={}).get() == {"broken": 0, "completed": 0}
    # then the plan is broken and the customer told once, kindly
    plan.refresh_from_db()
    assert plan.status == PlanStatus.BROKEN
    assert plan.ended_at is not None
    told = [m for m in outbox(invoice, OutboundMessage.Channel.EMAIL) if "avslutats" in m.subject]
    assert len(told) == 1
    assert "del 1" in told[0].body_text
    # and the engine's next run takes the invoice up again from its due date: overdue, and
    # the first reminder, whose day (five days after the due date) has passed
    report = run_on(date(2026, 12, 8))
    assert (report.overdue, report.steps) == (1, 1)


def test_paying_ahead_of_the_parts_keeps_the_plan(invoice) -> None:
    plan = grant(invoice, 3).row
    # the first two parts at once, before the first day
    pay(invoice, "200.00", on=date(2026, 11, 28), serial="00001")
    assert instalment_plan_check(plan_id=plan.id, today=date(2027, 1, 10)) is None
    # the third not by its day and the grace days: broken
    assert instalment_plan_check(plan_id=plan.id, today=date(2027, 2, 7)) == "broken"


def test_a_paid_plan_is_completed_once(invoice) -> None:
    plan = grant(invoice, 2).row
    pay(invoice, "150.00", on=date(2026, 11, 30), serial="00001")
    pay(invoice, "149.00", on=date(2026, 12, 30), serial="00002")
    assert instalment_plan_check(plan_id=plan.id, today=date(2026, 12, 31)) == "completed"
    assert instalment_plan_check(plan_id=plan.id, today=date(2026, 12, 31)) is None
    plan.refresh_from_db()
    assert plan.status == PlanStatus.COMPLETED
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


def test_after_a_plan_the_page_offers_none_but_an_agent_may_make_another(invoice) -> None:
    plan = grant(invoice, 2).row
    instalment_plan_check(plan_id=plan.id, today=date(2026, 12, 7))
    with pytest.raises(DomainError) as refused:
        grant(invoice, 2, today=date(2026, 12, 8))
    assert refused.value.code == "instalment_plan_before"
    agent = User.objects.create_user("agnes")
    again = grant(
        invoice, 3, today=date(2026, 12, 8), granted_by=GrantedBy.AGENT, granted_by_user=agent
    )
    assert again.created
    assert again.row.id != plan.id


def test_ore_of_what_is_open_go_on_the_first_part(invoice) -> None:
    # given interest of 1.64 kr added to the claim
    InvoiceCharge.objects.create(
        invoice=invoice,
        kind=ChargeKind.INTEREST,
        amount=Decimal("1.64"),
        texts={"en": {"title": "Interest", "detail": ""}},
        charged_on=DUE,
        source_key="test:interest",
        created_at=invoice.issued_at,
    )
    plan = grant(invoice, 4).row
    amounts = [amount for _day, amount in schedule(plan)]
    assert amounts == [Decimal("75.64"), Decimal("75.00"), Decimal("75.00"), Decimal("75.00")]
    assert sum(amounts) == plan.amount == Decimal("300.64")
