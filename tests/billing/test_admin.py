"""The finance back office: list views answer, and edits leave a history."""

from datetime import date
from decimal import Decimal

import pytest

from billing.models import BillRun, BillRunStatus, SubscriptionEvent
from invoices.models import Invoice
from tests.factories import PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/admin/billing/customer/",
        "/admin/billing/plan/",
        "/admin/billing/subscription/",
        "/admin/billing/usagerecord/",
        "/admin/billing/billrun/",
        "/admin/invoices/invoice/",
        "/admin/invoices/outboundmessage/",
        "/admin/billing/customer/?q=Kund",
    ],
)
def test_list_views_answer(admin_client, path: str) -> None:
    SubscriptionFactory()
    assert admin_client.get(path).status_code == 200


def test_a_plan_change_in_the_admin_is_recorded_in_the_history(admin_client) -> None:
    sub = SubscriptionFactory()
    bigger = PlanFactory(code="mobil-30", name="Mobil 30 GB", monthly_fee=Decimal("399"))
    response = admin_client.post(
        f"/admin/billing/subscription/{sub.id}/change/",
        {
            "customer": sub.customer_id,
            "plan": bigger.id,
            "identifier": sub.identifier,
            "label": "",
            "agreed_monthly_price": "399.00",
            "start_date": "2025-01-01",
            "end_date": "",
            "binding_end": "2026-12-31",
            "notice_period_months": 1,
            "status": "active",
            **{
                f"{prefix}-{k}": v
                for prefix in ("discounts", "one_off_charges", "events")
                for k, v in {"TOTAL_FORMS": 0, "INITIAL_FORMS": 0}.items()
            },
        },
    )
    assert response.status_code == 302, response.content[:2000]
    kinds = set(SubscriptionEvent.objects.filter(subscription=sub).values_list("kind", flat=True))
    assert kinds == {"plan_changed", "price_changed"}
    event = SubscriptionEvent.objects.get(subscription=sub, kind="plan_changed")
    assert event.via == "admin:admin"
    assert event.details["to"] == bigger.id


def test_the_bill_run_admin_action_issues_the_run(admin_client) -> None:
    SubscriptionFactory.create_batch(2)
    run = BillRun.objects.create(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    response = admin_client.post(
        "/admin/billing/billrun/",
        {
            "action": "run_selected",
            "_selected_action": [run.id],
        },
        follow=True,
    )
    run.refresh_from_db()
    assert run.status == BillRunStatus.COMPLETED
    assert Invoice.objects.count() == 2
    assert "2/2 invoices issued" in response.content.decode()


def test_crediting_from_the_admin_issues_a_credit_note(admin_client) -> None:
    SubscriptionFactory()
    run = BillRun.objects.create(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    admin_client.post(
        "/admin/billing/billrun/", {"action": "run_selected", "_selected_action": [run.id]}
    )
    invoice = Invoice.objects.get()
    admin_client.post(
        "/admin/invoices/invoice/",
        {
            "action": "credit_in_full",
            "_selected_action": [invoice.id],
        },
    )
    invoice.refresh_from_db()
    assert invoice.status == "credited"
    assert invoice.credit_notes.get().total == -invoice.total
