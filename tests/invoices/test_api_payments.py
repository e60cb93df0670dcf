"""The payments API: BgMax files uploaded by an integration, booked as the admin books them;
who may call it; and the schema and docs it is described by."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from core.api_keys import api_key_create
from invoices.models import BgMaxImport, Invoice, InvoiceStatus, Payment
from tests.billing.bgmax_files import Paid, bgmax_file
from tests.invoices.test_payments import deposit_of, invoices, ore  # noqa: F401

pytestmark = pytest.mark.django_db
URL = "/api/v1/payments/bgmax-imports/"


@pytest.fixture
def finance() -> APIClient:
    """The bank integration's client, by its key with the payments scope."""
    made = api_key_create(name="Bank integration", scopes=["payments:write"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {made.secret}")
    return api


def post_file(api: APIClient, data: bytes, name: str = "bgmax.txt"):
    return api.post(URL, {"file": SimpleUploadedFile(name, data)}, format="multipart")


def test_a_file_is_booked_and_the_same_file_again_books_nothing(
    finance: APIClient,
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first, _second, _third = invoices
    data = bgmax_file(
        deposit_of(Paid(ore(first.total), first.ocr), Paid(100, "1234567897", serial="9"))
    )
    answer = post_file(finance, data)
    assert answer.status_code == 201
    body = answer.json()
    assert (body["new"], body["payments"], body["booked"], body["unmatched"]) == (True, 2, 1, 1)
    first.refresh_from_db()
    assert first.status == InvoiceStatus.PAID
    # again, under another name: the first upload's figures, nothing booked twice
    again = post_file(finance, data, "copy.txt")
    assert again.status_code == 200
    assert (again.json()["new"], again.json()["id"]) == (False, body["id"])
    assert Payment.objects.count() == 2


def test_a_file_that_does_not_add_up_is_refused_naming_the_record(
    finance: APIClient,
    invoices: list[Invoice],  # noqa: F811
) -> None:
    text = bgmax_file(deposit_of(Paid(ore("10.00"), invoices[0].ocr))).decode("latin-1")
    broken = text.replace("000000000001000", "000000000001001", 1).encode("latin-1")
    answer = post_file(finance, broken)
    assert answer.status_code == 400
    assert answer.json()["code"] == "bgmax_invalid"
    assert answer.json()["message"].startswith("Record ")
    assert not BgMaxImport.objects.exists()
    assert not Payment.objects.exists()


def test_a_request_without_a_file_names_the_field(finance: APIClient) -> None:
    answer = finance.post(URL, {}, format="multipart")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    assert "file" in answer.json()["fields"]


def test_the_upload_records_the_keys_account_as_who_uploaded(
    finance: APIClient,
    invoices: list[Invoice],  # noqa: F811
) -> None:
    body = post_file(finance, bgmax_file(deposit_of(Paid(ore("10.00"), invoices[0].ocr)))).json()
    uploaded_by = BgMaxImport.objects.get(id=body["id"]).uploaded_by
    assert uploaded_by is not None
    assert uploaded_by.api_key.name == "Bank integration"


def test_a_key_without_the_payments_scope_may_not_upload(invoices: list[Invoice]) -> None:  # noqa: F811
    reader = api_key_create(name="Reporting", scopes=["read", "usage:write"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {reader.secret}")
    answer = post_file(api, bgmax_file(deposit_of(Paid(ore("10.00"), invoices[0].ocr))))
    assert answer.status_code == 403
    assert answer.json()["code"] == "permission_denied"
    assert not Payment.objects.exists()


def test_staff_in_an_admin_session_upload_with_the_permission_only(
    invoices: list[Invoice],  # noqa: F811
) -> None:
    data = bgmax_file(deposit_of(Paid(ore("10.00"), invoices[0].ocr)))
    anonymous = post_file(APIClient(), data)
    assert anonymous.status_code in {401, 403}
    finance_staff = User.objects.create_user("finance", is_staff=True)
    finance_staff.user_permissions.add(Permission.objects.get(codename="add_bgmaximport"))
    api = APIClient()
    api.force_authenticate(finance_staff)
    assert post_file(api, data).status_code == 201
    Payment.objects.all().delete()
    BgMaxImport.objects.all().delete()
    clerk = User.objects.create_user("clerk", is_staff=True)  # staff, without the permission
    api.force_authenticate(clerk)
    assert post_file(api, data).status_code == 403
    customer = User.objects.create_user("someone")  # not staff
    customer.user_permissions.add(Permission.objects.get(codename="add_bgmaximport"))
    api.force_authenticate(customer)
    assert post_file(api, data).status_code == 403
    assert not Payment.objects.exists()
    assert Decimal(0) == sum((p.amount for p in Payment.objects.all()), Decimal(0))


def test_the_schema_and_its_docs_are_served_without_a_cdn(client) -> None:
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert URL.encode() in schema.content
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs
    assert "cdn" not in docs.lower()
