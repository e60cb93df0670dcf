"""A postponement (anstånd): once per invoice, at most the policy's days after the current due
date, never after the handover to collection; confirmed by a receipt; and it holds the
reminders back until the new due date."""

from datetime import date, timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail

from core.errors import DomainError
from dunning.models import (
    ActionKind,
    CaseStage,
    DunningAction,
    DunningCase,
    GrantedBy,
    Postponement,
)
from dunning.selectors import invoice_dunning_hold
from dunning.services.ways_out import postponement_grant
from invoices.models import InvoiceStatus, OutboundMessage
from tests.dunning.conftest import DUE, make_invoice
from tests.dunning.ways_out_fixtures import outbox, policy

pytestmark = pytest.mark.django_db

BEFORE_DUE = date(2026, 11, 20)


def grant(invoice, new_due_date: date, *, today: date = BEFORE_DUE, key: str = "", **kwargs):
    return postponement_grant(
        invoice_id=invoice.id,
        new_due_date=new_due_date,
        granted_by=kwargs.pop("granted_by", GrantedBy.CUSTOMER),
        idempotency_key=key,
        today=today,
        **kwargs,
    )


def test_a_customer_postpones_up_to_the_policys_days_and_gets_the_terms(
    django_capture_on_commit_callbacks,
) -> None:
    # given a customer who gets e-mail and SMS, and the policy's 30 days after the due date
    invoice = make_invoice(delivery_method="email_sms")
    latest = DUE + timedelta(days=30)
    # when the customer postpones to the last day allowed
    with django_capture_on_commit_callbacks(execute=True):
        granted = grant(invoice, latest, key="page:1:a")
    # then the postponement stands, from the due date before
    postponement = granted.row
    assert granted.created
    assert (postponement.previous_due_date, postponement.new_due_date) == (DUE, latest)
    assert postponement.granted_by == GrantedBy.CUSTOMER
    # and the receipt states the terms, by e-mail and SMS, and its time is kept
    assert postponement.receipt_sent_at is not None
    (email,) = outbox(invoice, OutboundMessage.Channel.EMAIL)
    assert "31 december 2026" in email.subject
    assert "Nytt förfallodatum: 31 december 2026 (det var 1 december 2026)." in email.body_text
    assert "299,00" in email.body_text
    (sms,) = outbox(invoice, OutboundMessage.Channel.SMS)
    assert "31 december 2026" in sms.body_text
    # (handed to the carriers after commit, with a working link)
    assert mail.outbox[-1].subject == email.subject
    assert "/i/" in mail.outbox[-1].body


def test_the_receipt_reads_in_the_invoices_language() -> None:
    invoice = make_invoice(language="en")
    grant(invoice, DUE + timedelta(days=10))
    (email,) = outbox(invoice, OutboundMessage.Channel.EMAIL)
    assert "New due date: 11 December 2026 (it was 1 December 2026)." in email.body_text
    assert "The postponement is free." in email.body_text


@pytest.mark.parametrize(
    "new_due_date",
    [DUE, DUE - timedelta(days=1), DUE + timedelta(days=31)],
    ids=["the due date itself", "earlier", "beyond the policy's days"],
)
def test_a_day_outside_the_window_is_refused(invoice, new_due_date: date) -> None:
    with pytest.raises(DomainError) as refused:
        grant(invoice, new_due_date)
    assert refused.value.code == "postponement_date_invalid"
    assert not Postponement.objects.exists()


def test_the_policys_days_decide_the_window(invoice) -> None:
    policy(postponement_max_days=7)
    with pytest.raises(DomainError) as refused:
        grant(invoice, DUE + timedelta(days=8))
    assert refused.value.code == "postponement_date_invalid"
    assert grant(invoice, DUE + timedelta(days=7)).created


def test_an_invoice_is_postponed_once(invoice) -> None:
    first = grant(invoice, DUE + timedelta(days=10), key="page:1:a").row
    # the same request from another tab (another key, the same day) returns the first
    again = grant(invoice, DUE + timedelta(days=10), key="page:1:b")
    assert (again.row.id, again.created) == (first.id, False)
    # another day is refused
    with pytest.raises(DomainError) as refused:
        grant(invoice, DUE + timedelta(days=20), key="page:1:c")
    assert refused.value.code == "already_postponed"
    assert Postponement.objects.count() == 1
    assert len(outbox(invoice, OutboundMessage.Channel.EMAIL)) == 1


def test_the_same_form_posted_twice_gives_the_first_postponement_and_one_receipt(invoice) -> None:
    first = grant(invoice, DUE + timedelta(days=10), key="page:1:a")
    # even when the second asks for something the first made impossible
    second = grant(invoice, DUE + timedelta(days=12), key="page:1:a")
    assert (second.row.id, second.created) == (first.row.id, False)
    assert len(outbox(invoice, OutboundMessage.Channel.EMAIL)) == 1


