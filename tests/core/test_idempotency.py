"""``Idempotency-Key`` on the API's POSTs, with Stripe's semantics."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.views import APIView

from core.api import ApiView
from core.api_keys import api_key_create
from core.idempotency import idempotent_requests_delete_expired
from core.models import IdempotentRequest
from invoices.models import BgMaxImport, Invoice, Payment
from tests.billing.bgmax_files import Paid, bgmax_file
from tests.invoices.test_api_payments import URL, post_file
from tests.invoices.test_payments import deposit_of, invoices, ore  # noqa: F401

pytestmark = pytest.mark.django_db


def client_of(name: str) -> APIClient:
    made = api_key_create(name=name, scopes=["payments:write"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {made.secret}")
    return api


def with_key(api: APIClient, key: str) -> APIClient:
    api.credentials(**api._credentials, HTTP_IDEMPOTENCY_KEY=key)
    return api


@pytest.fixture
def file(invoices: list[Invoice]) -> bytes:  # noqa: F811
    return bgmax_file(deposit_of(Paid(ore("10.00"), invoices[0].ocr)))


def test_the_same_key_and_content_get_the_first_answer_and_nothing_is_done_twice(
    file: bytes,
) -> None:
    api = with_key(client_of("Bank"), "upload-2026-12-01")
    first = post_file(api, file)
    again = post_file(api, file, name="bgmax.txt")
    assert (first.status_code, again.status_code) == (201, 201)  # not "200, uploaded before"
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert (BgMaxImport.objects.count(), Payment.objects.count()) == (1, 1)


def test_the_same_key_with_other_content_is_refused(file: bytes, invoices) -> None:  # noqa: F811
    api = with_key(client_of("Bank"), "k1")
    assert post_file(api, file).status_code == 201
    other = bgmax_file(deposit_of(Paid(ore("20.00"), invoices[1].ocr), serial="00002"))
    refused = post_file(api, other)
    assert refused.status_code == 422
    assert refused.json()["code"] == "idempotency_key_reused"
    assert Payment.objects.count() == 1


def test_a_repeat_while_the_first_is_answered_is_told_to_wait(file: bytes) -> None:
    first = with_key(client_of("Bank"), "k1")
    post_file(first, file)
    IdempotentRequest.objects.update(status=None)  # as if still running
    waiting = post_file(first, file)
    assert waiting.status_code == 409
    assert waiting.json()["code"] == "idempotency_key_in_use"


def test_a_request_that_failed_validation_leaves_the_key_free(file: bytes) -> None:
    api = with_key(client_of("Bank"), "k1")
    assert api.post(URL, {}, format="multipart").status_code == 400
    assert post_file(api, file).status_code == 201


def test_a_server_error_leaves_the_key_free(file: bytes, monkeypatch) -> None:
    api = with_key(client_of("Bank"), "k1")
    api.raise_request_exception = False

    def broken(**kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("invoices.api.bgmax_import", broken)
    assert post_file(api, file).status_code == 500
    monkeypatch.undo()
    assert post_file(api, file).status_code == 201


def test_keys_belong_to_their_caller(file: bytes) -> None:
    bank = with_key(client_of("Bank"), "same")
    other = with_key(client_of("Other bank"), "same")
    assert post_file(bank, file).status_code == 201
    # the other caller's "same" key is its own: its request runs (the file was booked: 200)
    answer = post_file(other, file)
    assert (answer.status_code, answer.has_header("Idempotent-Replayed")) == (200, False)


def test_answers_are_kept_a_day(file: bytes) -> None:
    api = with_key(client_of("Bank"), "k1")
    assert post_file(api, file).status_code == 201
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert post_file(api, file).status_code == 200  # run again: uploaded before
        assert idempotent_requests_delete_expired() == 0  # (the new answer is a day younger)
    assert IdempotentRequest.objects.count() == 1


def test_a_key_longer_than_255_characters_is_refused(file: bytes) -> None:
    answer = post_file(with_key(client_of("Bank"), "k" * 256), file)
    assert (answer.status_code, answer.json()["code"]) == (400, "idempotency_key_invalid")
    assert not Payment.objects.exists()


def api_views() -> list[type]:
    found: list[type] = []

    def walk(patterns: list, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and prefix.startswith("api/v1/"):
                view = getattr(pattern.callback, "view_class", None)
                if view is not None:
                    found.append(view)

    walk(get_resolver().url_patterns, "")
    return found


def test_every_api_endpoint_takes_idempotency_keys() -> None:
    views = api_views()
    assert views, "no endpoint found under /api/v1/"
    assert [v for v in views if issubclass(v, APIView) and not issubclass(v, ApiView)] == []


def test_the_hourly_task_forgets_answers_older_than_a_day(file: bytes) -> None:
    from core.tasks import idempotent_requests_delete_expired_task

    post_file(with_key(client_of("Bank"), "k1"), file)
    idempotent_requests_delete_expired_task.delay()
    assert IdempotentRequest.objects.count() == 1
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        idempotent_requests_delete_expired_task.delay()
    assert not IdempotentRequest.objects.exists()
