"""Plan changes: the rules, exactly-once requests, cooling-off undo, and what the bill run
makes of them."""

import threading
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from billing.models import PlanChange, PlanChangeStatus, SubscriptionEvent
from billing.services import (
    ChangeTiming,
    binding_months_default,
    binding_months_options,
    plan_change_quote,
    plan_change_request,
    plan_change_undo,
    plan_changes_apply_due,
)
from core.errors import DomainError
from invoices.models import Invoice
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.links import invoice_link_create
from tests.factories import PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 22)


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel("2026-11-22 10:00 +01:00", tick=False):
        yield


@pytest.fixture
def plans():
    small = PlanFactory(
        code="mobil-3", name="Mobil 3 GB", monthly_fee=Decimal("199"), data_included_gb=Decimal("3")
    )
    medium = PlanFactory(code="mobil-10", name="Mobil 10 GB", monthly_fee=Decimal("299"))
    large = PlanFactory(
        code="mobil-30",
        name="Mobil 30 GB",
        monthly_fee=Decimal("399"),
        data_included_gb=Decimal("30"),
        binding_months_options=[0, 12, 24],
    )
    return small, medium, large


def request(sub, plan, key="k1", **kwargs):
    kwargs.setdefault("requested_via", "invoice_page")
    return plan_change_request(
        subscription_id=sub.id, to_plan_id=plan.id, idempotency_key=key, **kwargs
    )


def test_a_change_takes_effect_next_period_by_default(plans) -> None:
    small, medium, _ = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    result = request(sub, small)
    assert result.created
    assert result.change.effective_date == date(2026, 12, 1)
    assert result.change.status == PlanChangeStatus.SCHEDULED
    assert result.change.cooling_off_until == date(2026, 12, 6)
    sub.refresh_from_db()
    assert sub.plan == medium  # not before its day


def test_a_downgrade_during_the_binding_period_is_refused_with_the_reason(plans) -> None:
    small, medium, _ = plans
    sub = SubscriptionFactory(plan=medium, binding_end=date(2027, 3, 31))
    with pytest.raises(DomainError) as error:
        request(sub, small)
    assert error.value.code == "binding_period_active"
    assert "2027-03-31" in error.value.message


def test_a_downgrade_in_binding_is_allowed_where_the_catalogue_says_so(plans) -> None:
    small, medium, _ = plans
    medium.allows_downgrade_in_binding = True
    medium.save()
    sub = SubscriptionFactory(plan=medium, binding_end=date(2027, 3, 31))
    assert request(sub, small).created


def test_an_upgrade_is_always_possible_and_keeps_the_binding_end(plans) -> None:
    _, medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=date(2027, 3, 31))
    change = request(sub, large, confirmed_by_code=True).change
    assert change.to_binding_end == date(2027, 3, 31)


def test_from_the_invoice_page_a_price_rise_needs_the_code(plans) -> None:
    _, medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    with pytest.raises(DomainError) as error:
        request(sub, large)
    assert error.value.code == "confirmation_code_required"
    assert not PlanChange.objects.exists()
    # a change asked for by an agent in chat is confirmed by the conversation itself
    assert request(sub, large, requested_via="chat").created


def test_a_new_binding_period_needs_the_code_even_when_cheaper(plans) -> None:
    _, medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None, agreed_monthly_price=Decimal("449"))
    quote = plan_change_quote(subscription=sub, to_plan=large, binding_months=12)
    assert not quote.raises_price
    assert quote.adds_binding
    assert quote.to_binding_end == date(2027, 11, 30)
    with pytest.raises(DomainError) as error:
        request(sub, large, binding_months=12)
    assert error.value.code == "confirmation_code_required"


def test_the_same_key_twice_makes_one_change(plans) -> None:
    small, medium, _ = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    first = request(sub, small, key="click")
    second = request(sub, small, key="click")
    assert second.change == first.change
    assert not second.created
    assert second.undo_token is None
    assert PlanChange.objects.count() == 1