def test_a_key_of_another_invoice_is_refused(invoice) -> None:
    grant(invoice, DUE + timedelta(days=10), key="page:1:a")
    other = make_invoice()
    with pytest.raises(DomainError) as refused:
        grant(other, DUE + timedelta(days=10), key="page:1:a")
    assert refused.value.code == "idempotency_key_invalid"


def test_nothing_is_postponed_once_the_claim_is_with_collection(invoice) -> None:
    invoice.status = InvoiceStatus.COLLECTION
    invoice.save(update_fields=["status"])
    with pytest.raises(DomainError) as refused:
        grant(invoice, DUE + timedelta(days=10))
    assert refused.value.code == "handed_to_collection"


def test_a_paid_invoice_has_nothing_to_postpone(invoice) -> None:
    invoice.status = InvoiceStatus.PAID
    invoice.save(update_fields=["status"])
    with pytest.raises(DomainError) as refused:
        grant(invoice, DUE + timedelta(days=10))
    assert refused.value.code == "nothing_to_pay"


def test_switched_off_for_the_page_an_agent_may_still_postpone(invoice) -> None:
    policy(postponement_enabled=False)
    with pytest.raises(DomainError) as refused:
        grant(invoice, DUE + timedelta(days=10))
    assert refused.value.code == "postponement_not_offered"
    agent = User.objects.create_user("agnes")
    granted = grant(
        invoice, DUE + timedelta(days=10), granted_by=GrantedBy.AGENT, granted_by_user=agent
    )
    assert (granted.row.granted_by, granted.row.granted_by_user) == (GrantedBy.AGENT, agent)


def test_an_agents_grant_names_the_agent(invoice) -> None:
    with pytest.raises(DomainError) as refused:
        grant(invoice, DUE + timedelta(days=10), granted_by=GrantedBy.AGENT)
    assert refused.value.code == "agent_required"


def test_the_hold_keeps_reminders_back_until_the_new_due_date(invoice, run_on) -> None:
    # given a postponement to 20 December
    new_due = date(2026, 12, 20)
    grant(invoice, new_due)
    # then the hold holds on the new due date and lets go the day after
    assert invoice_dunning_hold(invoice_id=invoice.id, today=new_due).holds_reminders
    assert not invoice_dunning_hold(
        invoice_id=invoice.id, today=new_due + timedelta(days=1)
    ).holds_reminders
    # and the engine finds the invoice overdue only after it
    assert run_on(date(2026, 12, 2)).overdue == 0
    assert run_on(new_due).overdue == 0
    assert run_on(date(2026, 12, 21)).overdue == 1
    case = DunningCase.objects.get(invoice=invoice)
    assert case.original_due_date == new_due
    # the first reminder comes five days after the new due date, not the old one
    assert run_on(date(2026, 12, 24)).steps == 0
    assert run_on(date(2026, 12, 25)).steps == 1
    assert DunningAction.objects.get(invoice=invoice, kind=ActionKind.REMINDER).acted_on == date(
        2026, 12, 25
    )


def test_an_overdue_invoice_after_a_reminder_is_postponed_from_the_reminders_due_date(
    invoice, run_on
) -> None:
    # given an overdue invoice with a first reminder asking payment by 20 December
    run_on(date(2026, 12, 2))
    run_on(date(2026, 12, 6))
    case = DunningCase.objects.get(invoice=invoice)
    assert (case.stage, case.due_date) == (CaseStage.REMINDED, date(2026, 12, 20))
    # when the customer postpones on 10 December: up to 30 days after the 20th
    with pytest.raises(DomainError):
        grant(invoice, date(2027, 1, 20), today=date(2026, 12, 10))
    granted = grant(invoice, date(2027, 1, 19), today=date(2026, 12, 10))
    assert granted.row.previous_due_date == date(2026, 12, 20)
    # then no step runs before the new due date, and the next counts from it
    assert run_on(date(2026, 12, 21)).steps == 0
    assert run_on(date(2027, 1, 19)).steps == 0
    assert run_on(date(2027, 1, 20)).steps == 1
    case.refresh_from_db()
    assert case.steps_done == 2


def test_too_late_when_the_latest_day_has_passed(invoice) -> None:
    # 40 days after the due date, with no reminder moving it: nothing is left of the window
    with pytest.raises(DomainError) as refused:
        grant(invoice, date(2027, 1, 12), today=date(2027, 1, 10))
    assert refused.value.code == "postponement_too_late"
