"""Handing a claim to collection: only when finance staff confirm, never before the policy's
day, never while a hold or dispute covers it; then the claim in the CSV and the API."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from core.errors import DomainError
from dunning.models import (
    ActionKind,
    CaseStage,
    DunningAction,
    DunningCase,
    GrantedBy,
    InstalmentPlan,
)
from dunning.services.collection import case_hand_to_collection, case_handover_preview
from invoices.models import Invoice, InvoiceStatus
from invoices.services.payments import invoice_balance
from tests.api import keyed
from tests.dunning.conftest import make_invoice
from tests.dunning.test_steps import dispute, postpone

pytestmark = pytest.mark.django_db

FINAL_NOTICE = date(2027, 1, 5)
FINAL_DUE = date(2027, 1, 19)
READY = date(2027, 1, 20)
URL = "/api/v1/dunning/collection-claims/"


def run_to(run_on, last: date) -> None:
    for day in (date(2026, 12, 2), date(2026, 12, 6), date(2026, 12, 21), FINAL_NOTICE, READY):
        if day <= last:
            run_on(day)


@pytest.fixture
def staff() -> User:
    return User.objects.create_user("finance", is_staff=True)


@pytest.fixture
def ready(invoice, run_on) -> DunningCase:
    """The invoice's case on the day it may go to collection."""
    run_to(run_on, READY)
    case = DunningCase.objects.get(invoice=invoice)
    assert case.stage == CaseStage.COLLECTION_READY
    return case


def refusal(case: DunningCase, staff: User, today: date) -> str:
    with pytest.raises(DomainError) as refused:
        case_hand_to_collection(case_id=case.id, by=staff, today=today)
    return refused.value.code


