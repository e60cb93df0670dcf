"""The invoices API: listed by cursor and filtered, read with lines and balance, credited,
sent again, fetched as PDF; who may do what."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from invoices.models import Invoice, InvoiceStatus, OutboundMessage
from invoices.services.payments import bgmax_import
from tests.api import keyed
from tests.billing.bgmax_files import Paid, bgmax_file
from tests.invoices.test_payments import deposit_of, invoices, ore  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader() -> APIClient:
    return keyed("read")


@pytest.fixture
def writer() -> APIClient:
    return keyed("read", "billing:write")


def test_the_list_pages_by_cursor_newest_first_with_what_is_open(
    reader: APIClient,
    invoices: list[Invoice],  # noqa: F811
    django_assert_max_num_queries,
) -> None:
    first, second, _third = invoices
    bgmax_import(data=bgmax_file(deposit_of(Paid(ore("100.00"), second.ocr))), name="a.txt")
    with django_assert_max_num_queries(3):  # the key, its last use, one page of invoices
        page = reader.get("/api/v1/invoices/?limit=2").json()
    ids = [row["id"] for row in page["results"]]
    assert ids == sorted((i.id for i in invoices), reverse=True)[:2]
    rest = reader.get(page["next"]).json()
    assert [row["id"] for row in rest["results"]] == sorted(i.id for i in invoices)[:1]
    assert rest["next"] is None
    by_id = {row["id"]: row for row in page["results"] + rest["results"]}
    assert by_id[second.id]["open_amount"] == str(second.total - Decimal("100.00"))
    assert by_id[second.id]["status"] == "partly_paid"
    assert by_id[first.id]["open_amount"] == str(first.total)
    assert by_id[first.id]["customer"] == first.customer.customer_number


def test_the_list_filters_by_customer_status_and_period(
    reader: APIClient,
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first = invoices[0]
    mine = reader.get(f"/api/v1/invoices/?customer={first.customer.customer_number}").json()
    assert [row["id"] for row in mine["results"]] == [first.id]
    assert reader.get("/api/v1/invoices/?status=paid").json()["results"] == []
    october = reader.get("/api/v1/invoices/?period=2026-10").json()["results"]
    assert len(october) == 3
    assert reader.get("/api/v1/invoices/?period=2026-11").json()["results"] == []
    wrong = reader.get("/api/v1/invoices/?period=2026-13&status=lost")
    assert wrong.status_code == 400
    assert set(wrong.json()["fields"]) == {"period", "status"}


def test_one_invoice_with_its_lines_in_the_language_asked(
    reader: APIClient,
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first = invoices[0]
    body = reader.get(f"/api/v1/invoices/{first.id}/?lang=en").json()
    assert body["number"] == first.display_number
    assert body["total"] == str(first.total)
    assert sum(Decimal(line["amount"]) for line in body["lines"]) == first.total
    assert body["lines"][0]["title"] == first.lines.first().text("en")["title"]
    assert (body["payments"], body["credit_notes"], body["charges"]) == ([], [], [])
    missing = reader.get("/api/v1/invoices/999999/")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


def test_an_invoice_is_credited_in_full_and_the_note_answered(
    writer: APIClient,
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first = invoices[0]
    made = writer.post(
        f"/api/v1/invoices/{first.id}/credit/", {"reason": "Double billed"}, format="json"
    )
    assert made.status_code == 201
    assert made.json()["kind"] == "credit_note"
    assert made.json()["total"] == str(-first.total)
    assert made.json()["credits"] == first.id
    first.refresh_from_db()
    assert first.status == InvoiceStatus.CREDITED
    again = writer.post(f"/api/v1/invoices/{first.id}/credit/", {"reason": "Again"}, format="json")
    assert (again.status_code, again.json()["code"]) == (400, "nothing_to_credit")
    assert writer.post(f"/api/v1/invoices/{first.id}/credit/", {}, format="json").json()[
        "fields"
    ] == {"reason": ["This field is required."]}


def test_a_new_link_is_sent_by_the_customers_channels(
    writer: APIClient,
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first = invoices[0]
    before = OutboundMessage.objects.filter(invoice=first).count()
    answer = writer.post(f"/api/v1/invoices/{first.id}/resend/", {}, format="json")
    assert answer.status_code == 200
    assert answer.json()["channels"] == ["email"]
    assert OutboundMessage.objects.filter(invoice=first).count() == before + 1


def test_the_pdf_is_answered_as_a_pdf(
    reader: APIClient,
    invoices: list[Invoice],  # noqa: F811
) -> None:
    answer = reader.get(f"/api/v1/invoices/{invoices[0].id}/pdf/")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/pdf"
    assert b"".join(answer.streaming_content).startswith(b"%PDF")


def test_reading_does_not_let_a_key_credit_or_resend(
    reader: APIClient,
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first = invoices[0]
    credit = reader.post(f"/api/v1/invoices/{first.id}/credit/", {"reason": "x"}, format="json")
    resend = reader.post(f"/api/v1/invoices/{first.id}/resend/", {}, format="json")
    assert (credit.status_code, resend.status_code) == (403, 403)
    assert keyed("usage:write").get("/api/v1/invoices/").status_code == 403
    assert APIClient().get("/api/v1/invoices/").status_code in {401, 403}
    first.refresh_from_db()
    assert first.status == InvoiceStatus.ISSUED


def test_staff_read_with_the_view_permission_and_credit_with_the_change_permission(
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first = invoices[0]
    clerk = User.objects.create_user("clerk", is_staff=True)
    api = APIClient()
    api.force_authenticate(clerk)
    assert api.get("/api/v1/invoices/").status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="view_invoice"))
    clerk = User.objects.get(id=clerk.id)  # (permissions are cached on the instance)
    api.force_authenticate(clerk)
    assert api.get("/api/v1/invoices/").status_code == 200
    assert (
        api.post(f"/api/v1/invoices/{first.id}/credit/", {"reason": "x"}, format="json").status_code
        == 403
    )


def test_answers_are_english_unless_the_caller_asks_for_swedish(
    writer: APIClient,
    invoices: list[Invoice],  # noqa: F811
) -> None:
    url = f"/api/v1/invoices/{invoices[0].id}/credit/"
    english = writer.post(url, {}, format="json").json()["fields"]["reason"]
    swedish = writer.post(url, {}, format="json", HTTP_ACCEPT_LANGUAGE="sv").json()
    assert english == ["This field is required."]
    assert swedish["fields"]["reason"] == ["Det här fältet är obligatoriskt."]
