"""Bill runs from the API and the admin: started once, sent to the workers, followed by their
progress (a bar, counts, rate, time left)."""

from datetime import date

import pytest
from django.test import Client

from billing.models import BillRun
from invoices.models import Invoice
from invoices.services.bill_run import bill_run_start
from invoices.services.bill_run_workers import bill_run_dispatch
from tests.api import keyed
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_the_api_starts_a_run_once_and_shows_its_progress(
    django_capture_on_commit_callbacks,
) -> None:
    SubscriptionFactory.create_batch(3)
    erp = keyed("read", "billing:write")
    body = {"period": "2026-10", "invoice_date": "2026-11-01"}
    with django_capture_on_commit_callbacks(execute=True):
        started = erp.post("/api/v1/bill-runs/", body, format="json")
    assert started.status_code == 202
    run = started.json()
    assert (run["period"], run["billing_group"], run["customers_total"]) == (
        "2026-10-01",
        "default",
        3,
    )
    again = erp.post("/api/v1/bill-runs/", body, format="json")
    assert (again.status_code, again.json()["id"]) == (200, run["id"])
    assert BillRun.objects.count() == 1
    shown = erp.get(f"/api/v1/bill-runs/{run['id']}/").json()
    assert (shown["status"], shown["invoices_issued"], shown["progress"]["percent"]) == (
        "completed",
        3,
        100,
    )
    assert shown["progress"]["chunks_done"] == shown["progress"]["chunks_total"] == 1
    assert erp.get("/api/v1/bill-runs/").json()["results"][0]["id"] == run["id"]
    assert Invoice.objects.count() == 3


def test_the_api_lists_the_runs_by_period_group_and_status() -> None:
    october = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    north = bill_run_start(
        period=date(2026, 10, 1), billing_group="north", invoice_date=date(2026, 11, 1)
    )
    september = bill_run_start(period=date(2026, 9, 1), invoice_date=date(2026, 10, 1))
    BillRun.objects.filter(id=september.id).update(status="completed")
    reader = keyed("read")

    def listed(query: str) -> list[int]:
        answer = reader.get(f"/api/v1/bill-runs/?{query}")
        assert answer.status_code == 200, answer.json()
        return [run["id"] for run in answer.json()["results"]]

    assert listed("period=2026-10") == [north.id, october.id]
    assert listed("period=2026-10&billing_group=north") == [north.id]
    assert listed("status=completed") == [september.id]
    for query in ("period=2026-13", "status=done"):
        assert reader.get(f"/api/v1/bill-runs/?{query}").status_code == 400


def test_the_api_refuses_a_month_not_ended_and_a_key_that_may_only_read() -> None:
    early = keyed("billing:write").post(
        "/api/v1/bill-runs/", {"period": "2026-11", "invoice_date": "2026-11-20"}, format="json"
    )
    assert (early.status_code, early.json()["code"]) == (400, "period_not_ended")
    wrong = keyed("billing:write").post("/api/v1/bill-runs/", {"period": "2026-13"}, format="json")
    assert "period" in wrong.json()["fields"]
    reader = keyed("read")
    assert (
        reader.post("/api/v1/bill-runs/", {"period": "2026-10"}, format="json").status_code == 403
    )
    assert reader.get("/api/v1/bill-runs/").status_code == 200
    assert reader.get("/api/v1/bill-runs/999/").status_code == 404
    assert not BillRun.objects.exists()


def test_the_admin_shows_a_running_runs_progress_and_polls_it(admin_client: Client) -> None:
    SubscriptionFactory.create_batch(4)
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    bill_run_dispatch(bill_run_id=run.id, customers_per_task=2)  # (the tasks wait for commit)
    page = admin_client.get(f"/admin/billing/billrun/{run.id}/change/").content.decode()
    assert '<progress max="100" value="0"' in page
    assert 'data-status="running"' in page
    assert '0</span> av <span data-field="total">4</span> fakturor' in page
    polled = admin_client.get(f"/admin/billing/billrun/{run.id}/progress.json").json()
    assert (polled["status"], polled["done"], polled["total"], polled["chunks"]) == (
        "running",
        0,
        4,
        "0/2",
    )


def test_with_workers_the_admins_action_sends_the_run_to_them(
    admin_client: Client, settings, monkeypatch
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent: list[int] = []
    monkeypatch.setattr("invoices.services.bill_run_workers._enqueue", sent.extend)
    SubscriptionFactory.create_batch(2)
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    page = admin_client.post(
        "/admin/billing/billrun/",
        {"action": "run_selected", "_selected_action": [run.id]},
        follow=True,
    ).content.decode()
    assert "1 chunk(s) sent to the workers" in page
    run.refresh_from_db()
    assert run.status == "running"
    assert run.chunks.count() == 1
    # sent again: the pending chunk goes to the workers again, no new chunk is made
    admin_client.post(
        "/admin/billing/billrun/", {"action": "run_selected", "_selected_action": [run.id]}
    )
    assert run.chunks.count() == 1


def test_progress_needs_the_view_permission(client: Client) -> None:
    from django.contrib.auth.models import User

    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    client.force_login(User.objects.create_user("clerk", is_staff=True))
    assert client.get(f"/admin/billing/billrun/{run.id}/progress.json").status_code == 403
