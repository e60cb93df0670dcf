"""The payments API: payments listed and read by cursor and filters, and a payment received
outside Touchpoint's channels registered on its invoice by an ERP or a shop system."""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from invoices.models import Invoice, InvoiceStatus, Payment, PaymentMethod
from invoices.services.payments import payment_register
from tests.api import keyed
from tests.billing.bgmax_files import Paid, bgmax_file
from tests.invoices.test_payments import deposit_of, invoices, ore  # noqa: F401

pytestmark = pytest.mark.django_db
URL = "/api/v1/payments/"
TODAY = date(2026, 11, 20)


@pytest.fixture(autouse=True)
def _today() -> Iterator[None]:
    with time_machine.travel(datetime(2026, 11, 20, 11, 0, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def erp() -> APIClient:
    return keyed("payments:write")


def body(named: Invoice, amount: str = "100.00") -> dict[str, object]:
    return {
        "invoice": named.id,
        "amount": amount,
        "paid_on": "2026-11-19",
        "external_id": "erp-2026-000123",
    }


def test_a_payment_is_registered_by_ocr_and_answered_as_booked(
    erp: APIClient,
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first, _second, _third = invoices
    answer = erp.post(
        URL,
        {
            "ocr": first.ocr,
            "amount": str(first.total + 20),
            "paid_on": "2026-11-19",
            "method": "swish",
            "reference": "Kassa 3, Lund",
            "payer": "Anna Berg",
            "external_id": "shop-lund-17",
        },
        format="json",
    )
    assert answer.status_code == 201
    payment = Payment.objects.get()
    assert answer.json() == {
        "id": payment.id,
        "invoice": first.id,
        "invoice_number": first.display_number,
        "customer": first.customer.customer_number,
        "status": "booked",
        "method": "swish",
        "amount": str(first.total + 20),
        "surplus": "20.00",
        "surplus_used": "0.00",
        "currency": "SEK",
        "paid_on": "2026-11-19",
        "booked_at": answer.json()["booked_at"],
        "reference": "Kassa 3, Lund",
        "payer": "Anna Berg",
        "external_id": "shop-lund-17",
        "bgmax_import": None,
    }
    first.refresh_from_db()
    assert first.status == InvoiceStatus.PAID


def test_the_same_payment_again_answers_the_first_and_books_nothing(
    erp: APIClient,
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first = invoices[0]
    made = erp.post(URL, body(first), format="json")
    # again without an Idempotency-Key (a retry by another path of the ERP): the same payment
    again = erp.post(URL, body(first), format="json")
    assert (made.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == made.json()["id"]
    taken = erp.post(URL, body(first, "120.00"), format="json")
    assert (taken.status_code, taken.json()["code"]) == (400, "external_id_reused")
    assert Payment.objects.count() == 1


def test_a_repeat_with_the_idempotency_key_is_the_first_answer_replayed(
    erp: APIClient,
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first = invoices[0]
    headers = {"HTTP_IDEMPOTENCY_KEY": "pay-1"}
    made = erp.post(URL, body(first), format="json", **headers)
    again = erp.post(URL, body(first), format="json", **headers)
    assert (made.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == made.json()
    other = erp.post(URL, body(first, "1.00"), format="json", **headers)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert Payment.objects.count() == 1


@pytest.mark.parametrize(
    ("given", "status", "code"),
    [
        ({"invoice": 999_999}, 400, "invoice_not_found"),
        ({"invoice": 2**64}, 400, "invalid"),
        ({"amount": "0.00"}, 400, "amount_not_positive"),
        ({"amount": "-10.00"}, 400, "amount_not_positive"),
        ({"paid_on": "2026-11-21"}, 400, "paid_on_in_future"),
        ({"method": "card"}, 400, "invalid"),
        ({"amount": "1.005"}, 400, "invalid"),
        ({"external_id": ""}, 400, "invalid"),
        ({"external_id": 17}, 400, "invalid"),
        ({"paid_on": "19/11/2026"}, 400, "invalid"),
    ],
)
def test_what_cannot_be_booked_is_refused_with_a_stable_code(
    erp: APIClient,
    invoices: list[Invoice],  # noqa: F811
    given: dict[str, object],
    status: int,
    code: str,
) -> None:
    answer = erp.post(URL, {**body(invoices[0]), **given}, format="json")
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    if code == "invalid":
        assert set(answer.json()["fields"]) == set(given)
    assert not Payment.objects.exists()


def test_the_invoice_is_named_by_id_or_by_ocr_not_both_nor_neither(
    erp: APIClient,
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first = invoices[0]
    both = erp.post(URL, {**body(first), "ocr": first.ocr}, format="json")
    neither = body(first)
    del neither["invoice"]
    for answer in (both, erp.post(URL, neither, format="json")):
        assert (answer.status_code, answer.json()["code"]) == (400, "invalid")
        assert list(answer.json()["fields"]) == ["invoice"]
    unknown = erp.post(URL, {**neither, "ocr": "1234567897"}, format="json")
    assert unknown.json()["code"] == "invoice_not_found"


def test_a_credit_note_and_a_credited_invoice_are_refused(
    erp: APIClient,
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first = invoices[0]
    credited = keyed("billing:write").post(
        f"/api/v1/invoices/{first.id}/credit/", {"reason": "Fel kund"}, format="json"
    )
    note = credited.json()["id"]
    answer = erp.post(URL, {**body(first), "invoice": note}, format="json")
    assert (answer.status_code, answer.json()["code"]) == (400, "not_an_invoice")
    answer = erp.post(URL, body(first), format="json")
    assert (answer.status_code, answer.json()["code"]) == (400, "invoice_credited")
    assert not Payment.objects.exists()


def test_payments_are_listed_newest_first_by_cursor_and_filtered(
    invoices: list[Invoice],  # noqa: F811
    django_assert_max_num_queries,
) -> None:
    first, second, _third = invoices
    # a BgMax file's payment yesterday, and two registered today
    with time_machine.travel(datetime(2026, 11, 19, 11, 0, tzinfo=UTC), tick=False):
        keyed("payments:write").post(
            "/api/v1/payments/bgmax-imports/",
            {
                "file": SimpleUploadedFile(
                    "bgmax.txt", bgmax_file(deposit_of(Paid(ore("50.00"), first.ocr)))
                )
            },
            format="multipart",
        )
    for n, invoice in enumerate((first, second), start=1):
        payment_register(
            invoice_id=invoice.id,
            amount=Decimal("10.00"),
            paid_on=TODAY,
            method=PaymentMethod.SWISH,
            external_id=f"swish-{n}",
        )
    reader = keyed("read")
    ids = list(Payment.objects.order_by("-id").values_list("id", flat=True))
    with django_assert_max_num_queries(3):  # the key, its last use, one page with invoices
        page = reader.get(URL, {"limit": 2}).json()
    assert [p["id"] for p in page["results"]] == ids[:2]
    rest = reader.get(page["next"]).json()
    assert ([p["id"] for p in rest["results"]], rest["next"]) == (ids[2:], None)

    def listed(**filters: object) -> list[tuple[str, str | None]]:
        answer = reader.get(URL, filters)
        assert answer.status_code == 200
        return [(p["method"], p["external_id"]) for p in answer.json()["results"]]

    assert listed(invoice=first.id) == [("swish", "swish-1"), ("bankgiro", None)]
    assert listed(method="bankgiro") == [("bankgiro", None)]
    assert listed(status="unmatched") == []
    assert listed(booked_from="2026-11-20") == [("swish", "swish-2"), ("swish", "swish-1")]
    assert listed(booked_to="2026-11-19") == [("bankgiro", None)]
    assert listed(booked_from="2026-11-19", booked_to="2026-11-19", invoice=first.id) == [
        ("bankgiro", None)
    ]
    backwards = reader.get(URL, {"booked_from": "2026-11-20", "booked_to": "2026-11-19"})
    assert (backwards.status_code, list(backwards.json()["fields"])) == (400, ["booked_to"])
    refused = reader.get(URL, {"status": "lost", "booked_from": "yesterday", "invoice": str(2**64)})
    assert (refused.status_code, set(refused.json()["fields"])) == (
        400,
        {"status", "booked_from", "invoice"},
    )


def test_one_payment_is_read_and_an_unknown_one_is_not_found(
    invoices: list[Invoice],  # noqa: F811
) -> None:
    done = payment_register(
        invoice_id=invoices[0].id, amount=Decimal("10.00"), paid_on=TODAY, external_id="erp-1"
    )
    reader = keyed("read")
    one = reader.get(f"{URL}{done.payment.id}/")
    assert (one.status_code, one.json()["external_id"]) == (200, "erp-1")
    missing = reader.get(f"{URL}{done.payment.id + 1}/")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


def test_reading_needs_the_read_scope_and_registering_the_payments_scope(
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first = invoices[0]
    assert APIClient().get(URL).status_code == 401
    assert APIClient().post(URL, body(first), format="json").status_code == 401
    assert keyed("payments:write").get(URL).status_code == 403
    for scopes in (("read",), ("billing:write", "usage:write")):
        refused = keyed(*scopes).post(URL, body(first), format="json")
        assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert keyed("billing:write").get(f"{URL}1/").status_code == 403
    assert not Payment.objects.exists()


def test_staff_register_with_the_permission_to_add_payments(
    invoices: list[Invoice],  # noqa: F811
) -> None:
    clerk = User.objects.create_user("clerk", is_staff=True)
    api = APIClient()
    api.force_authenticate(clerk)
    assert api.post(URL, body(invoices[0]), format="json").status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="add_payment"))
    api.force_authenticate(User.objects.get(id=clerk.id))
    assert api.post(URL, body(invoices[0]), format="json").status_code == 201
    assert api.get(URL).status_code == 403  # reading is the view permission
    clerk.user_permissions.add(Permission.objects.get(codename="view_payment"))
    api.force_authenticate(User.objects.get(id=clerk.id))
    assert len(api.get(URL).json()["results"]) == 1