def test_two_tabs_make_one_change(plans) -> None:
    small, medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    first = request(sub, small, key="tab-1")
    assert request(sub, small, key="tab-2").change == first.change
    with pytest.raises(DomainError) as error:
        request(sub, large, key="tab-3", confirmed_by_code=True)
    assert error.value.code == "change_pending"
    assert PlanChange.objects.count() == 1


def test_an_immediate_change_applies_today_and_is_recorded_in_the_history(plans) -> None:
    _, medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    change = request(sub, large, timing=ChangeTiming.NOW, requested_via="chat").change
    sub.refresh_from_db()
    assert change.status == PlanChangeStatus.APPLIED
    assert sub.plan == large
    assert sub.agreed_monthly_price == Decimal("399")
    event = SubscriptionEvent.objects.get(subscription=sub, kind="plan_changed")
    assert event.via == "chat"


def test_undo_within_cooling_off_restores_everything(plans) -> None:
    _, medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    result = request(sub, large, timing=ChangeTiming.NOW, confirmed_by_code=True)
    change = plan_change_undo(undo_token=result.undo_token, via="invoice_page")
    sub.refresh_from_db()
    assert change.status == PlanChangeStatus.UNDONE
    assert (sub.plan, sub.agreed_monthly_price) == (medium, Decimal("299.00"))
    # a second click on the undo link changes nothing
    assert plan_change_undo(undo_token=result.undo_token, via="invoice_page") == change


def test_undo_after_the_cooling_off_period_is_refused(plans) -> None:
    small, medium, _ = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    result = request(sub, small)
    with (
        time_machine.travel("2026-12-07 10:00 +01:00", tick=False),
        pytest.raises(DomainError) as error,
    ):
        plan_change_undo(undo_token=result.undo_token, via="invoice_page")
    assert error.value.code == "cooling_off_expired"


def test_scheduled_changes_are_applied_on_their_day_once(plans) -> None:
    small, medium, _ = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    request(sub, small)
    assert plan_changes_apply_due(today=date(2026, 11, 30)) == 0
    assert plan_changes_apply_due(today=date(2026, 12, 1)) == 1
    assert plan_changes_apply_due(today=date(2026, 12, 1)) == 0
    sub.refresh_from_db()
    assert sub.plan == small


def test_the_bill_runs_price_the_old_plan_before_the_change_and_the_new_after(plans) -> None:
    # given a change requested on 22 November, effective 1 December, applied that day
    small, medium, _ = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None, start_date=date(2025, 1, 1))
    request(sub, small)
    plan_changes_apply_due(today=date(2026, 12, 1))
    # when November and December are billed after the change was applied
    for period, invoice_date in (
        (date(2026, 11, 1), date(2026, 12, 1)),
        (date(2026, 12, 1), date(2027, 1, 1)),
    ):
        run = bill_run_start(period=period, invoice_date=invoice_date)
        bill_run_execute(bill_run_id=run.id)
    # then November is Mobil 10 GB and December Mobil 3 GB
    november, december = Invoice.objects.order_by("period_start")
    assert november.lines.get(kind="fee").amount == Decimal("299.00")
    assert november.subscriptions[0]["plan_name"] == "Mobil 10 GB"
    assert december.lines.get(kind="fee").amount == Decimal("199.00")
    assert december.subscriptions[0]["plan_name"] == "Mobil 3 GB"


def test_an_immediate_change_is_prorated_by_day_on_the_next_invoice(plans) -> None:
    _, medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None, start_date=date(2025, 1, 1))
    request(sub, large, timing=ChangeTiming.NOW, confirmed_by_code=True)
    run = bill_run_start(period=date(2026, 11, 1), invoice_date=date(2026, 12, 1))
    bill_run_execute(bill_run_id=run.id)
    fees = list(Invoice.objects.get().lines.filter(kind="fee").values_list("amount", flat=True))
    # 21 of 30 days at 299, 9 of 30 at 399
    assert fees == [Decimal("209.30"), Decimal("119.70")]


