"""An undone plan change after its month was invoiced: the month is settled as if the change
had never been made — a credit note for what was charged too much, a charge on the next
invoice for what was charged too little."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.models import OneOffCharge, PlanChangeStatus
from billing.services import ChangeTiming, plan_change_request
from invoices.models import DocumentKind, Invoice
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.corrections import plan_change_undo_and_correct
from invoices.services.links import invoice_link_create
from tests.factories import PlanFactory, SubscriptionFactory, UsageRecordFactory

pytestmark = pytest.mark.django_db

NOV_25 = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.fixture
def plans():
    medium = PlanFactory(code="mobil-10", name="Mobil 10 GB", monthly_fee=Decimal("299"))
    large = PlanFactory(
        code="mobil-30",
        name="Mobil 30 GB",
        monthly_fee=Decimal("399"),
        data_included_gb=Decimal("30"),
    )
    return medium, large


def change_now(sub, to_plan):
    return plan_change_request(
        subscription_id=sub.id,
        to_plan_id=to_plan.id,
        requested_via="invoice_page",
        idempotency_key="k1",
        timing=ChangeTiming.NOW,
        confirmed_by_code=True,
    )


def change_now_on_22_november(sub, to_plan):
    """Change today, 22 November (21 days of the old plan, 9 of the new); bill November."""
    with time_machine.travel("2026-11-22 10:00 +01:00", tick=False):
        result = change_now(sub, to_plan)
    with time_machine.travel("2026-12-01 06:00 +01:00", tick=False):
        run = bill_run_start(period=date(2026, 11, 1), invoice_date=date(2026, 12, 1))
        bill_run_execute(bill_run_id=run.id)
    return result


def undo_on_3_december(**kwargs):
    with time_machine.travel("2026-12-03 12:00 +01:00", tick=False):
        return plan_change_undo_and_correct(via="invoice_page", **kwargs)


def test_an_upgrade_undone_after_its_month_was_invoiced_is_credited(plans) -> None:
    # given Mobil 10 GB (299 kr) moved to Mobil 30 GB (399 kr) on 22 November, and November
    # invoiced with 21/30 of 299 + 9/30 of 399 = 209.30 + 119.70 = 329.00
    medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    result = change_now_on_22_november(sub, large)
    november = Invoice.objects.get(kind=DocumentKind.INVOICE)
    assert november.total == Decimal("329.00")
    # when the customer undoes it on 3 December, within the cooling-off period
    undone = undo_on_3_december(undo_token=result.undo_token)
    # then November is credited the 30.00 kr the change cost, on a credit note naming it
    assert undone.change.status == PlanChangeStatus.UNDONE
    (correction,) = undone.corrections
    assert correction.amount == Decimal("-30.00")
    note = correction.credit_note
    assert note.credited_invoice_id == november.id
    assert note.total == Decimal("-30.00")
    (line,) = note.lines.all()
    assert (line.kind, line.amount, line.vat_amount) == (
        "correction",
        Decimal("-30.00"),
        Decimal("-6.00"),
    )
    assert line.texts["en"]["title"] == "Plan change undone"
    assert "Mobil 10 GB as before" in line.texts["en"]["detail"]
    assert "ångrade bytet till Mobil 30 GB" in line.texts["sv"]["detail"]
    assert (line.service_from, line.service_to) == (date(2026, 11, 22), date(2026, 11, 30))
    # and November's invoice itself is untouched, nothing is charged later
    november.refresh_from_db()
    assert november.total == Decimal("329.00")
    assert not OneOffCharge.objects.exists()


def test_a_downgrade_undone_after_its_month_was_invoiced_is_charged_on_the_next_invoice(
    plans,
) -> None:
    # given Mobil 30 GB moved to Mobil 10 GB on 22 November: November cost 279.30 + 89.70
    medium, large = plans
    sub = SubscriptionFactory(plan=large, binding_end=None)
    result = change_now_on_22_november(sub, medium)
    assert Invoice.objects.get().total == Decimal("369.00")
    # when it is undone on 3 December
    undone = undo_on_3_december(change_id=result.change.id)
    # then nothing is credited, and the 30.00 kr the customer paid too little ...
    (correction,) = undone.corrections
    assert (correction.amount, correction.credit_note) == (Decimal("30.00"), None)
    assert not Invoice.objects.filter(kind=DocumentKind.CREDIT_NOTE).exists()
    # ... is on December's invoice, next to a full month of the plan kept, naming November's
    with time_machine.travel("2027-01-01 06:00 +01:00", tick=False):
        run = bill_run_start(period=date(2026, 12, 1), invoice_date=date(2027, 1, 1))
        bill_run_execute(bill_run_id=run.id)
    december = Invoice.objects.get(period_start=date(2026, 12, 1))
    amounts = {line.kind: line.amount for line in december.lines.all()}
    assert amounts == {"fee": Decimal("399.00"), "one_off": Decimal("30.00")}
    one_off = december.lines.get(kind="one_off")
    november = Invoice.objects.get(period_start=date(2026, 11, 1))
    assert november.display_number in one_off.texts["sv"]["title"]
    assert one_off.texts["sv"]["title"].startswith("Planbyte ångrat: Mobil 30 GB")


def test_undoing_twice_corrects_once(plans) -> None:
    medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    result = change_now_on_22_november(sub, large)
    assert len(undo_on_3_december(undo_token=result.undo_token).corrections) == 1
    assert undo_on_3_december(undo_token=result.undo_token).corrections == []
    assert Invoice.objects.filter(kind=DocumentKind.CREDIT_NOTE).count() == 1


def test_usage_the_change_covered_is_charged_as_the_old_plan_would_have(plans) -> None:
    # given 13 GB used in November: within the 16 GB the change gave (10 × 21/30 + 30 × 9/30),
    # 3 started GB beyond the old plan's 10 GB at 29 kr
    medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    UsageRecordFactory(subscription=sub, quantity=Decimal(13 * 1024), occurred_at=NOV_25)
    result = change_now_on_22_november(sub, large)
    assert Invoice.objects.get().total == Decimal("329.00")
    # when the change is undone
    undone = undo_on_3_december(undo_token=result.undo_token)
    # then the month is as if it never happened: 299 + 87 = 386, that is 57 kr more
    (correction,) = undone.corrections
    assert (correction.amount, correction.credit_note) == (Decimal("57.00"), None)


def test_usage_that_arrived_after_the_invoice_is_not_part_of_the_correction(plans) -> None:
    # given the upgrade invoiced with no usage, then 13 GB of November usage arriving late
    medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    result = change_now_on_22_november(sub, large)
    UsageRecordFactory(subscription=sub, quantity=Decimal(13 * 1024), occurred_at=NOV_25)
    # when the change is undone
    undone = undo_on_3_december(undo_token=result.undo_token)
    # then the correction is only what the invoiced month cost with the change
    (correction,) = undone.corrections
    assert correction.amount == Decimal("-30.00")


def test_a_change_undone_before_any_invoice_needs_no_correction(plans) -> None:
    medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    with time_machine.travel("2026-11-22 10:00 +01:00", tick=False):
        result = change_now(sub, large)
        undone = plan_change_undo_and_correct(undo_token=result.undo_token, via="invoice_page")
    assert undone.corrections == []


def test_the_undo_link_tells_the_customer_what_happened_to_the_invoiced_month(
    plans, client
) -> None:
    # given the upgrade invoiced in November
    medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    result = change_now_on_22_november(sub, large)
    number = Invoice.objects.get().display_number
    # when the customer undoes it from the receipt's link
    with time_machine.travel("2026-12-03 12:00 +01:00", tick=False):
        response = client.post(f"/u/{result.undo_token}/", follow=True)
    # then the page says the change is undone and November's invoice was credited
    page = response.content.decode()
    note = Invoice.objects.get(kind=DocumentKind.CREDIT_NOTE).display_number
    assert "Bytet är ångrat. Du behåller Mobil 10 GB" in page
    assert f"Faktura {number} tog med dagar av bytet" in page
    assert f"(kreditfaktura {note})" in page


def test_an_undo_after_a_full_credit_credits_nothing_more_and_still_undoes(plans) -> None:
    # given the upgrade invoiced, and the whole invoice credited by staff since
    from invoices.services.credit_notes import credit_note_issue

    medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    result = change_now_on_22_november(sub, large)
    november = Invoice.objects.get()
    credit_note_issue(invoice_id=november.id, reason="Fel kund")
    # when the customer undoes the change
    undone = undo_on_3_december(undo_token=result.undo_token)
    # then it is undone, and nothing more is credited: nothing was left to refund
    assert undone.change.status == PlanChangeStatus.UNDONE
    assert undone.corrections == []
    credited = sum(note.total for note in Invoice.objects.filter(credited_invoice=november))
    assert credited == -november.total


def test_crediting_everything_after_an_undo_credits_only_what_is_left(plans) -> None:
    # given the upgrade undone after invoicing: 30 kr of the 119.70 kr line credited
    from invoices.services.credit_notes import credit_note_issue, invoice_lines_creditable

    medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    result = change_now_on_22_november(sub, large)
    november = Invoice.objects.get()
    undo_on_3_december(undo_token=result.undo_token)
    assert sorted(line.remaining for line in invoice_lines_creditable(november)) == [
        Decimal("89.70"),
        Decimal("209.30"),
    ]
    # when staff credit the whole invoice
    credit_note_issue(invoice_id=november.id, reason="Kunden flyttar")
    # then the credit notes together take off exactly the invoice, never more
    credited = sum(note.total for note in Invoice.objects.filter(credited_invoice=november))
    assert credited == -november.total == Decimal("-329.00")
    november.refresh_from_db()
    assert november.status == "credited"
    assert invoice_lines_creditable(november) == []


def test_an_undo_after_a_line_was_credited_takes_the_rest_from_the_months_other_lines(
    plans,
) -> None:
    # given the upgrade invoiced and its own line (119.70 kr, 22–30 November) credited
    from invoices.services.credit_notes import credit_note_issue

    medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    result = change_now_on_22_november(sub, large)
    november = Invoice.objects.get()
    new_plan_line = november.lines.get(kind="fee", amount=Decimal("119.70"))
    credit_note_issue(invoice_id=november.id, reason="Avbrott", line_ids=[new_plan_line.id])
    # when the change is undone
    (correction,) = undo_on_3_december(undo_token=result.undo_token).corrections
    # then the 30 kr come off the old plan's line, and never more than the invoice in all
    (line,) = correction.credit_note.lines.all()
    assert line.credited_line.amount == Decimal("209.30")
    assert line.amount == Decimal("-30.00")
    credited = sum(note.total for note in Invoice.objects.filter(credited_invoice=november))
    assert -credited <= november.total


def test_the_page_says_how_much_of_a_line_a_correction_credited(plans, client) -> None:
    medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    result = change_now_on_22_november(sub, large)
    november = Invoice.objects.get()
    undone = undo_on_3_december(undo_token=result.undo_token)
    note = undone.corrections[0].credit_note.display_number
    page = client.get(f"/i/{invoice_link_create(invoice=november)}/?lang=en").content.decode()
    assert f"30.00\u00a0kr credited by credit note {note}" in page.replace("&nbsp;", "\u00a0")
