"""Booking a BgMax file's payments: on the invoice their OCR reference names, once, and
nothing of a file that does not add up; what cannot be booked waits for a person."""

from dataclasses import replace
from decimal import Decimal

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from billing.bgmax import BgMaxError, bgmax_parse
from invoices.models import (
    BgMaxImport,
    ChargeKind,
    Invoice,
    InvoiceCharge,
    InvoiceStatus,
    Payment,
    PaymentStatus,
)
from invoices.services.credit_notes import credit_note_issue
from invoices.services.links import invoice_link_create
from invoices.services.payments import bgmax_import, invoice_balance
from tests.billing.bgmax_files import Deposit, File, Paid, bgmax_file
from tests.chat.conftest import issue_october
from tests.conftest import shared_fixture
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoices() -> list[Invoice]:
    """Three customers' October invoices: 299, 199 and 99 kr (whole kronor to pay)."""
    for price in ("299.00", "199.00", "99.00"):
        SubscriptionFactory(agreed_monthly_price=Decimal(price))
    return sorted(issue_october(), key=lambda invoice: -invoice.total)


def ore(kronor: Decimal | str) -> int:
    return int(Decimal(kronor) * 100)


def deposit_of(*paid: Paid, serial: str = "00001") -> File:
    return File([Deposit(list(paid), serial=serial)])


@pytest.mark.parametrize("chunk", [1, 5000], ids=["one per statement", "all in one"])
def test_payments_are_booked_on_the_invoices_their_references_name(
    invoices, chunk: int, monkeypatch
) -> None:
    monkeypatch.setattr("invoices.services.payments.CHUNK", chunk)
    first, second, third = invoices
    made = deposit_of(
        Paid(ore(first.total), first.ocr, name="Anna"),  # all of it
        Paid(ore("100.00"), second.ocr, serial="000000000002"),  # part of it
        Paid(ore(third.total) + 5000, third.ocr, serial="000000000003"),  # 50 kr too much
        Paid(ore("10.00"), "1234567897", serial="000000000004"),  # no such invoice
    )
    imported, new = bgmax_import(data=bgmax_file(made), name="bgmax-2026-12-01.txt")
    assert new is True
    assert (imported.payments, imported.booked, imported.unmatched) == (4, 3, 1)
    for invoice in invoices:
        invoice.refresh_from_db()
    # the first is paid, the second partly with the rest open, the third paid with 50 kr over
    assert [i.status for i in invoices] == ["paid", "partly_paid", "paid"]
    assert invoice_balance(second).open == second.total - Decimal("100.00")
    surplus = Payment.objects.get(invoice=third)
    assert (surplus.amount, surplus.surplus) == (third.total + 50, Decimal("50.00"))
    assert Payment.objects.get(invoice=first).payer == "Anna"
    lone = Payment.objects.get(status=PaymentStatus.UNMATCHED)
    assert (lone.invoice, lone.amount, lone.reference) == (None, Decimal("10.00"), "1234567897")


def test_the_page_says_what_is_left_after_a_part_payment(invoices, client: Client) -> None:
    _first, second, _third = invoices
    bgmax_import(data=bgmax_file(deposit_of(Paid(ore("100.00"), second.ocr))), name="a.txt")
    token = invoice_link_create(invoice=second)
    page = client.get(f"/i/{token}/?lang=en").content.decode().replace("\xa0", " ")
    left = second.total - 100
    assert f"We have received 100.00 kr; {left} kr is left to pay." in page


def test_a_file_uploaded_again_books_nothing_and_a_payment_in_two_files_is_booked_once(
    invoices,
) -> None:
    first, second, _third = invoices
    made = deposit_of(Paid(ore("50.00"), first.ocr))
    imported, _ = bgmax_import(data=bgmax_file(made), name="a.txt")
    # when the same file comes again
    again, new = bgmax_import(data=bgmax_file(made), name="a (copy).txt")
    assert (again.id, new) == (imported.id, False)
    # and a file Bankgirot wrote later holding that payment and a new one
    later = replace(made, written="20261201121500000000")
    later.deposits[0].payments.append(Paid(ore("20.00"), second.ocr, serial="000000000002"))
    second_import, new = bgmax_import(data=bgmax_file(later), name="b.txt")
    # then only the new payment is booked
    assert new is True
    assert (second_import.booked, second_import.already_booked) == (1, 1)
    assert Payment.objects.count() == 2
    assert invoice_balance(first).paid == Decimal("50.00")


