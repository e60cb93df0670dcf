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


def _issued_invoice(admin_client) -> Invoice:
    sub = SubscriptionFactory()
    SubscriptionFactory(customer=sub.customer, agreed_monthly_price=Decimal("199.00"))
    run = BillRun.objects.create(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    admin_client.post(
        "/admin/billing/billrun/", {"action": "run_selected", "_selected_action": [run.id]}
    )
    return Invoice.objects.get()


def test_crediting_a_line_from_the_admin_asks_for_confirmation_first(admin_client) -> None:
    # given an invoice with two lines
    invoice = _issued_invoice(admin_client)
    line = invoice.lines.get(amount=Decimal("199.00"))
    url = f"/admin/invoices/invoice/{invoice.id}/credit/"
    change_page = admin_client.get(f"/admin/invoices/invoice/{invoice.id}/change/")
    assert f'href="{url}"' in change_page.content.decode()
    # when staff choose one line and a reason
    response = admin_client.post(url, {"lines": [line.id], "reason": "Dubbeldebiterad"})
    # then they see what will be credited, and nothing is issued yet
    assert response.context["confirming"] is True
    assert response.context["credit_total"] == Decimal("199.00")
    assert [chosen.id for chosen in response.context["chosen"]] == [line.id]
    assert not invoice.credit_notes.exists()
    # when they confirm
    response = admin_client.post(
        url, {"lines": [line.id], "reason": "Dubbeldebiterad", "confirmed": "True"}
    )
    # then one credit note credits that line, and they land on it
    note = invoice.credit_notes.get()
    assert response.status_code == 302
    assert response["Location"].endswith(f"/admin/invoices/invoice/{note.id}/change/")
    assert note.total == Decimal("-199.00")
    assert note.credit_reason == "Dubbeldebiterad"
    # and the credited line is no longer offered
    assert f'value="{line.id}"' not in admin_client.get(url).content.decode()


def test_a_credit_needs_a_line_and_a_reason(admin_client) -> None:
    invoice = _issued_invoice(admin_client)
    response = admin_client.post(
        f"/admin/invoices/invoice/{invoice.id}/credit/", {"confirmed": "True"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors.keys() == {"lines", "reason"}
    assert not invoice.credit_notes.exists()


def test_staff_without_change_permission_cannot_credit(client, django_user_model) -> None:
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    client.force_login(viewer)
    SubscriptionFactory()
    run = BillRun.objects.create(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    from invoices.services.bill_run import bill_run_execute

    bill_run_execute(bill_run_id=run.id)
    invoice = Invoice.objects.get()
    response = client.post(
        f"/admin/invoices/invoice/{invoice.id}/credit/",
        {"lines": [invoice.lines.first().id], "reason": "x", "confirmed": "True"},
    )
    assert response.status_code == 403
    assert not invoice.credit_notes.exists()


def test_a_bill_run_is_added_for_a_whole_month_that_has_ended(admin_client) -> None:
    # a day in the month stands for the month
    response = admin_client.post(
        "/admin/billing/billrun/add/",
        {"period": "2026-10-15", "billing_group": "default", "invoice_date": "2026-11-01"},
    )
    assert response.status_code == 302
    assert BillRun.objects.get().period == date(2026, 10, 1)
    # the same month again is refused with a message, not an error page
    again = admin_client.post(
        "/admin/billing/billrun/add/",
        {"period": "2026-10-03", "billing_group": "default", "invoice_date": "2026-11-01"},
    )
    assert again.status_code == 200
    assert again.context["adminform"].form.errors
    assert BillRun.objects.count() == 1


def test_a_month_in_progress_cannot_be_added(admin_client) -> None:
    response = admin_client.post(
        "/admin/billing/billrun/add/",
        {"period": "2026-11-01", "billing_group": "default", "invoice_date": "2026-11-22"},
    )
    assert response.status_code == 200
    assert "2026-12-01" in str(response.context["adminform"].form.errors)
    assert not BillRun.objects.exists()


def test_a_failing_bill_run_is_reported_to_staff(admin_client, monkeypatch) -> None:
    SubscriptionFactory()
    run = BillRun.objects.create(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))

    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("database went away")

    monkeypatch.setattr("invoices.services.bill_run._issue_chunk", broken)
    response = admin_client.post(
        "/admin/billing/billrun/",
        {"action": "run_selected", "_selected_action": [run.id]},
        follow=True,
    )
    assert response.status_code == 200
    assert "database went away" in response.content.decode()
    run.refresh_from_db()
    assert run.status == BillRunStatus.FAILED


def test_subscriptions_are_read_only_on_the_customer_page(admin_client) -> None:
    sub = SubscriptionFactory()
    page = admin_client.get(f"/admin/billing/customer/{sub.customer_id}/change/")
    assert 'name="subscriptions-0-agreed_monthly_price"' not in page.content.decode()
    assert f"/admin/billing/subscription/{sub.id}/change/" in page.content.decode()


def test_links_can_be_stopped_and_resent_from_the_admin(admin_client) -> None:
    from invoices.selectors import invoice_get_by_token
    from invoices.services.links import invoice_link_create

    invoice = _issued_invoice(admin_client)
    token = invoice_link_create(invoice=invoice)
    admin_client.post(
        "/admin/invoices/invoice/", {"action": "revoke_links", "_selected_action": [invoice.id]}
    )
    assert invoice_get_by_token(token) is None
    admin_client.post(
        "/admin/invoices/invoice/",
        {"action": "resend_link_revoking_old", "_selected_action": [invoice.id]},
    )
    assert invoice.links.filter(revoked_at__isnull=True, reason="resent").count() == 1


def test_staff_follow_plan_changes_and_can_undo_within_cooling_off(admin_client) -> None:
    from billing.models import PlanChange, PlanChangeStatus
    from billing.services import plan_change_request

    sub = SubscriptionFactory(binding_end=None)
    bigger = PlanFactory(code="mobil-30", name="Mobil 30 GB", monthly_fee=Decimal("399"))
    result = plan_change_request(
        subscription_id=sub.id, to_plan_id=bigger.id, requested_via="chat", idempotency_key="x"
    )
    assert admin_client.get("/admin/billing/planchange/").status_code == 200
    admin_client.post(
        "/admin/billing/planchange/",
        {"action": "undo_selected", "_selected_action": [result.change.id]},
    )
    assert PlanChange.objects.get().status == PlanChangeStatus.UNDONE
