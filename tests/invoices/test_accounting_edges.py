"""The accounting export's edges: the API for source systems (a key with scope read) and the
admin page for finance staff (the export's permission), each giving the same SIE file."""

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.test import Client
from rest_framework.test import APIClient

from invoices.models import Invoice
from tests.api import keyed
from tests.chat.conftest import issue_october
from tests.factories import SubscriptionFactory
from tests.invoices.bookings import bank_paid

pytestmark = pytest.mark.django_db

URL = "/api/v1/accounting/sie/"
PAGE = "/admin/reports/accounting/"


@pytest.fixture
def october() -> Invoice:
    """A 299 kr invoice of 1 November 2026, paid on 5 November."""
    SubscriptionFactory(agreed_monthly_price=Decimal("299.00"))
    (invoice,) = issue_october()
    bank_paid(invoice.ocr or "", "299.00", day="20261105")
    return invoice


def staff(client: Client, *codenames: str, username: str = "ekonomi") -> Client:
    user = User.objects.create_user(username, password="pw-for-tests-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def content(response) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(response.streaming_content)


# --- the API -------------------------------------------------------------------------------------


def test_a_source_system_downloads_the_month_s_file(october: Invoice) -> None:
    answer = keyed("read").get(URL, {"from": "2026-11-01", "to": "2026-11-30"})
    assert answer.status_code == 200
    assert answer["Content-Type"] == "text/plain; charset=IBM437"
    assert answer["Content-Disposition"] == (
        'attachment; filename="touchpoint-20261101-20261130.si"'
    )
    data = content(answer)
    assert int(answer["Content-Length"]) == len(data)
    text = data.decode("cp437")
    assert text.startswith("#FLAGGA 0\r\n")
    assert f'#VER F "" 20261101 "Faktura {october.display_number}, kund ' in text
    assert '#VER I "" 20261105 "Betalning ' in text
    assert "#TRANS 1510 {} -299.00\r\n" in text


def test_days_that_are_missing_wrong_or_backwards_are_refused(october: Invoice) -> None:
    api = keyed("read")
    missing = api.get(URL, {"from": "2026-11-01"})
    assert missing.status_code == 400
    assert missing.json()["code"] == "invalid"
    assert "to" in missing.json()["fields"]
    wrong = api.get(URL, {"from": "2026-11-31", "to": "2026-12-01"})
    assert wrong.status_code == 400
    assert "from" in wrong.json()["fields"]
    ancient = api.get(URL, {"from": "0001-01-01", "to": "2026-12-01"})
    assert ancient.status_code == 400
    backwards = api.get(URL, {"from": "2026-12-01", "to": "2026-11-01"})
    assert backwards.status_code == 400
    assert backwards.json()["code"] == "period_invalid"


def test_without_a_key_the_api_answers_401_and_without_the_scope_403(october: Invoice) -> None:
    period = {"from": "2026-11-01", "to": "2026-11-30"}
    anonymous = APIClient().get(URL, period)
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"
    assert keyed("usage:write").get(URL, period).status_code == 403


def test_staff_need_the_export_s_permission_in_the_api_too(
    client: Client, october: Invoice
) -> None:
    period = {"from": "2026-11-01", "to": "2026-11-30"}
    viewer = staff(client, "view_invoice")
    assert viewer.get(URL, period).status_code == 403
    exporter = staff(Client(), "export_accounting", username="bokforing")
    assert exporter.get(URL, period).status_code == 200


# --- the admin page ------------------------------------------------------------------------------


def test_finance_staff_pick_a_period_and_download_the_file(
    client: Client, october: Invoice
) -> None:
    finance = staff(client, "view_invoice", "export_accounting", "change_accountingsettings")
    # the finance report links to the export
    report = finance.get("/admin/reports/finance/").content.decode()
    assert PAGE in report
    # the page names the accounts the file books on, and offers last month by default
    with time_machine.travel(datetime(2026, 12, 10, 9, tzinfo=UTC)):
        page = finance.get(PAGE)
    assert page.status_code == 200
    text = page.content.decode()
    assert "1510 Kundfordringar" in text
    assert "2420 Förskott från kunder" in text
    assert '<input type="date" name="first" value="2026-11-01"' in text
    assert "/admin/invoices/accountingsettings/1/change/" in text
    # the download is the period's file, made by them
    answer = finance.get(PAGE, {"first": "2026-11-01", "last": "2026-11-30", "download": "sie"})
    assert answer.status_code == 200
    assert answer["Content-Disposition"] == (
        'attachment; filename="touchpoint-20261101-20261130.si"'
    )
    data = content(answer).decode("cp437")
    assert re.search(r'^#GEN \d{8} "ekonomi"\r$', data, re.MULTILINE)
    assert f"Faktura {october.display_number}" in data


def test_a_backwards_period_is_shown_as_an_error_not_downloaded(client: Client) -> None:
    finance = staff(client, "export_accounting")
    page = finance.get(PAGE, {"first": "2026-12-01", "last": "2026-11-01", "download": "sie"})
    assert page.status_code == 200
    assert "Första dagen kommer efter den sista." in page.content.decode()


def test_staff_without_the_export_s_permission_are_refused(client: Client) -> None:
    viewer = staff(client, "view_invoice")
    assert viewer.get(PAGE).status_code == 403
    assert PAGE not in viewer.get("/admin/reports/finance/").content.decode()


def test_the_settings_open_as_their_one_row(client: Client) -> None:
    finance = staff(client, "view_accountingsettings", "change_accountingsettings")
    listed = finance.get("/admin/invoices/accountingsettings/")
    assert listed.status_code == 302
    assert listed["Location"] == "/admin/invoices/accountingsettings/1/change/"
    form = finance.get(listed["Location"]).content.decode()
    assert "Förskott från kunder, t.ex. 2420" in form
    assert finance.get("/admin/invoices/accountingsettings/add/").status_code == 403


def test_the_period_s_days_are_checked(client: Client) -> None:
    finance = staff(client, "export_accounting")
    page = finance.get(PAGE, {"first": "1800-01-01", "last": "2026-11-01", "download": "sie"})
    assert page.status_code == 200
    assert "Välj dagar från 1900 till 2199." in page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_export_reads_the_database_as_of_one_moment(postgres: None) -> None:
    """(A credit note or refund committed while the file is written is in it with its move
    of surplus, or neither is.)"""
    from datetime import date

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from invoices.accounting import accounting_sie_file

    SubscriptionFactory()
    issue_october()
    with CaptureQueriesContext(connection) as done:
        made = accounting_sie_file(
            first=date(2026, 11, 1), last=date(2026, 11, 30), generated_by="test"
        )
    made.close()
    statements = [query["sql"] for query in done.captured_queries if query["sql"] != "BEGIN"]
    assert statements[0] == "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"
    assert not connection.in_atomic_block