def test_nothing_of_a_file_that_does_not_add_up_is_booked(invoices) -> None:
    first, _second, _third = invoices
    made = File([Deposit([Paid(ore("50.00"), first.ocr)], amount_ore=4999)])
    with pytest.raises(BgMaxError, match="its payments add up to 50,00 kr"):
        bgmax_import(data=bgmax_file(made), name="wrong.txt")
    with pytest.raises(BgMaxError, match="The end record's counts do not match"):
        bgmax_import(data=shared_fixture("bgmax", "zimpler_BgMaxfil4_broken.txt").read_bytes(),
                     name="zimpler_BgMaxfil4_broken.txt")  # fmt: skip
    assert not BgMaxImport.objects.exists()
    assert not Payment.objects.exists()


def test_a_test_file_from_bankgirot_books_nothing(invoices) -> None:
    made = replace(deposit_of(Paid(ore("50.00"), invoices[0].ocr)), mark="T")
    with pytest.raises(Exception, match="test file") as refused:
        bgmax_import(data=bgmax_file(made), name="test.txt")
    assert refused.value.code == "bgmax_test_file"
    assert not Payment.objects.exists()


def test_what_a_person_must_decide_waits_unmatched(invoices) -> None:
    first, second, third = invoices
    credit_note_issue(invoice_id=second.id, reason="Fel kund")
    bgmax_import(data=bgmax_file(deposit_of(Paid(ore(third.total), third.ocr))), name="a.txt")
    made = File(
        [
            Deposit(
                [
                    Paid(ore("299.00"), second.ocr),  # credited: nothing open
                    Paid(ore("99.00"), third.ocr, serial="000000000002"),  # paid already
                    Paid(ore("5.00"), first.ocr, serial="000000000003", deduction=True),
                    Paid(ore("100.00"), first.ocr, serial="000000000004"),
                ],
                serial="00002",
            ),
            Deposit([Paid(ore("10.00"), first.ocr)], currency="EUR", serial="00003"),
        ]
    )
    imported, _ = bgmax_import(data=bgmax_file(made), name="b.txt")
    assert (imported.booked, imported.unmatched) == (1, 4)
    unmatched = Payment.objects.filter(status=PaymentStatus.UNMATCHED).order_by("record")
    assert [(p.amount, p.currency) for p in unmatched] == [
        (Decimal("299.00"), "SEK"),
        (Decimal("99.00"), "SEK"),
        (Decimal("-5.00"), "SEK"),
        (Decimal("10.00"), "EUR"),
    ]
    second.refresh_from_db()
    assert second.status == InvoiceStatus.CREDITED


@pytest.mark.parametrize(
    "name",
    [
        "2xic_bangiroinbetalningar_exempelfil_avtalutantillval_kontroller_sv.txt",
        "bankgirot_exempelfil_ocr-kontroll_checksiffra_langd__fabhed.txt",
        "pybgmax_multipayment.txt",
        "zimpler_BgMaxfil4.txt",
    ],
)
def test_bankgirots_example_files_are_imported_whole(name: str) -> None:
    data = shared_fixture("bgmax", name).read_bytes()
    imported, _ = bgmax_import(data=data, name=name)
    # no invoice of ours carries their references: every payment waits for a person
    payments = len(bgmax_parse(data).payments)
    assert (imported.payments, imported.unmatched, imported.booked) == (payments, payments, 0)
    assert Payment.objects.count() == payments


class PaymentsAddUp(TestCase):
    """Whatever arrives in whatever parts, an invoice's total is what credit notes took off,
    what payments paid and what is open, and nothing is paid twice."""

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(parts=st.lists(st.integers(min_value=1, max_value=40_000), min_size=1, max_size=6))
    def test_total_is_credited_plus_paid_plus_open(self, parts: list[int]) -> None:
        SubscriptionFactory(agreed_monthly_price=Decimal("299.00"))
        (invoice,) = issue_october()
        for n, part in enumerate(parts, start=1):
            made = deposit_of(Paid(part, invoice.ocr, serial=f"{n:012d}"), serial=f"{n:05d}")
            bgmax_import(data=bgmax_file(made), name=f"{n}.txt")
        balance = invoice_balance(invoice)
        received = sum(Decimal(part) / 100 for part in parts)
        surplus = sum(p.surplus for p in Payment.objects.filter(invoice=invoice))
        # (what comes after the invoice is paid waits for a person: it pays nothing)
        waiting = sum(p.amount for p in Payment.objects.filter(status=PaymentStatus.UNMATCHED))
        assert balance.credited + balance.paid + balance.open == invoice.total
        assert balance.paid + surplus + waiting == received
        assert balance.paid <= invoice.total
        invoice.refresh_from_db()
        expected = "paid" if received >= invoice.total else "partly_paid"
        assert invoice.status == expected


