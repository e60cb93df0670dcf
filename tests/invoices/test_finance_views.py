"""Finance staff's views of what customers owe: the receivables overview with its aging
buckets (and the invoice list they drill into), the payment log, the unmatched queue, and the
aging report's API. Staff read Swedish with decimal commas."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.test import Client
from rest_framework.test import APIClient

from invoices.models import ChargeKind, Invoice, InvoiceCharge, Payment, PaymentMethod
from invoices.selectors import receivables_report
from tests.api import keyed
from tests.billing.bgmax_files import Paid, bgmax_file
from tests.factories import SubscriptionFactory
from tests.invoices.test_credit_balance import bill, pay
from tests.invoices.test_payments import deposit_of, ore

pytestmark = pytest.mark.django_db

# 15 December 2026, midday in Stockholm
TODAY = datetime(2026, 12, 15, 12, 0, tzinfo=ZoneInfo("Europe/Stockholm"))
API = "/api/v1/payments/aging/"


@pytest.fixture
def months() -> dict[str, Invoice]:
    """One customer's 299 kr invoices of July to November (each due 30 days after the 1st of
    the next month), some paid, one with a fee; and a payment nobody can place.

    On 15 December: July is 106 days past due (with a 60 kr reminder fee), August 75 (100 kr
    paid of it), September is paid, October 14 days past due, November not due yet."""
    SubscriptionFactory(agreed_monthly_price=Decimal("299.00"))
    invoices = {}
    for name, month in (("jul", 7), ("aug", 8), ("sep", 9), ("oct", 10), ("nov", 11)):
        (invoices[name],) = bill(date(2026, month, 1))
    InvoiceCharge.objects.create(
        invoice=invoices["jul"],
        kind=ChargeKind.REMINDER_FEE,
        amount=Decimal("60.00"),
        texts={"en": {"title": "Reminder fee", "detail": ""}},
        charged_on=date(2026, 9, 10),
        source_key="fee:jul",
        created_at=TODAY,
    )
    pay(invoices["aug"], "100.00")
    pay(invoices["sep"], "299.00")
    made = deposit_of(Paid(ore("50.00"), "1234567897", serial="000000000777"))  # no invoice
    bgmax_import_file(bgmax_file(made))
    return invoices


def bgmax_import_file(data: bytes) -> None:
    from invoices.services.payments import bgmax_import

    bgmax_import(data=data, name="unknown.txt")


def test_the_report_counts_open_overdue_and_paid_invoices_by_age(months) -> None:
    report = receivables_report(today=TODAY.date())
    assert (report.open_count, report.open_amount) == (4, Decimal("1156.00"))
    assert (report.overdue_count, report.overdue_amount) == (3, Decimal("857.00"))
    assert (report.paid_count, report.paid_amount) == (1, Decimal("299.00"))
    assert [(b.key, b.count, b.amount) for b in report.buckets] == [
        ("not_due", 1, Decimal("299.00")),
        ("0-30", 1, Decimal("299.00")),
        ("31-60", 0, Decimal("0")),
        ("61-90", 1, Decimal("199.00")),
        ("90+", 1, Decimal("359.00")),
    ]
    assert (report.unmatched_count, report.unmatched_amount) == (1, Decimal("50.00"))


def test_an_invoice_due_today_is_not_overdue_but_zero_days_past_due(months) -> None:
    # (November is due on 31 December)
    report = receivables_report(today=date(2026, 12, 31))
    november = next(b for b in report.buckets if b.key == "0-30")
    assert november.count == 2  # October (30 days) and November (0 days)
    assert report.overdue_count == 3  # July, August, October: November is due today


# --- the overview in the admin ----------------------------------------------------------------

# the session and its user, then the report's three: open invoices summed by bucket, paid
# invoices, unmatched payments
OVERVIEW_QUERIES = 5


@time_machine.travel(TODAY, tick=False)
def test_finance_staff_read_the_overview_in_swedish_with_links_to_each_bucket(
    months, admin_client: Client, django_assert_num_queries
) -> None:
    with django_assert_num_queries(OVERVIEW_QUERIES):
        page = admin_client.get("/admin/invoices/receivables/").content.decode()
    assert "Kundreskontra" in page
    assert "Per 2026-12-15." in page
    # the figures, with decimal commas
    assert 'Öppna fakturor</a></th><td class="num">4</td><td class="num">1156,00</td>' in page
    assert 'Förfallna fakturor</a></th><td class="num">3</td><td class="num">857,00</td>' in page
    assert 'Betalda fakturor</a></th><td class="num">1</td><td class="num">299,00</td>' in page
    assert (
        '<a href="/admin/invoices/invoice/?aging=90+">Mer än 90 dagar efter förfallodatum</a>'
        '</th><td class="num">1</td><td class="num">359,00</td>'
    ) in page
    assert "1 ej matchad betalning, 50,00 kr, väntar på att läggas på en faktura för hand." in page


@time_machine.travel(TODAY, tick=False)
def test_the_overviews_query_count_does_not_grow_with_the_invoices(
    months, admin_client: Client, django_assert_num_queries
) -> None:
    for _ in range(3):
        SubscriptionFactory()
    bill(date(2026, 11, 1))
    with django_assert_num_queries(OVERVIEW_QUERIES):
        admin_client.get("/admin/invoices/receivables/")


@time_machine.travel(TODAY, tick=False)
def test_a_bucket_links_to_its_invoices_with_what_is_open_on_each(
    months, admin_client: Client
) -> None:
    page = admin_client.get("/admin/invoices/invoice/?aging=61-90").content.decode()
    assert f">{months['aug'].display_number}</a>" in page
    assert 'class="field-open_amount">199,00</td>' in page
    for other in ("jul", "sep", "oct", "nov"):
        assert f">{months[other].display_number}</a>" not in page
    overdue = admin_client.get("/admin/invoices/invoice/?aging=overdue").content.decode()
    listed = {
        name for name, invoice in months.items() if f">{invoice.display_number}</a>" in overdue
    }
    assert listed == {"jul", "aug", "oct"}


@time_machine.travel(TODAY, tick=False)
def test_the_invoice_list_reads_open_amounts_in_a_constant_number_of_queries(
    months, admin_client: Client, django_assert_max_num_queries
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as five:
        admin_client.get("/admin/invoices/invoice/")
    for _ in range(4):
        SubscriptionFactory()
    bill(date(2026, 11, 1))
    with CaptureQueriesContext(connection) as nine:
        admin_client.get("/admin/invoices/invoice/")
    assert len(nine.captured_queries) == len(five.captured_queries)


def test_only_staff_who_may_view_invoices_read_the_overview(client: Client) -> None:
    clerk = User.objects.create_user("clerk", password="x", is_staff=True)
    client.force_login(clerk)
    assert client.get("/admin/invoices/receivables/").status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="view_invoice"))
    assert client.get("/admin/invoices/receivables/").status_code == 200
    index = client.get("/admin/").content.decode()
    assert "Kundreskontra" in index


# --- the payment log and the unmatched queue ---------------------------------------------------


def test_the_payment_log_lists_every_payment_and_filters_by_method_status_and_date(
    months, admin_client: Client
) -> None:
    # given a credit balance spent: 100 kr paid beyond November
    pay(months["nov"], "399.00")
    (december,) = bill(date(2026, 12, 1))
    log = admin_client.get("/admin/invoices/payment/").content.decode()
    assert "Ej matchade: 1 betalning" in log  # the queue's entry, with its size
    for column in ("Betaldag", "Belopp", "Betalsätt", "Faktura", "Överskott"):  # in Swedish
        assert column in log
    assert log.count('class="field-method"') == 5  # bankgiro ×4, the credit balance ×1
    credit = admin_client.get("/admin/invoices/payment/?method__exact=credit").content.decode()
    assert credit.count('class="field-method"') == 1
    assert "Tillgodohavande" in credit
    assert f">{december.display_number}</a>" in credit or december.display_number in credit
    waiting = admin_client.get("/admin/invoices/payment/?status__exact=unmatched")
    assert waiting.content.decode().count('class="field-method"') == 1
    paid_on = Payment.objects.get(method=PaymentMethod.CREDIT).paid_on  # (December's date)
    by_day = admin_client.get(
        f"/admin/invoices/payment/?paid_on__gte={paid_on}&paid_on__lt={paid_on + timedelta(1)}"
    ).content.decode()
    assert by_day.count('class="field-method"') == 1


def test_the_payment_log_reads_in_a_constant_number_of_queries(
    months, admin_client: Client
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        admin_client.get("/admin/invoices/payment/")
    for invoice in Invoice.objects.filter(status="issued"):
        pay(invoice, "10.00")
    with CaptureQueriesContext(connection) as more:
        admin_client.get("/admin/invoices/payment/")
    assert len(more.captured_queries) == len(few.captured_queries)


def test_the_unmatched_queue_is_an_entry_of_its_own_with_its_count(
    months, admin_client: Client
) -> None:
    index = admin_client.get("/admin/").content.decode()
    assert "Ej matchade betalningar" in index
    queue = admin_client.get("/admin/invoices/unmatchedpayment/").content.decode()
    assert "Ej matchade betalningar: lägg var och en på sin faktura" in queue
    assert queue.count('class="field-method"') == 1
    payment = Payment.objects.get(status="unmatched")
    assert f"/admin/invoices/payment/{payment.id}/match/" in queue


# --- the API ---------------------------------------------------------------------------------


def staff_api(*permissions: str) -> APIClient:
    """A person of the finance staff, from their admin session."""
    user = User.objects.create_user(f"ledger-{User.objects.count()}", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    api = APIClient()
    api.force_login(user)
    return api


@time_machine.travel(TODAY, tick=False)
def test_the_aging_report_is_read_by_api(months) -> None:
    # by a source system's key with the read scope (a person's session reads the same)
    answer = keyed("read").get(API)
    assert staff_api("view_invoice").get(API).json() == answer.json()
    assert answer.status_code == 200
    body = answer.json()
    assert body["today"] == "2026-12-15"
    assert body["open"] == {"count": 4, "amount": "1156.00"}
    assert body["overdue"] == {"count": 3, "amount": "857.00"}
    assert body["paid"] == {"count": 1, "amount": "299.00"}
    assert body["unmatched"] == {"count": 1, "amount": "50.00"}
    assert body["buckets"][-1] == {
        "key": "90+",
        "days_from": 91,
        "days_to": None,
        "count": 1,
        "amount": "359.00",
    }
    assert [bucket["key"] for bucket in body["buckets"]] == [
        "not_due",
        "0-30",
        "31-60",
        "61-90",
        "90+",
    ]


def test_only_keys_that_may_read_and_staff_who_may_view_invoices_read_the_aging_report() -> None:
    assert APIClient().get(API).status_code in {401, 403}
    assert keyed("payments:write").get(API).status_code == 403
    assert staff_api().get(API).status_code == 403
    assert staff_api("view_invoice").post(API, {}, format="json").status_code == 405


def test_the_aging_report_is_in_the_schema(client: Client) -> None:
    schema = client.get("/api/schema/").content.decode()
    assert "/api/v1/payments/aging/" in schema
