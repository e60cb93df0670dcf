"""The usage API: a JSON batch (``/api/v1/usage/records/``) and a CSV file
(``/api/v1/usage/files/``) from a source system's key or a staff session; what each answers,
what it refuses, who may call it, and how the schema describes it."""

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from billing.models import UsageRecord
from core.api_keys import api_key_create
from tests.billing.test_usage_ingest import csv_file, record
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db
RECORDS = "/api/v1/usage/records/"
FILES = "/api/v1/usage/files/"


@pytest.fixture(autouse=True)
def subscription() -> None:
    SubscriptionFactory(identifier="46701234567", start_date=date(2025, 1, 1))


def client_with_key(*scopes: str) -> APIClient:
    made = api_key_create(name="Mediation " + "-".join(scopes), scopes=list(scopes))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {made.secret}")
    return api


@pytest.fixture
def mediation() -> APIClient:
    """The mediation system's client, by its key with the usage scope."""
    return client_with_key("usage:write")


def post_batch(api: APIClient, body: Any, **headers: str):
    return api.post(RECORDS, json.dumps(body), content_type="application/json", **headers)


def post_file(api: APIClient, data: bytes, **fields: str):
    return api.post(
        FILES, {"file": SimpleUploadedFile("usage.csv", data), **fields}, format="multipart"
    )


def three_records() -> list[dict[str, Any]]:
    return [
        record(source_id="a"),
        record(source_id="b", quantity="-1"),
        record(source_id="a", quantity="2"),
    ]


# --- The JSON batch --------------------------------------------------------------------------


def test_a_batch_is_stored_and_answered_with_counts_and_each_rejection(mediation) -> None:
    answer = post_batch(mediation, {"records": three_records()})
    assert answer.status_code == 200
    assert answer.json() == {
        "received": 3,
        "stored": 1,
        "duplicates": 1,
        "rejected": 1,
        "rejections": [
            {
                "index": 1,
                "source_id": "b",
                "field": "quantity",
                "code": "quantity_negative",
                "message": "quantity may not be negative.",
            }
        ],
    }
    assert UsageRecord.objects.get().quantity == Decimal("12.5")


def test_quantities_sent_as_json_numbers_are_read_exactly_never_as_floats(mediation) -> None:
    body = (
        '{"records": ['
        '{"source_id": "a", "identifier": "46701234567", "kind": "data",'
        ' "quantity": 99999999999.999, "occurred_at": "2026-11-03T10:00:00Z"},'
        '{"source_id": "b", "identifier": "46701234567", "kind": "sms",'
        ' "quantity": 1e3, "occurred_at": "2026-11-03T10:00:00Z"}]}'
    )
    answer = mediation.post(RECORDS, body, content_type="application/json")
    assert answer.json()["stored"] == 2
    stored = dict(UsageRecord.objects.values_list("source_id", "quantity"))
    assert stored == {"a": Decimal("99999999999.999"), "b": Decimal("1000")}


def test_all_or_nothing_answers_400_with_the_rejections_and_stores_nothing(mediation) -> None:
    answer = post_batch(mediation, {"records": three_records(), "all_or_nothing": True})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "usage_rejected"
    assert body["message"] == "1 record rejected, so nothing was stored (all_or_nothing)."
    assert (body["received"], body["stored"], body["rejected"]) == (3, 0, 1)
    assert body["rejections"][0]["index"] == 1
    assert not UsageRecord.objects.exists()


def test_a_batch_over_the_limit_is_refused_naming_the_limit(mediation) -> None:
    answer = post_batch(mediation, {"records": [record(source_id=str(n)) for n in range(10_001)]})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "invalid"
    assert "At most 10,000 records per request (10,001 sent)" in body["fields"]["records"][0]
    assert not UsageRecord.objects.exists()


def test_a_batch_of_exactly_the_limit_is_taken(mediation) -> None:
    answer = post_batch(mediation, {"records": [record(source_id=str(n)) for n in range(10_000)]})
    assert (answer.status_code, answer.json()["stored"]) == (200, 10_000)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "records"),
        ({"records": {"source_id": "a"}}, "records"),
        ({"records": [], "all_or_nothing": "yes"}, "all_or_nothing"),
        ({"records": [], "dry_run": True}, "dry_run"),
        ([record()], "records"),
    ],
)
def test_a_malformed_batch_is_refused_naming_the_field(mediation, body: Any, field: str) -> None:
    answer = post_batch(mediation, body)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    assert field in answer.json()["fields"]


def test_a_body_that_is_not_json_is_refused(mediation) -> None:
    for body in ('{"records": [', '{"records": [], "x": NaN}'):
        answer = mediation.post(RECORDS, body, content_type="application/json")
        assert (answer.status_code, answer.json()["code"]) == (400, "invalid")
        assert "JSON parse error" in answer.json()["fields"]["detail"]