# --- finance staff upload in the admin ---------------------------------------------------


def upload(client: Client, data: bytes, name: str = "bgmax.txt"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        "/admin/invoices/bgmaximport/upload/",
        {"file": SimpleUploadedFile(name, data)},
        follow=True,
    )


def test_finance_staff_upload_a_file_and_see_what_was_booked(admin_client, invoices) -> None:
    first, _second, _third = invoices
    made = deposit_of(Paid(ore(first.total), first.ocr), Paid(100, "1234567897", serial="9"))
    page = upload(admin_client, bgmax_file(made)).content.decode()
    assert "Bokfört från bgmax.txt: 1 betalning(ar) på sina fakturor, 1 att matcha för hand" in page
    # the same file again: said, and nothing booked twice
    again = upload(admin_client, bgmax_file(made), "copy.txt").content.decode()
    assert "inget bokförs igen" in again
    assert Payment.objects.count() == 2
    # the payments and the queue to match are listed
    listed = admin_client.get("/admin/invoices/payment/?status__exact=unmatched")
    assert listed.status_code == 200
    assert "1234567897" in listed.content.decode()


def test_a_refused_file_is_said_on_the_form_and_books_nothing(admin_client) -> None:
    data = shared_fixture("bgmax", "zimpler_BgMaxfil4_broken.txt").read_bytes()
    page = upload(admin_client, data).content.decode()
    assert "Inget bokfördes. Record 67: The end record&#x27;s counts do not match" in page
    assert not BgMaxImport.objects.exists()


def test_only_staff_allowed_to_add_imports_may_upload(client: Client, invoices) -> None:
    from django.contrib.auth.models import User

    clerk = User.objects.create_user("clerk", password="x", is_staff=True)
    client.force_login(clerk)
    made = bgmax_file(deposit_of(Paid(ore("10.00"), invoices[0].ocr)))
    assert upload(client, made).status_code == 403
    assert not Payment.objects.exists()