def test_after_an_immediate_change_the_page_shows_each_plans_share_of_the_allowance(
    plans, client
) -> None:
    # given Mobil 3 GB, moved to Mobil 30 GB on 22 November (21 days of 3, 9 of 30)
    small, _, large = plans
    sub = SubscriptionFactory(plan=small, binding_end=None, start_date=date(2025, 1, 1))
    request(sub, large, timing=ChangeTiming.NOW, confirmed_by_code=True)
    # when November is billed
    run = bill_run_start(period=date(2026, 11, 1), invoice_date=date(2026, 12, 1))
    bill_run_execute(bill_run_id=run.id)
    # then what the invoice says was included is 3 × 21/30 + 30 × 9/30 = 11.1 GB, not 30
    invoice = Invoice.objects.get()
    snapshot = invoice.subscriptions[0]
    assert snapshot["plan_name"] == "Mobil 30 GB"
    assert snapshot["included"]["data_gb"] == "11.1"
    # and the page's usage bar says so, and why
    page = client.get(f"/i/{invoice_link_create(invoice=invoice)}/?lang=en").content.decode()
    assert "of 11.1\u00a0GB used" in page
    assert "Your plan changed during the month" in page


def test_an_undone_change_leaves_no_trace_on_the_invoice(plans) -> None:
    _, medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None, start_date=date(2025, 1, 1))
    result = request(sub, large, timing=ChangeTiming.NOW, confirmed_by_code=True)
    plan_change_undo(undo_token=result.undo_token, via="invoice_page")
    run = bill_run_start(period=date(2026, 11, 1), invoice_date=date(2026, 12, 1))
    bill_run_execute(bill_run_id=run.id)
    fees = list(Invoice.objects.get().lines.filter(kind="fee").values_list("amount", flat=True))
    assert fees == [Decimal("299.00")]


@pytest.mark.django_db(transaction=True)
def test_a_double_click_on_postgresql_makes_exactly_one_change(postgres) -> None:
    small = PlanFactory(code="mobil-3", name="Mobil 3 GB", monthly_fee=Decimal("199"))
    medium = PlanFactory(code="mobil-10", name="Mobil 10 GB", monthly_fee=Decimal("299"))
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def click(key: str) -> None:
        try:
            barrier.wait()
            results.append(request(sub, small, key=key))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=click, args=(k,)) for k in ("a", "a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert PlanChange.objects.count() == 1
    assert len({r.change.id for r in results}) == 1
    assert sum(r.created for r in results) == 1


def test_a_cheaper_plan_can_be_chosen_now_to_start_when_the_binding_ends(plans) -> None:
    small, medium, _ = plans
    sub = SubscriptionFactory(plan=medium, binding_end=date(2027, 1, 10))
    change = request(sub, small, timing=ChangeTiming.AFTER_BINDING).change
    assert change.effective_date == date(2027, 1, 11)
    assert change.to_binding_end == date(2027, 1, 10)


def test_staff_edits_after_a_change_are_what_the_next_bill_runs_charge(plans) -> None:
    # given a change applied today, then a price set by staff afterwards
    small, medium, _ = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None, start_date=date(2025, 1, 1))
    request(sub, small, timing=ChangeTiming.NOW, requested_via="chat")
    sub.refresh_from_db()
    sub.agreed_monthly_price = Decimal("149.00")
    sub.save()
    # when December is billed
    run = bill_run_start(period=date(2026, 12, 1), invoice_date=date(2027, 1, 1))
    bill_run_execute(bill_run_id=run.id)
    # then it charges the subscription as it stands, not the change's price
    assert Invoice.objects.get().lines.get(kind="fee").amount == Decimal("149.00")


def test_an_earlier_change_cannot_be_undone_under_a_later_one(plans) -> None:
    small, medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    first = request(sub, large, key="a", timing=ChangeTiming.NOW, requested_via="chat")
    request(sub, small, key="b", timing=ChangeTiming.NOW, requested_via="chat")
    with pytest.raises(DomainError) as error:
        plan_change_undo(change_id=first.change.id, via="admin")
    assert error.value.code == "later_change_exists"