def test_the_same_idempotency_key_answers_the_first_answer_again(mediation) -> None:
    first = post_batch(mediation, {"records": three_records()}, HTTP_IDEMPOTENCY_KEY="batch-1")
    again = post_batch(mediation, {"records": three_records()}, HTTP_IDEMPOTENCY_KEY="batch-1")
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert UsageRecord.objects.count() == 1


# --- The CSV file ----------------------------------------------------------------------------


def test_a_file_is_stored_and_answered_with_counts_and_each_rejected_line(mediation) -> None:
    answer = post_file(mediation, csv_file(three_records()).getvalue())
    assert answer.status_code == 200
    body = answer.json()
    assert (body["received"], body["stored"], body["duplicates"], body["rejected"]) == (3, 1, 1, 1)
    assert body["rejections"] == [
        {
            "line": 3,
            "source_id": "b",
            "field": "quantity",
            "code": "quantity_negative",
            "message": "quantity may not be negative.",
        }
    ]


def test_a_file_all_or_nothing_answers_400_and_stores_nothing(mediation) -> None:
    answer = post_file(mediation, csv_file(three_records()).getvalue(), all_or_nothing="true")
    assert (answer.status_code, answer.json()["code"]) == (400, "usage_rejected")
    assert answer.json()["rejections"][0]["line"] == 3
    assert not UsageRecord.objects.exists()


def test_a_file_larger_than_memory_uploads_go_to_disk_and_load_whole(mediation, settings) -> None:
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # so the upload is a temporary file
    data = csv_file([record(source_id=f"r{n}") for n in range(500)]).getvalue()
    assert len(data) > 1024
    answer = post_file(mediation, data)
    assert (answer.status_code, answer.json()["stored"]) == (200, 500)


def test_a_file_without_a_usable_header_is_refused_with_its_reason(mediation) -> None:
    answer = post_file(mediation, b"msisdn,bytes\n46701234567,100\n")
    assert answer.status_code == 400
    assert answer.json()["code"] == "usage_file_invalid"
    assert "Unknown column 'msisdn'" in answer.json()["message"]


def test_a_request_without_a_file_names_the_field(mediation) -> None:
    answer = mediation.post(FILES, {}, format="multipart")
    assert (answer.status_code, answer.json()["code"]) == (400, "invalid")
    assert "file" in answer.json()["fields"]


# --- Who may call them -----------------------------------------------------------------------


def one_good(url: str) -> dict[str, Any]:
    if url == RECORDS:
        return {"path": url, "data": {"records": [record()]}, "format": "json"}
    return {
        "path": url,
        "data": {"file": SimpleUploadedFile("u.csv", csv_file([record()]).getvalue())},
        "format": "multipart",
    }


@pytest.mark.parametrize("url", [RECORDS, FILES])
def test_a_key_needs_the_usage_scope(url: str) -> None:
    assert client_with_key("usage:write").post(**one_good(url)).status_code == 200
    UsageRecord.objects.all().delete()
    refused = client_with_key("read", "billing:write", "payments:write").post(**one_good(url))
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert not UsageRecord.objects.exists()


@pytest.mark.parametrize("url", [RECORDS, FILES])
def test_staff_in_an_admin_session_need_the_permission_to_add_usage(url: str) -> None:
    permission = Permission.objects.get(codename="add_usagerecord")
    api = APIClient()
    assert api.post(**one_good(url)).status_code in {401, 403}  # anonymous
    clerk = User.objects.create_user("clerk", is_staff=True)  # staff, without the permission
    api.force_authenticate(clerk)
    assert api.post(**one_good(url)).status_code == 403
    customer = User.objects.create_user("someone")  # the permission, but not staff
    customer.user_permissions.add(permission)
    api.force_authenticate(customer)
    assert api.post(**one_good(url)).status_code == 403
    assert not UsageRecord.objects.exists()
    billing_staff = User.objects.create_user("billing", is_staff=True)
    billing_staff.user_permissions.add(permission)
    api.force_authenticate(billing_staff)
    assert api.post(**one_good(url)).status_code == 200
    assert UsageRecord.objects.count() == 1


def test_the_schema_describes_both_endpoints_with_examples_and_the_csv_columns(client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    records = schema["paths"][RECORDS]["post"]
    files = schema["paths"][FILES]["post"]
    assert records["requestBody"]["content"]["application/json"]["examples"]
    assert files["requestBody"]["content"]["multipart/form-data"]["examples"]
    for endpoint, position in ((records, "index"), (files, "line")):
        assert {"200", "400", "401", "403", "429"} <= set(endpoint["responses"])
        (answer,) = endpoint["responses"]["200"]["content"]["application/json"]["examples"].values()
        assert position in answer["value"]["rejections"][0]
    file_field = schema["components"]["schemas"]["UsageFileSchema"]["properties"]["file"]
    assert (
        "source_id, subscription, identifier, kind, quantity, occurred_at, country"
        in (file_field["description"])
    )