def test_a_file_that_met_another_booking_the_same_payments_is_booked_again(invoices) -> None:
    from django.db import IntegrityError

    import invoices.services.payments as payments

    first, _second, _third = invoices
    book = payments._book
    calls = []

    def meets_the_other_upload(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            # meanwhile another file with this payment was booked and committed
            bgmax_import(data=bgmax_file(later), name="other.txt")
            raise IntegrityError("duplicate key value violates unique constraint")
        return book(*args, **kwargs)

    made = deposit_of(Paid(ore("50.00"), first.ocr), Paid(ore("20.00"), first.ocr, serial="2"))
    later = replace(deposit_of(Paid(ore("50.00"), first.ocr)), written="20261201121500000000")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(payments, "_book", meets_the_other_upload)
        imported, new = bgmax_import(data=bgmax_file(made), name="mine.txt")
    assert new is True
    assert (imported.booked, imported.already_booked) == (1, 1)
    assert invoice_balance(first).paid == Decimal("70.00")


# --- matching by hand --------------------------------------------------------------------


def unmatched(invoices, amount: str = "150.00", **paid: object) -> Payment:
    made = deposit_of(Paid(ore(amount), "1234567897", **paid))  # names no invoice
    bgmax_import(data=bgmax_file(made), name="unknown.txt")
    return Payment.objects.get(status=PaymentStatus.UNMATCHED)


def test_finance_staff_put_an_unmatched_payment_on_an_invoice_after_a_review(
    admin_client, admin_user, invoices
) -> None:
    first, _second, _third = invoices
    payment = unmatched(invoices)
    url = f"/admin/invoices/payment/{payment.id}/match/"
    # the queue links to the matching page
    queue = admin_client.get("/admin/invoices/payment/?status__exact=unmatched").content.decode()
    assert url in queue
    # when they name the invoice, they read what booking it there does
    review = admin_client.post(url, {"number": first.display_number}).content.decode()
    # (the admin speaks Swedish to finance staff)
    total = str(first.total).replace(".", ",")
    assert f"Faktura {first.display_number} till " in review
    assert f"har {total} kr öppet." in review
    assert "150,00 kr av betalningen betalar den; sedan är den Delvis betald." in review
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.UNMATCHED  # nothing done before the confirmation
    # when they confirm, it is booked there, by them
    done = admin_client.post(url, {"number": first.display_number, "confirmed": "True"})
    assert done.status_code == 302
    payment.refresh_from_db()
    first.refresh_from_db()
    assert (payment.invoice_id, payment.status, payment.matched_by) == (
        first.id,
        PaymentStatus.BOOKED,
        admin_user,
    )
    assert payment.matched_at is not None
    assert first.status == InvoiceStatus.PARTLY_PAID
    assert invoice_balance(first).open == first.total - Decimal("150.00")


def test_a_payment_beyond_what_is_open_pays_the_invoice_and_keeps_the_rest(invoices) -> None:
    from django.contrib.auth.models import User

    from invoices.services.payments import payment_match

    _first, _second, third = invoices  # 99 kr
    payment = unmatched(invoices, "150.00")
    payment_match(payment_id=payment.id, invoice_id=third.id, by=User.objects.create(username="f"))
    payment.refresh_from_db()
    third.refresh_from_db()
    assert (third.status, payment.surplus) == (InvoiceStatus.PAID, Decimal("51.00"))


def test_what_cannot_go_on_an_invoice_by_hand_is_refused_with_the_reason(
    admin_client, invoices
) -> None:
    first, second, _third = invoices
    credit_note_issue(invoice_id=second.id, reason="Fel kund")
    payment = unmatched(invoices)
    url = f"/admin/invoices/payment/{payment.id}/match/"
    # an invoice with nothing open, and a number no invoice has
    credited = admin_client.post(url, {"number": second.display_number, "confirmed": "True"})
    assert "has nothing open" in credited.content.decode()  # (the service's words)
    missing = admin_client.post(url, {"number": "999999"})
    assert "Ingen faktura har det numret." in missing.content.decode()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.UNMATCHED
    # and a payment booked already
    from invoices.services.payments import payment_match_preview

    bgmax_import(data=bgmax_file(deposit_of(Paid(100, first.ocr, serial="7"))), name="b.txt")
    booked = Payment.objects.get(invoice=first)
    with pytest.raises(Exception, match="booked on an invoice already"):
        payment_match_preview(payment_id=booked.id, invoice_id=first.id)


def charge(invoice: Invoice, amount: str, key: str) -> None:
    InvoiceCharge.objects.create(
        invoice=invoice,
        kind=ChargeKind.REMINDER_FEE,
        amount=Decimal(amount),
        texts={"en": {"title": "Reminder fee", "detail": ""}},
        charged_on=invoice.due_date,
        source_key=key,
        created_at=invoice.issued_at,
    )


def test_a_fee_on_the_claim_is_owed_too_and_a_payment_of_the_invoice_alone_leaves_it_open(
    invoices, client: Client
) -> None:
    # given a 60 kr reminder fee on the first invoice
    first, _second, _third = invoices
    charge(first, "60.00", "fee:1")
    assert invoice_balance(first).open == first.total + 60
    # when the invoice's own total is paid
    bgmax_import(data=bgmax_file(deposit_of(Paid(ore(first.total), first.ocr))), name="a.txt")
    # then the fee is left to pay and the invoice is partly paid
    first.refresh_from_db()
    assert first.status == InvoiceStatus.PARTLY_PAID
    assert invoice_balance(first).open == Decimal("60.00")
    token = invoice_link_create(invoice=first)
    page = client.get(f"/i/{token}/?lang=en").content.decode().replace("\xa0", " ")
    assert "60.00 kr is left to pay." in page
    # and the fee paid too pays the invoice, with nothing over
    bgmax_import(
        data=bgmax_file(deposit_of(Paid(ore("60.00"), first.ocr), serial="00002")), name="b.txt"
    )
    first.refresh_from_db()
    assert first.status == InvoiceStatus.PAID
    assert Payment.objects.filter(invoice=first, surplus__gt=0).count() == 0
