"""The finance report: invoiced, credited, paid, open and overdue by month, VAT per rate and
month, as a page with a chart and as CSV."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client

from invoices.models import Invoice
from invoices.reports import finance_report
from invoices.services.credit_notes import credit_note_issue
from invoices.services.payments import bgmax_import
from tests.billing.bgmax_files import Deposit, File, Paid, bgmax_file
from tests.chat.conftest import issue_october
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db
NOV = date(2026, 11, 1)


@pytest.fixture
def october() -> list[Invoice]:
    """Three October invoices dated 1 November: 100, 200 and 400 kr; today (1 December) the
    first is paid, the second credited, and the third stays open (overdue by 15 December)."""
    for price in ("100.00", "200.00", "400.00"):
        SubscriptionFactory(agreed_monthly_price=Decimal(price))
    first, second, third = sorted(issue_october(), key=lambda i: i.total)
    bgmax_import(data=bgmax_file(File([Deposit([Paid(10000, first.ocr)])])), name="a.txt")
    credit_note_issue(invoice_id=second.id, reason="Wrong plan")
    return [first, second, third]


def test_months_add_up(october: list[Invoice]) -> None:
    # (the credit note and the payment are dated today, 1 December)
    report = finance_report(first=NOV, last=date(2026, 12, 31), today=date(2026, 12, 15))
    november, december = report.months
    assert (november.month, november.invoices, november.invoiced) == (NOV, 3, Decimal("700.00"))
    assert november.open == november.overdue == Decimal("400.00")
    assert (december.credit_notes, december.credited) == (1, Decimal("200.00"))
    assert december.paid == Decimal("100.00")
    assert report.totals.invoiced - report.totals.credited == Decimal("500.00")
    # VAT 25 % per month: the invoices in November, the credit note (negative) in December
    assert [(v.month.month, v.rate, v.base + v.vat, v.vat) for v in report.vat] == [  # (equal
        # as numbers, whatever their decimal places)
        (11, Decimal("25.00"), Decimal("700.00"), Decimal("140.00")),
        (12, Decimal("25.00"), Decimal("-200.00"), Decimal("-40.00")),
    ]


def test_before_the_due_date_nothing_is_overdue(october: list[Invoice]) -> None:
    report = finance_report(first=NOV, last=date(2026, 11, 30), today=date(2026, 11, 2))
    assert (report.months[0].open, report.months[0].overdue) == (Decimal("400.00"), 0)


def test_finance_staff_read_the_report_with_a_chart_and_download_csv(
    october: list[Invoice], admin_client: Client
) -> None:
    with time_machine.travel(date(2026, 12, 15)):
        page = admin_client.get("/admin/reports/finance/?start=2026-10&end=2026-12")
        csv = admin_client.get("/admin/reports/finance/?start=2026-10&end=2026-12&download=months")
        vat = admin_client.get("/admin/reports/finance/?start=2026-10&end=2026-12&download=vat")
    text = page.content.decode().replace("\xa0", " ")
    assert "Fakturerat och betalt per månad" in text
    assert "<svg" in text
    assert "700,00" in text
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "month,invoices,invoiced,credit_notes,credited,paid,open,overdue"
    assert lines[1] == "2026-10,0,0.00,0,0.00,0.00,0.00,0.00"
    assert lines[2] == "2026-11,3,700.00,0,0.00,0.00,400.00,400.00"
    assert lines[3] == "2026-12,0,0.00,1,200.00,100.00,0.00,0.00"
    assert vat.content.decode("utf-8-sig").splitlines()[1:] == [
        "2026-11,25.00,560.00,140.00",
        "2026-12,25.00,-160.00,-40.00",
    ]
    assert csv["Content-Disposition"] == 'attachment; filename="months-2026-10-2026-12.csv"'


def test_a_wrong_range_is_said_and_staff_without_the_permission_are_refused(
    admin_client: Client, client: Client
) -> None:
    page = admin_client.get("/admin/reports/finance/?start=2026-11&end=2026-10")
    assert "Första månaden kommer efter den sista." in page.content.decode()
    client.force_login(User.objects.create_user("clerk", is_staff=True))
    assert client.get("/admin/reports/finance/").status_code == 403
    assert "Ekonomirapport" in admin_client.get("/admin/").content.decode()