def test_a_pending_change_is_returned_only_for_the_same_plan_and_price(plans) -> None:
    small, medium, _ = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    request(sub, small, key="list-price")
    with pytest.raises(DomainError) as error:
        request(sub, small, key="offer-price", price=Decimal("99.00"))
    assert error.value.code == "change_pending"


def test_a_change_not_yet_in_effect_can_be_cancelled_after_the_cooling_off_period(plans) -> None:
    # given a cheaper plan chosen to start after a binding period months away
    small, medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=date(2027, 6, 30))
    result = request(sub, small, timing=ChangeTiming.AFTER_BINDING)
    # when the customer changes their mind in February
    with time_machine.travel("2027-02-10 10:00 +01:00", tick=False):
        change = plan_change_undo(undo_token=result.undo_token, via="invoice_page")
        # then it is cancelled, and an upgrade is possible again
        assert change.status == PlanChangeStatus.UNDONE
        assert request(sub, large, key="up", confirmed_by_code=True).created


def test_a_plan_sold_only_with_binding_cannot_be_taken_without_it(plans) -> None:
    _, medium, large = plans
    large.binding_months_options = [24]
    large.save()
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    with pytest.raises(DomainError) as error:
        plan_change_quote(subscription=sub, to_plan=large)
    assert error.value.code == "binding_not_offered"
    assert plan_change_quote(subscription=sub, to_plan=large, binding_months=24).adds_binding


@pytest.mark.parametrize(
    ("options", "offered", "default"),
    [
        ([0, 12, 24], [0, 12, 24], 0),
        ([24, 12], [12, 24], 12),
        ([], [0], 0),  # names none: sold without one
        ([36, 12], [12], 12),  # longer than a consumer may be bound: never offered
        ([36], [], 0),  # nothing a consumer can take: the quote refuses
    ],
)
def test_a_change_is_quoted_without_binding_where_the_plan_allows_else_the_shortest(
    plans, options, offered, default
) -> None:
    _, _, large = plans
    large.binding_months_options = options
    assert binding_months_options(large) == offered
    assert binding_months_default(large) == default


def test_a_plan_sold_only_with_binding_is_quoted_with_its_shortest_by_default(plans) -> None:
    _, medium, large = plans
    large.binding_months_options = [12, 24]
    large.save()
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    quote = plan_change_quote(
        subscription=sub, to_plan=large, binding_months=binding_months_default(large)
    )
    assert quote.to_binding_end == date(2027, 11, 30)
    assert quote.needs_confirmation_code


def test_a_new_binding_period_never_shortens_the_one_running(plans) -> None:
    _, medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=date(2028, 6, 30))
    assert plan_change_quote(subscription=sub, to_plan=large, binding_months=12).to_binding_end == (
        date(2028, 6, 30)
    )
    assert plan_change_quote(subscription=sub, to_plan=large, binding_months=24).to_binding_end == (
        date(2028, 11, 30)
    )


def test_two_tabs_with_the_same_binding_period_make_one_change_and_another_is_refused(
    plans,
) -> None:
    # given a change to Mobil 30 GB with 12 months' binding, pending
    _, medium, large = plans
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    first = request(sub, large, key="tab-1", binding_months=12, confirmed_by_code=True)
    assert first.change.to_binding_end == date(2027, 11, 30)
    # when a second tab confirms the same, it gets the first change
    again = request(sub, large, key="tab-2", binding_months=12, confirmed_by_code=True)
    assert (again.change, again.created) == (first.change, False)
    # and a tab that chose another binding period is told a change is pending
    for key, months in (("tab-3", 24), ("tab-4", 0)):
        with pytest.raises(DomainError) as error:
            request(sub, large, key=key, binding_months=months, confirmed_by_code=True)
        assert error.value.code == "change_pending"
    assert PlanChange.objects.count() == 1
