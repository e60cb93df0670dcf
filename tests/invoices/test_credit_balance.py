"""A customer's credit balance: what they paid beyond their invoices, spent on the next one
when it is issued (in the bill run, in bulk) or on an open one when finance staff choose to,
each krona traceable from the payment that brought it to the invoice it paid."""

import itertools
import threading
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext

from invoices.models import CreditUse, Invoice, InvoiceStatus, Payment, PaymentMethod
from invoices.selectors import customer_credit_balance
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.credit_balance import credit_balance_use, credit_balance_use_preview
from invoices.services.credit_notes import credit_note_issue
from invoices.services.links import invoice_link_create
from invoices.services.payments import bgmax_import, invoice_balance
from invoices.services.pdf import invoice_pdf_html
from tests.billing.bgmax_files import Deposit, File, Paid, bgmax_file
from tests.factories import CustomerFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

OCT, NOV, DEC = date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)
_serials = itertools.count(1)


def bill(period: date) -> list[Invoice]:
    """The month's invoices, issued by the real bill run the next month's 1st."""
    invoice_date = date(period.year + period.month // 12, period.month % 12 + 1, 1)
    run = bill_run_start(period=period, invoice_date=invoice_date)
    bill_run_execute(bill_run_id=run.id)
    return list(Invoice.objects.filter(period_start=period).order_by("id"))


def pay(invoice: Invoice, kronor: str) -> Payment:
    """A bankgiro payment of ``kronor`` with the invoice's OCR reference, booked from a file."""
    n = next(_serials)
    made = File([Deposit([Paid(int(Decimal(kronor) * 100), invoice.ocr, serial=f"{n:012d}")],
                         serial=f"{n % 100000:05d}")])  # fmt: skip
    bgmax_import(data=bgmax_file(made), name=f"{n}.txt")
    return Payment.objects.get(source_key__endswith=f":{n:012d}:{int(Decimal(kronor) * 100)}")


def customer_with(price: str = "299.00", **customer: object) -> int:
    sub = SubscriptionFactory(
        agreed_monthly_price=Decimal(price), customer=CustomerFactory(**customer)
    )
    return sub.customer_id


def of(invoices: list[Invoice], customer_id: int) -> Invoice:
    return next(invoice for invoice in invoices if invoice.customer_id == customer_id)


def credit_payments(invoice: Invoice) -> list[Payment]:
    return list(Payment.objects.filter(invoice=invoice, method=PaymentMethod.CREDIT))


def test_an_overpayment_is_a_credit_balance_that_the_next_invoice_uses_when_issued() -> None:
    # given a 299 kr October invoice paid with 399 kr: 100 kr beyond it
    customer = customer_with()
    (october,) = bill(OCT)
    overpaid = pay(october, "399.00")
    assert overpaid.surplus == Decimal("100.00")
    assert customer_credit_balance(customer) == Decimal("100.00")
    # when November is issued
    (november,) = bill(NOV)
    # then the credit balance paid 100 kr of it, 199 kr is left and nothing is left over
    (used,) = credit_payments(november)
    assert (used.amount, used.status, used.source_key) == (
        Decimal("100.00"),
        "booked",
        f"credit:{november.id}:issue",
    )
    assert used.paid_on == date(2026, 12, 1)  # the invoice date
    assert november.status == InvoiceStatus.PARTLY_PAID
    assert invoice_balance(november).open == Decimal("199.00")
    assert customer_credit_balance(customer) == Decimal("0.00")
    # and the ledger says where the 100 kr came from
    (use,) = CreditUse.objects.all()
    assert (use.source_id, use.payment_id, use.amount) == (overpaid.id, used.id, Decimal("100.00"))
    overpaid.refresh_from_db()
    assert overpaid.surplus_used == Decimal("100.00")


def test_a_balance_larger_than_the_invoice_pays_it_and_the_rest_waits_for_the_next() -> None:
    # given 400 kr paid beyond the October invoice
    customer = customer_with()
    (october,) = bill(OCT)
    pay(october, "699.00")
    # when November is issued, then it is paid in full from the balance
    (november,) = bill(NOV)
    assert november.status == InvoiceStatus.PAID
    assert credit_payments(november)[0].amount == Decimal("299.00")
    assert customer_credit_balance(customer) == Decimal("101.00")
    # and December takes the 101 kr that are left
    (december,) = bill(DEC)
    assert december.status == InvoiceStatus.PARTLY_PAID
    assert credit_payments(december)[0].amount == Decimal("101.00")
    assert customer_credit_balance(customer) == Decimal("0.00")


def test_the_oldest_surplus_is_spent_first_and_every_krona_is_traced() -> None:
    # given 30 kr beyond October's invoice and 50 kr beyond November's (100 kr each)
    customer_with("100.00")
    (october,) = bill(OCT)
    (november,) = bill(NOV)
    first = pay(october, "130.00")
    second = pay(november, "150.00")
    # when December is issued
    (december,) = bill(DEC)
    # then it spends October's 30 kr first, then November's 50 kr, and says so
    (used,) = credit_payments(december)
    uses = list(
        CreditUse.objects.filter(payment=used).order_by("source_id").values_list("source", "amount")
    )
    assert uses == [(first.id, Decimal("30.00")), (second.id, Decimal("50.00"))]
    assert used.amount == Decimal("80.00")
    assert invoice_balance(december).open == Decimal("20.00")
    for source in (first, second):
        source.refresh_from_db()
        assert source.surplus_used == source.surplus


def test_finance_staff_follow_each_krona_from_the_surplus_to_the_invoice_it_paid(
    admin_client,
) -> None:
    customer_with()
    (october,) = bill(OCT)
    overpaid = pay(october, "399.00")
    (november,) = bill(NOV)
    (used,) = credit_payments(november)
    # the payment that brought the money says where its surplus went
    source = admin_client.get(f"/admin/invoices/payment/{overpaid.id}/change/").content.decode()
    assert "Överskottet använt till (betalningar med tillgodohavande)" in source
    assert f"/admin/invoices/payment/{used.id}/change/" in source
    # and the spending says where it came from
    spending = admin_client.get(f"/admin/invoices/payment/{used.id}/change/").content.decode()
    assert "Använt från (överskott från tidigare betalningar)" in spending
    assert f"/admin/invoices/payment/{overpaid.id}/change/" in spending
    ledger = admin_client.get("/admin/invoices/credituse/").content.decode()
    assert "Använda tillgodohavanden" in ledger
    assert "100,00" in ledger


def test_the_bill_run_spends_credit_balances_in_a_few_statements_per_chunk() -> None:
    # given two customers with a credit balance, then five more
    def october_with_surpluses(count: int) -> None:
        for _ in range(count):
            customer_with()
        for invoice in bill(OCT):
            if not Payment.objects.filter(invoice=invoice).exists():
                pay(invoice, "350.00")

    october_with_surpluses(2)
    run = bill_run_start(period=NOV, invoice_date=DEC)
    with CaptureQueriesContext(connection) as two:
        bill_run_execute(bill_run_id=run.id)
    october_with_surpluses(5)
    run = bill_run_start(period=DEC, invoice_date=date(2027, 1, 1))
    with CaptureQueriesContext(connection) as seven:
        bill_run_execute(bill_run_id=run.id)
    # then spending five customers' balances takes as many statements as spending two
    assert (
        Payment.objects.filter(method=PaymentMethod.CREDIT, invoice__period_start=NOV).count() == 2
    )
    assert (
        Payment.objects.filter(method=PaymentMethod.CREDIT, invoice__period_start=DEC).count() == 5
    )
    assert len(seven.captured_queries) == len(two.captured_queries)


def test_a_customer_without_a_balance_gets_an_ordinary_invoice() -> None:
    customer_with()
    (october,) = bill(OCT)
    pay(october, "299.00")  # exactly
    (november,) = bill(NOV)
    assert november.status == InvoiceStatus.ISSUED
    assert credit_payments(november) == []
    assert not CreditUse.objects.exists()


def test_the_page_and_the_pdf_say_what_the_balance_paid_and_what_is_left(client: Client) -> None:
    # given November paid 100 kr from the balance, with 0 kr left
    customer_with(language="en")
    (october,) = bill(OCT)
    pay(october, "399.00")
    (november,) = bill(NOV)
    # when the customer opens November's page and PDF
    token = invoice_link_create(invoice=november)
    page = client.get(f"/i/{token}/?lang=en").content.decode().replace("\xa0", " ")
    pdf = invoice_pdf_html(november).replace("\xa0", " ")
    # then both say what the balance paid and what is left of it
    assert "Paid from your credit balance: 100.00 kr" in page
    assert "Your remaining credit balance: 0.00 kr." in page
    assert "199.00 kr" in page  # the amount to pay
    assert "Paid from your credit balance: 100.00 kr of the invoice total of 299.00 kr." in pdf
    assert "Your remaining credit balance: 0.00 kr." in pdf
    assert "199.00 kr" in pdf  # the amount to pay, on the summary and the slip
    # and October's page says the payment was more than it asked
    october_page = client.get(f"/i/{invoice_link_create(invoice=october)}/?lang=en")
    text = october_page.content.decode().replace("\xa0", " ")
    assert "You paid 100.00 kr more than this invoice asked" in text


def test_the_page_follows_a_balance_that_another_invoice_changed(client: Client) -> None:
    # given November's page, read (and cached) while the customer has no balance
    customer_with(language="en")
    october, *_ = bill(OCT)
    (november,) = bill(NOV)
    token = invoice_link_create(invoice=november)
    before = client.get(f"/i/{token}/?lang=en").content.decode()
    assert "credit balance" not in before
    # when October is paid twice over (a payment on another invoice)
    pay(october, "598.00")
    # then November's page says the customer has 299 kr to use
    after = client.get(f"/i/{token}/?lang=en").content.decode().replace("\xa0", " ")
    assert "Your remaining credit balance: 299.00 kr. Your next invoice uses it." in after


def test_the_caches_raw_query_sums_the_balance_as_the_selector_does() -> None:
    from invoices.page import _page_stamp

    customer = customer_with()
    (october,) = bill(OCT)
    pay(october, "350.50")
    (november,) = bill(NOV)
    pay(november, "300.25")
    _earlier, credit = _page_stamp(november)
    # (October's 51.50 kr went to November, which was then paid 52.75 kr beyond)
    assert Decimal(credit) == customer_credit_balance(customer) == Decimal("52.75")


def test_the_issue_message_says_what_is_left_to_pay(
    sms_outbox, django_capture_on_commit_callbacks
) -> None:
    customer_with(language="en", delivery_method="sms")
    (october,) = bill(OCT)
    pay(october, "399.00")
    with django_capture_on_commit_callbacks(execute=True):
        bill(NOV)
    ((_to, text),) = sms_outbox
    assert "your credit balance paid part of your invoice, 199.00 kr is left to pay" in (
        text.replace("\xa0", " ")
    )


# --- a credit note after payment -----------------------------------------------------------


def test_a_credit_note_on_a_paid_invoice_turns_what_was_paid_into_a_credit_balance() -> None:
    # given a paid invoice of two subscriptions (299 + 199 kr)
    sub = SubscriptionFactory(agreed_monthly_price=Decimal("299.00"))
    SubscriptionFactory(customer=sub.customer, agreed_monthly_price=Decimal("199.00"))
    (october,) = bill(OCT)
    payment = pay(october, "498.00")
    # when the 199 kr line is credited
    line = october.lines.get(amount=Decimal("199.00"))
    credit_note_issue(invoice_id=october.id, reason="Fel pris", line_ids=[line.id])
    # then the 199 kr paid for it are the customer's credit balance, and November uses it
    payment.refresh_from_db()
    assert payment.surplus == Decimal("199.00")
    balance = invoice_balance(october)
    assert balance.paid + balance.credited + balance.open == october.total
    assert customer_credit_balance(sub.customer_id) == Decimal("199.00")
    (november,) = bill(NOV)
    assert credit_payments(november)[0].amount == Decimal("199.00")


def test_a_credit_note_that_leaves_nothing_open_on_a_partly_paid_invoice_marks_it_paid() -> None:
    sub = SubscriptionFactory(agreed_monthly_price=Decimal("299.00"))
    SubscriptionFactory(customer=sub.customer, agreed_monthly_price=Decimal("199.00"))
    (october,) = bill(OCT)
    pay(october, "299.00")
    line = october.lines.get(amount=Decimal("199.00"))
    credit_note_issue(invoice_id=october.id, reason="Fel pris", line_ids=[line.id])
    october.refresh_from_db()
    assert october.status == InvoiceStatus.PAID
    assert customer_credit_balance(sub.customer_id) == Decimal("0.00")


def test_what_a_credit_balance_paid_returns_to_it_when_that_invoice_is_credited() -> None:
    customer = customer_with()
    (october,) = bill(OCT)
    pay(october, "598.00")
    (november,) = bill(NOV)  # paid in full from the balance
    credit_note_issue(invoice_id=november.id, reason="Fel kund")
    assert customer_credit_balance(customer) == Decimal("299.00")


# --- finance staff spend a balance on an open invoice ----------------------------------------


def two_open_invoices_and_a_surplus() -> tuple[int, Invoice, Invoice]:
    """October and November open (299 kr each), then 450 kr more paid on a paid invoice:
    September's."""
    customer = customer_with()
    (september,) = bill(date(2026, 9, 1))
    (october,) = bill(OCT)
    (november,) = bill(NOV)
    pay(september, "749.00")  # 450 kr beyond
    return customer, october, november


def test_staff_pay_open_invoices_from_the_balance_after_reading_what_it_does(
    admin_client, admin_user
) -> None:
    customer, october, november = two_open_invoices_and_a_surplus()
    data = {"action": "use_credit_balance", "_selected_action": [october.id, november.id]}
    # when they choose the action, they read what it would do (in Swedish)
    review = admin_client.post("/admin/invoices/invoice/", data).content.decode()
    assert "Betala med tillgodohavandet" in review
    for amount in ("299,00 kr", "450,00 kr", "151,00 kr"):  # open, the balance, what is left
        assert amount in review
    assert "Delvis betald" in review  # November, after October took 299 kr
    assert not credit_payments(october)  # nothing done before the confirmation
    # when they confirm
    done = admin_client.post("/admin/invoices/invoice/", {**data, "confirmed": "yes"}, follow=True)
    assert "299,00 kr av tillgodohavandet betalade faktura" in done.content.decode()
    # then October is paid, November partly, the balance is spent, by them
    october.refresh_from_db()
    november.refresh_from_db()
    assert (october.status, november.status) == (InvoiceStatus.PAID, InvoiceStatus.PARTLY_PAID)
    assert invoice_balance(november).open == Decimal("148.00")
    assert customer_credit_balance(customer) == Decimal("0.00")
    used = credit_payments(november)[0]
    assert (used.amount, used.matched_by, used.source_key) == (
        Decimal("151.00"),
        admin_user,
        f"credit:{november.id}:1",
    )
    # and confirming again (a second click) spends nothing more
    admin_client.post("/admin/invoices/invoice/", {**data, "confirmed": "yes"})
    assert Payment.objects.filter(method=PaymentMethod.CREDIT).count() == 2


def test_the_review_says_when_there_is_nothing_to_spend_or_nothing_open(admin_client) -> None:
    customer_with()
    (october,) = bill(OCT)
    pay(october, "299.00")  # paid, no surplus
    (november,) = bill(NOV)
    data = {"action": "use_credit_balance", "_selected_action": [october.id, november.id]}
    review = admin_client.post("/admin/invoices/invoice/", data).content.decode()
    assert "Fakturan har inget öppet." in review
    assert "Kunden har inget tillgodohavande att använda." in review
    assert "Inget här kan betalas med ett tillgodohavande." in review


def test_only_staff_who_may_book_payments_may_spend_a_balance(client: Client, admin_client) -> None:
    _customer, october, _november = two_open_invoices_and_a_surplus()
    clerk = User.objects.create_user("clerk", password="x", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_invoice"))
    client.force_login(clerk)
    # the action is offered to those who may book payments, not to the others
    assert "use_credit_balance" in admin_client.get("/admin/invoices/invoice/").content.decode()
    assert "use_credit_balance" not in client.get("/admin/invoices/invoice/").content.decode()
    # and posted anyway, it does nothing
    data = {"action": "use_credit_balance", "_selected_action": [october.id], "confirmed": "yes"}
    assert client.post("/admin/invoices/invoice/", data).status_code == 302
    assert not credit_payments(october)


def test_spending_refuses_an_invoice_with_nothing_open_and_a_customer_with_nothing_left() -> None:
    from core.errors import DomainError

    staff = User.objects.create(username="f")
    _customer, october, november = two_open_invoices_and_a_surplus()
    credit_balance_use(invoice_id=october.id, by=staff)
    with pytest.raises(DomainError) as nothing_open:
        credit_balance_use(invoice_id=october.id, by=staff)
    assert nothing_open.value.code == "invoice_not_payable"
    credit_balance_use(invoice_id=november.id, by=staff)
    (december,) = bill(DEC)
    with pytest.raises(DomainError) as nothing_left:
        credit_balance_use(invoice_id=december.id, by=staff)
    assert nothing_left.value.code == "no_credit_balance"


def test_the_preview_takes_each_customers_balance_down_as_their_invoices_use_it() -> None:
    _customer, october, november = two_open_invoices_and_a_surplus()
    first, second = credit_balance_use_preview(invoice_ids=[november.id, october.id])
    assert first.invoice == october  # the oldest due first
    assert (first.credit_before, first.used, first.status_after) == (
        Decimal("450.00"),
        Decimal("299.00"),
        "paid",
    )
    assert (second.credit_before, second.used, second.status_after) == (
        Decimal("151.00"),
        Decimal("151.00"),
        "partly_paid",
    )


def test_the_database_refuses_to_spend_more_than_a_surplus() -> None:
    customer_with()
    (october,) = bill(OCT)
    payment = pay(october, "300.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(id=payment.id).update(surplus_used=Decimal("1.01"))


@pytest.mark.django_db(transaction=True)
def test_two_spendings_at_once_never_spend_the_balance_twice(postgres) -> None:
    # given 450 kr of credit and two open invoices of 299 kr
    customer, october, november = two_open_invoices_and_a_surplus()
    staff = User.objects.create(username="f")
    results: list[object] = []
    start = threading.Barrier(2)

    def spend(invoice: Invoice) -> None:
        try:
            start.wait(timeout=10)
            results.append(credit_balance_use(invoice_id=invoice.id, by=staff).amount)
        except Exception as exc:
            results.append(exc)
        finally:
            connection.close()

    # when finance staff spend it on both at the same moment
    threads = [threading.Thread(target=spend, args=(i,)) for i in (october, november)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then together they spent exactly the 450 kr, and the balance is zero, not below
    assert sorted(results) == [Decimal("151.00"), Decimal("299.00")]  # type: ignore[type-var]
    spent = Payment.objects.filter(method=PaymentMethod.CREDIT).aggregate(s=Sum("amount"))["s"]
    assert spent == Decimal("450.00")
    assert customer_credit_balance(customer) == Decimal("0.00")
    assert CreditUse.objects.aggregate(s=Sum("amount"))["s"] == Decimal("450.00")


def test_spending_on_an_open_invoice_tells_its_open_page_after_commit(
    django_capture_on_commit_callbacks, monkeypatch
) -> None:
    told: list[list[int]] = []
    monkeypatch.setattr(
        "chat.broadcast.payments_changed_send",
        lambda *, invoice_ids: told.append(list(invoice_ids)),
    )
    _customer, october, _november = two_open_invoices_and_a_surplus()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        credit_balance_use(invoice_id=october.id, by=User.objects.create(username="f"))
    assert told == []  # not before the spending is committed
    for callback in callbacks:
        callback()
    assert told == [[october.id]]
