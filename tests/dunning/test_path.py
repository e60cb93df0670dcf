"""A whole dunning path with time frozen: friendly notice, overdue, a free reminder, a
reminder with a fee, the final notice, ready for collection, handed over."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core import mail

from dunning.models import ActionKind, CaseStage, DunningAction, DunningCase
from dunning.services.collection import case_hand_to_collection
from invoices.models import ChargeKind, InvoiceCharge, InvoiceStatus
from invoices.services.payments import invoice_balance

pytestmark = pytest.mark.django_db


def test_an_unpaid_invoice_goes_the_whole_way_to_collection(
    invoice, run_on, django_capture_on_commit_callbacks
) -> None:
    # three days before the due date: a friendly notice
    assert run_on(date(2026, 11, 28)).friendly_notices == 1
    assert mail.outbox[-1].subject == "Din faktura 100001 förfaller 1 december 2026"
    # the day after the due date: overdue, the case opens at 2 % + 8 pp
    report = run_on(date(2026, 12, 2))
    assert report.overdue == 1
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OVERDUE
    case = DunningCase.objects.get(invoice=invoice)
    assert (case.reference_rate, case.interest_rate) == (Decimal("2.00"), Decimal("10.00"))
    assert case.next_action_on == date(2026, 12, 6)
    # five days after: the first reminder, free, with a new due date 14 days on
    assert run_on(date(2026, 12, 6)).steps == 1
    first = DunningAction.objects.get(invoice=invoice, key="reminder:1")
    assert (first.fee, first.due_date) == (Decimal("0.00"), date(2026, 12, 20))
    # the day after that: the second, with the 60 kr fee the terms allow, and interest
    assert run_on(date(2026, 12, 21)).steps == 1
    second = DunningAction.objects.get(invoice=invoice, key="reminder:2")
    assert second.fee == Decimal("60.00")
    # 299 kr × 10 % × 20 days / 365 = 1.638… → 1.64
    assert second.interest == Decimal("1.64")
    assert invoice_balance(invoice).open == Decimal("299.00") + 60 + Decimal("1.64")
    # the final notice
    assert run_on(date(2027, 1, 5)).steps == 1
    final = DunningAction.objects.get(invoice=invoice, key="final_notice")
    assert final.due_date == date(2027, 1, 19)
    case.refresh_from_db()
    assert case.stage == CaseStage.FINAL_NOTICE
    # ready for collection the day after its due date, and handed over on confirmation
    run_on(date(2027, 1, 20))
    case.refresh_from_db()
    assert case.stage == CaseStage.COLLECTION_READY
    staff = User.objects.create_user("finance", is_staff=True)
    with django_capture_on_commit_callbacks(execute=True):
        action = case_hand_to_collection(case_id=case.id, by=staff, today=date(2027, 1, 20))
    assert action.kind == ActionKind.COLLECTION
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.COLLECTION
    # one fee on the claim, interest for every day from the due date to the handover
    charges = InvoiceCharge.objects.filter(invoice=invoice).order_by("id")
    assert [c.kind for c in charges].count(ChargeKind.REMINDER_FEE) == 1
    periods = [(c.period_start, c.period_end) for c in charges if c.kind == ChargeKind.INTEREST]
    assert periods == [
        (date(2026, 12, 2), date(2026, 12, 21)),
        (date(2026, 12, 22), date(2027, 1, 5)),
        (date(2027, 1, 6), date(2027, 1, 20)),
    ]
    # five messages: friendly notice, two reminders, final notice, handed to collection
    assert [m.subject.split(":")[0] for m in mail.outbox] == [
        "Din faktura 100001 förfaller 1 december 2026",
        "Påminnelse",
        "Påminnelse",
        "Sista påminnelse",
        "Faktura 100001 har lämnats till inkasso",
    ]
