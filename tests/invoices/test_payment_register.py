"""A payment received outside Touchpoint's channels (cash at a shop, a bank transfer an ERP
booked, Swish), registered on its invoice: booked as every payment is, once per the caller's
own id of it, and refused with a reason where it cannot be."""

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from core.errors import DomainError
from core.models import WebhookEvent
from core.webhooks import webhook_endpoint_create
from invoices.models import Invoice, InvoiceStatus, Payment, PaymentMethod, PaymentStatus
from invoices.selectors import customer_credit_balance
from invoices.services import payments
from invoices.services.credit_notes import credit_note_issue
from invoices.services.payments import PaymentRegistered, invoice_balance, payment_register
from tests.invoices.test_payments import invoices  # noqa: F401

pytestmark = pytest.mark.django_db

# A day after the October invoices were issued (1 November) and before they are due.
TODAY = date(2026, 11, 20)


@pytest.fixture(autouse=True)
def _today() -> Iterator[None]:
    with time_machine.travel(datetime(2026, 11, 20, 11, 0, tzinfo=UTC), tick=False):
        yield


def register(invoice: Invoice, amount: str, external_id: str = "erp-1", **given) -> Payment:
    done = payment_register(
        external_id=external_id,
        amount=Decimal(amount),
        paid_on=given.pop("paid_on", TODAY),
        **({"invoice_id": invoice.id} | given),
    )
    return done.payment


def refusal(**given) -> str:
    with pytest.raises(DomainError) as refused:
        payment_register(**given)
    return refused.value.code


def test_a_payment_named_by_ocr_pays_its_invoice_and_the_operator_is_told(
    invoices: list[Invoice],  # noqa: F811
    django_capture_on_commit_callbacks,
    monkeypatch,
) -> None:
    # given an ERP listening for paid invoices, and the first invoice's page open
    webhook_endpoint_create(name="ERP", url="https://erp.example.se/hooks")
    told: list[list[int]] = []
    monkeypatch.setattr(
        "chat.broadcast.payments_changed_send",
        lambda *, invoice_ids: told.append(list(invoice_ids)),
    )
    first, _second, _third = invoices
    # when the shop registers the whole amount, paid in cash, by the invoice's OCR reference
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        done = payment_register(
            ocr=first.ocr,
            amount=first.total,
            paid_on=date(2026, 11, 19),
            reference="Kassa 3, Lund",
            payer="Anna Berg",
            external_id="shop-lund-000017",
        )
        assert told == []  # not before it is committed
    for callback in callbacks:
        callback()
    # then it is booked on that invoice, which is paid, and its page and the ERP hear of it
    assert done.created is True
    payment = Payment.objects.get()
    assert (payment.invoice_id, payment.status, payment.method) == (
        first.id,
        PaymentStatus.BOOKED,
        PaymentMethod.MANUAL,
    )
    assert (payment.amount, payment.surplus, payment.paid_on) == (
        first.total,
        Decimal("0.00"),
        date(2026, 11, 19),
    )
    assert (payment.reference, payment.payer) == ("Kassa 3, Lund", "Anna Berg")
    assert payment.source_key == "registered:shop-lund-000017"
    first.refresh_from_db()
    assert first.status == InvoiceStatus.PAID
    assert told == [[first.id]]
    event = WebhookEvent.objects.get()
    assert (event.type, event.data["invoice"], event.data["status"]) == (
        "invoice.paid",
        first.id,
        "paid",
    )


def test_parts_leave_the_rest_open_and_money_beyond_it_is_the_customers_credit(
    invoices: list[Invoice],  # noqa: F811
) -> None:
    _first, second, _third = invoices  # 199 kr
    register(second, "100.00", "erp-1")
    second.refresh_from_db()
    assert (second.status, invoice_balance(second).open) == (
        InvoiceStatus.PARTLY_PAID,
        second.total - Decimal("100.00"),
    )
    by_swish = register(second, "150.00", "swish-1", method=PaymentMethod.SWISH)
    second.refresh_from_db()
    assert second.status == InvoiceStatus.PAID
    assert (by_swish.method, by_swish.surplus) == (PaymentMethod.SWISH, Decimal("51.00"))
    assert customer_credit_balance(second.customer_id) == Decimal("51.00")