def test_a_confirmed_handover_charges_interest_to_the_day_and_tells_the_customer(
    ready, staff, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        action = case_hand_to_collection(case_id=ready.id, by=staff, today=READY)
    ready.refresh_from_db()
    assert (ready.stage, ready.handed_over_by) == (CaseStage.HANDED_OVER, staff)
    assert ready.interest_charged_until == READY
    invoice = ready.invoice
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.COLLECTION
    assert action.amount_asked == invoice_balance(invoice).open
    assert mail.outbox[-1].subject == "Faktura 100001 har lämnats till inkasso"


def test_never_before_the_final_notice(invoice, run_on, staff) -> None:
    run_to(run_on, date(2026, 12, 21))
    case = DunningCase.objects.get(invoice=invoice)
    assert refusal(case, staff, date(2026, 12, 30)) == "final_notice_not_sent"


def test_never_before_the_policys_day(invoice, run_on, staff) -> None:
    run_to(run_on, FINAL_NOTICE)
    case = DunningCase.objects.get(invoice=invoice)
    assert refusal(case, staff, FINAL_DUE) == "collection_too_early"
    preview = case_handover_preview(case_id=case.id, today=FINAL_DUE)
    assert (preview.allowed, preview.ready_on) == (False, READY)


def test_never_while_a_postponement_runs(ready, staff) -> None:
    postpone(ready.invoice, to=date(2027, 2, 15))
    # (the postponement also moves the day: it counts from the later due date)
    assert refusal(ready, staff, date(2027, 2, 1)) == "collection_too_early"
    assert refusal(ready, staff, date(2027, 2, 15)) == "collection_too_early"


def test_never_while_an_instalment_plan_runs(ready, staff) -> None:
    InstalmentPlan.objects.create(
        invoice=ready.invoice,
        parts=2,
        amount=Decimal("300.00"),
        granted_by=GrantedBy.AGENT,
        granted_at=timezone.now(),
    )
    assert refusal(ready, staff, READY) == "dunning_on_hold"


def test_never_while_a_line_is_disputed(ready, staff) -> None:
    dispute(ready.invoice, "50.00")
    assert refusal(ready, staff, READY) == "dispute_open"


def test_a_claim_handed_over_once_is_refused_the_second_time(ready, staff) -> None:
    case_hand_to_collection(case_id=ready.id, by=staff, today=READY)
    assert refusal(ready, staff, READY) == "already_handed_over"
    assert DunningAction.objects.filter(kind=ActionKind.COLLECTION).count() == 1


def test_the_case_is_not_ready_while_a_dispute_is_open(invoice, run_on) -> None:
    run_to(run_on, FINAL_NOTICE)
    dispute(invoice, "10.00")
    run_on(READY)
    assert DunningCase.objects.get(invoice=invoice).stage == CaseStage.FINAL_NOTICE


# --- the export ------------------------------------------------------------------------------


@pytest.fixture
def handed_over(ready, staff) -> DunningCase:
    case_hand_to_collection(case_id=ready.id, by=staff, today=READY)
    ready.refresh_from_db()
    return ready


def expected_claim(invoice: Invoice) -> dict[str, str]:
    # 299 kr capital, the 60 kr fee, interest 2 Dec–20 Jan in three charges: 1.64 + 1.23 + 1.23
    return {"capital": "299.00", "fees": "60.00", "interest": "4.10", "total": "363.10"}


def test_the_api_lists_the_claims_with_what_is_owed(handed_over) -> None:
    # given the collection agency's integration, by its key
    answer = keyed("read").get(URL)
    assert answer.status_code == 200
    (claim,) = answer.json()["results"]
    invoice = handed_over.invoice
    assert {key: claim[key] for key in ("capital", "fees", "interest", "total")} == (
        expected_claim(invoice)
    )
    assert claim["invoice_number"] == invoice.display_number
    assert claim["customer_number"] == invoice.customer.customer_number
    assert (claim["interest_rate"], claim["interest_from"]) == ("10.00", "2027-01-21")


def test_finance_staff_may_read_the_api_with_the_permission_to_view_cases(handed_over) -> None:
    user = User.objects.create_user("finance-reader", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_dunningcase"))
    api = APIClient()
    api.force_login(user)
    assert len(api.get(URL).json()["results"]) == 1


def test_the_api_needs_the_read_scope_or_the_permission_to_view_cases(handed_over) -> None:
    user = User.objects.create_user("someone", is_staff=True)
    api = APIClient()
    api.force_login(user)
    assert api.get(URL).status_code == 403
    assert keyed("payments:write").get(URL).status_code == 403
    assert APIClient().get(URL).status_code in (401, 403)


def test_the_api_lists_no_claim_before_a_handover(ready) -> None:
    api = APIClient()
    api.force_login(User.objects.create_superuser("boss"))
    assert api.get(URL).json()["results"] == []


def test_the_api_pages_by_cursor(ready, staff, django_assert_num_queries) -> None:
    # given two claims with collection
    other = make_invoice(agreed_on=date(2025, 1, 1))
    run_to_ready_again(other)
    for case in DunningCase.objects.filter(stage=CaseStage.COLLECTION_READY):
        case_hand_to_collection(case_id=case.id, by=staff, today=READY)
    api = APIClient()
    api.force_login(User.objects.create_superuser("boss"))
    # the session and its account, then the page, whatever its size
    with django_assert_num_queries(3):
        first = api.get(URL, {"limit": 1}).json()
    assert len(first["results"]) == 1
    second = api.get(first["next"]).json()
    assert [second["results"][0]["case_id"]] != [first["results"][0]["case_id"]]
    assert second["next"] is None


def run_to_ready_again(invoice: Invoice) -> None:
    """(The fixture's engine already ran; a second invoice of the same month follows the
    same days, run again from the start: nothing is sent twice for the first.)"""
    from dunning.services.run import dunning_run

    for day in (date(2026, 12, 2), date(2026, 12, 6), date(2026, 12, 21), FINAL_NOTICE, READY):
        dunning_run(today=day)


def test_the_csv_has_one_row_per_claim_with_the_same_figures(
    handed_over, admin_client: Client
) -> None:
    answer = admin_client.get("/admin/dunning/dunningcase/collection.csv")
    assert answer.status_code == 200
    assert answer["Content-Disposition"].startswith('attachment; filename="collection-claims-')
    rows = list(csv.DictReader(io.StringIO(answer.content.decode())))
    assert len(rows) == 1
    assert {key: rows[0][key] for key in ("capital", "fees", "interest", "total")} == (
        expected_claim(handed_over.invoice)
    )
    assert rows[0]["name"] == handed_over.invoice.customer.name


def test_the_csv_needs_the_permission_to_view_cases(handed_over, client: Client) -> None:
    user = User.objects.create_user("clerk", password="pw-for-tests-1", is_staff=True)
    client.force_login(user)
    assert client.get("/admin/dunning/dunningcase/collection.csv").status_code == 403


def test_the_schema_describes_the_export(client: Client) -> None:
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert URL.encode() in schema.content
    assert b"CollectionClaim" in schema.content


def test_a_name_a_spreadsheet_would_run_as_a_formula_is_written_as_text(
    handed_over, admin_client: Client
) -> None:
    customer = handed_over.invoice.customer
    customer.name = '=HYPERLINK("http://evil.example")'
    customer.save(update_fields=["name"])
    answer = admin_client.get("/admin/dunning/dunningcase/collection.csv")
    (row,) = csv.DictReader(io.StringIO(answer.content.decode()))
    assert row["name"] == "'" + customer.name
    assert row["phone"].startswith("'+46")  # (a phone number in E.164 too)


def test_the_api_filters_the_claims_by_customer_and_the_days_of_handover(handed_over) -> None:
    # the claim was handed over late on 2 Feb, Swedish time (23:30, 22:30 UTC)
    DunningCase.objects.filter(id=handed_over.id).update(
        handed_over_at=datetime(2027, 2, 2, 22, 30, tzinfo=UTC)
    )
    api = keyed("read")

    def cases(**query: str) -> list[int]:
        answer = api.get(URL, query)
        assert answer.status_code == 200, answer.json()
        return [claim["case_id"] for claim in answer.json()["results"]]

    customer = handed_over.invoice.customer.customer_number
    assert cases(customer=customer) == [handed_over.id]
    assert cases(customer="K-none") == []
    assert cases(handed_over_from="2027-02-02", handed_over_to="2027-02-02") == [handed_over.id]
    assert cases(handed_over_to="2027-02-01") == []
    assert cases(handed_over_from="2027-02-03") == []
    wrong = api.get(URL, {"handed_over_from": "2027-02-03", "handed_over_to": "2027-02-01"})
    assert (wrong.status_code, set(wrong.json()["fields"])) == (400, {"handed_over_to"})
    assert api.get(URL, {"handed_over_from": "2027-13-01"}).status_code == 400