def test_a_payment_for_an_invoice_paid_already_is_all_credit(
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first, _second, _third = invoices
    register(first, str(first.total), "erp-1")
    twice = register(first, str(first.total), "erp-2")  # the customer paid twice
    first.refresh_from_db()
    assert (first.status, twice.surplus) == (InvoiceStatus.PAID, first.total)
    assert customer_credit_balance(first.customer_id) == first.total


def test_an_overdue_invoice_paid_in_full_is_paid(invoices: list[Invoice]) -> None:  # noqa: F811
    first, _second, _third = invoices
    Invoice.objects.filter(id=first.id).update(status=InvoiceStatus.OVERDUE)
    register(first, "100.00", "erp-1")
    first.refresh_from_db()
    assert first.status == InvoiceStatus.OVERDUE  # something is still open
    register(first, str(first.total - 100), "erp-2")
    first.refresh_from_db()
    assert first.status == InvoiceStatus.PAID


def test_the_same_payment_registered_again_is_booked_once(
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first, _second, _third = invoices
    made = payment_register(
        invoice_id=first.id, amount=Decimal("50.00"), paid_on=TODAY, external_id="erp-7"
    )
    # again, by its OCR reference this time: the same payment
    again = payment_register(
        ocr=first.ocr, amount=Decimal("50.00"), paid_on=TODAY, external_id="erp-7"
    )
    assert again == PaymentRegistered(payment=made.payment, created=False)
    assert Payment.objects.count() == 1
    assert invoice_balance(first).paid == Decimal("50.00")


@pytest.mark.parametrize(
    "other",
    [
        {"amount": Decimal("60.00")},
        {"paid_on": date(2026, 11, 18)},
        {"method": PaymentMethod.SWISH},
        {"invoice": 1},  # the second invoice
    ],
    ids=["amount", "date", "method", "invoice"],
)
def test_an_id_taken_by_another_payment_is_refused(
    invoices: list[Invoice],  # noqa: F811
    other: dict[str, object],
) -> None:
    first = invoices[0]
    register(first, "50.00", "erp-7")
    given = {"amount": Decimal("50.00"), "paid_on": TODAY, "method": PaymentMethod.MANUAL}
    given |= {k: v for k, v in other.items() if k != "invoice"}
    named = invoices[other["invoice"]] if "invoice" in other else first  # type: ignore[index]
    code = refusal(invoice_id=named.id, external_id="erp-7", **given)
    assert code == "external_id_reused"
    assert Payment.objects.count() == 1


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ({"invoice_id": 999_999}, "invoice_not_found"),
        ({"ocr": "1234567897"}, "invoice_not_found"),
        ({"amount": Decimal("0.00")}, "amount_not_positive"),
        ({"amount": Decimal("-5.00")}, "amount_not_positive"),
        ({"amount": Decimal("1.005")}, "amount_invalid"),
        ({"paid_on": date(2026, 11, 21)}, "paid_on_in_future"),
        ({"method": PaymentMethod.BANKGIRO}, "payment_method_not_registrable"),
        ({"method": PaymentMethod.CARD}, "payment_method_not_registrable"),
        ({"method": PaymentMethod.CREDIT}, "payment_method_not_registrable"),
        ({"external_id": " "}, "external_id_invalid"),
        ({"external_id": "x" * 101}, "external_id_invalid"),
    ],
)
def test_what_cannot_be_booked_is_refused_with_the_reason(
    invoices: list[Invoice],  # noqa: F811
    given: dict[str, object],
    code: str,
) -> None:
    first = invoices[0]
    named = {"invoice_id": first.id} if "ocr" not in given else {}
    request = {"amount": Decimal("50.00"), "paid_on": TODAY, "external_id": "erp-1"}
    assert refusal(**(request | named | given)) == code
    assert not Payment.objects.exists()
    first.refresh_from_db()
    assert first.status == InvoiceStatus.ISSUED


def test_a_payment_today_in_sweden_is_not_in_the_future(
    invoices: list[Invoice],  # noqa: F811
) -> None:
    # 00:30 in Stockholm on the 21st is still the 20th in UTC
    with time_machine.travel(datetime(2026, 11, 20, 23, 30, tzinfo=UTC), tick=False):
        register(invoices[0], "50.00", paid_on=date(2026, 11, 21))
    assert Payment.objects.get().paid_on == date(2026, 11, 21)


def test_a_credit_note_and_a_credited_invoice_are_not_paid(
    invoices: list[Invoice],  # noqa: F811
) -> None:
    first, _second, _third = invoices
    note = credit_note_issue(invoice_id=first.id, reason="Fel kund")
    request = {"amount": Decimal("50.00"), "paid_on": TODAY, "external_id": "erp-1"}
    assert refusal(invoice_id=note.id, **request) == "not_an_invoice"
    assert refusal(invoice_id=first.id, **request) == "invoice_credited"
    assert refusal(ocr=first.ocr, **request) == "invoice_credited"
    assert not Payment.objects.exists()


def test_the_invoice_is_named_once() -> None:
    with pytest.raises(TypeError):
        payment_register(amount=Decimal(1), paid_on=TODAY, external_id="x")
    with pytest.raises(TypeError):
        payment_register(
            invoice_id=1, ocr="1234567897", amount=Decimal(1), paid_on=TODAY, external_id="x"
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_invoice", [True, False], ids=["same invoice", "other invoice"])
def test_the_same_id_registered_twice_at_once_is_booked_once(
    postgres,
    invoices: list[Invoice],  # noqa: F811
    same_invoice: bool,
    monkeypatch,
) -> None:
    first, second, _third = invoices
    named = [first, first if same_invoice else second]
    results: list[object] = []
    start = threading.Barrier(2)
    if not same_invoice:
        # Each holds its own invoice's lock: both have found the id free before either books.
        both_checked = threading.Barrier(2)
        book = payments.payment_book_on_invoice

        def book_when_both_checked(**given: object) -> Payment:
            both_checked.wait(timeout=10)
            return book(**given)  # type: ignore[arg-type]

        monkeypatch.setattr(payments, "payment_book_on_invoice", book_when_both_checked)

    def send(invoice: Invoice) -> None:
        try:
            start.wait(timeout=10)
            results.append(
                payment_register(
                    invoice_id=invoice.id,
                    amount=Decimal("50.00"),
                    paid_on=TODAY,
                    external_id="erp-9",
                )
            )
        except Exception as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(invoice,)) for invoice in named]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    booked = Payment.objects.get()
    made = [r for r in results if isinstance(r, PaymentRegistered)]
    if same_invoice:
        # the second waited for the first's lock, then found its payment: both answer it
        assert sorted(r.created for r in made) == [False, True]
        assert {r.payment.id for r in made} == {booked.id}
    else:
        # the second's insert met the first's: it is told the id is taken
        assert [r.created for r in made] == [True]
        assert [r.code for r in results if isinstance(r, DomainError)] == ["external_id_reused"]
    assert invoice_balance(Invoice.objects.get(id=booked.invoice_id)).paid == Decimal("50.00")
