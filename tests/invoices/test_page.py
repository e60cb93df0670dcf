"""The customer's invoice page, /i/<token>/: what it shows, in Swedish and English, and its cost.

Invoices are issued by the real bill run; links come from ``invoice_link_create``.
"""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.utils.html import escape

from billing.models import Discount, Plan
from invoices.charts import ChartBar, monthly_usage_chart_svg, usage_bar_svg
from invoices.models import Invoice, InvoiceStatus, PageEvent, PageEventKind
from invoices.page import _earlier_invoices, _earlier_revisions, invoice_page_context
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.credit_notes import credit_note_issue
from invoices.services.links import invoice_link_create
from invoices.services.status import invoice_set_status
from tests.factories import (
    CustomerFactory,
    PlanFactory,
    RoamingZoneFactory,
    SubscriptionFactory,
    UsageRecordFactory,
)

pytestmark = pytest.mark.django_db

STOCKHOLM = ZoneInfo("Europe/Stockholm")
SEP = date(2026, 9, 1)
OCT = date(2026, 10, 1)
# "Today" for every test: two days after the October invoice was issued.
TODAY = datetime(2026, 11, 3, 12, 0, tzinfo=STOCKHOLM)
BINDING_END = date(2027, 3, 31)
DAYS_LEFT = (BINDING_END - TODAY.date()).days  # 148


@pytest.fixture(autouse=True)
def _frozen_today():
    with time_machine.travel(TODAY, tick=False):
        yield


def bill(period: date) -> None:
    """Issue every invoice of ``period`` with the real bill run, dated the next month's 1st."""
    invoice_date = date(period.year + period.month // 12, period.month % 12 + 1, 1)
    run = bill_run_start(period=period, invoice_date=invoice_date)
    bill_run_execute(bill_run_id=run.id)


def data(sub, mb: str, day: date) -> None:
    UsageRecordFactory(
        subscription=sub,
        kind="data",
        quantity=Decimal(mb),
        occurred_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
    )


def page_text(response) -> str:
    """The page's visible text, whitespace collapsed (tags dropped)."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"\s+", " ", text.replace("\xa0", " "))


def without_csrf_tokens(response) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


@pytest.fixture
def october():
    """A 10 GB plan (299 kr, binding to 2027-03-31): 8 GB used in September, 14.2 GB in
    October, so October adds 5 started GB at 29 kr = 145 kr."""
    sub = SubscriptionFactory(label="Anna", binding_end=BINDING_END)
    data(sub, "8192", date(2026, 9, 10))
    data(sub, "14540.8", date(2026, 10, 5))
    bill(SEP)
    bill(OCT)
    invoice = Invoice.objects.get(customer=sub.customer, period_start=OCT)
    return invoice, invoice_link_create(invoice=invoice)


def test_swedish_page_shows_amount_lines_usage_binding_and_difference(client: Client, october):
    # given the October invoice of a Swedish customer
    invoice, token = october
    # when the customer opens the link
    response = client.get(f"/i/{token}/")
    # then the amount, the due date, how to pay, each line and why, usage, binding and the
    # difference from September are there, in Swedish
    assert response.status_code == 200
    text = page_text(response)
    assert "Att betala 444,00 kr" in text
    assert "Förfallodatum 1 december 2026" in text
    assert f"OCR-nummer {invoice.ocr}" in text
    assert "Bankgiro 5050-1055" in text
    for line in invoice.lines.all():
        assert line.text("sv")["title"] in text
        assert line.text("sv")["detail"] in text
    assert "Surf 14,2 GB av 10 GB använt (142 %)" in text
    assert "4,2 GB utöver det som ingår" in text
    assert "Din bindningstid slutar 31 mars 2027." in text
    assert f"{DAYS_LEFT} dagar kvar" in text
    assert "Uppsägningstid 1 månad" in text
    assert "fortsätter ditt abonnemang månad för månad för 299,00 kr i månaden" in text
    assert "145,00 kr mer än förra månaden" in text
    assert "Surf utöver det som ingår +145,00 kr Nytt för i månad: du använde 14,2 GB" in text
    assert '<html lang="sv">' in response.content.decode()


def test_english_page_shows_the_same_in_english(client: Client, october):
    # given the October invoice of a Swedish customer
    invoice, token = october
    # when the page is opened with the language switched to English
    response = client.get(f"/i/{token}/?lang=en")
    # then the same facts are shown in English
    text = page_text(response)
    assert "Amount to pay 444.00 kr" in text
    assert "Due date 1 December 2026" in text
    assert f"OCR reference {invoice.ocr}" in text
    for line in invoice.lines.all():
        assert line.text("en")["title"] in text
    assert "14.5 GB started beyond" not in text  # the English line text is the stored one
    assert "Data 14.2 GB of 10 GB used (142%)" in text
    assert "Your binding period ends on 31 March 2027." in text
    assert f"{DAYS_LEFT} days left" in text
    assert "Notice period 1 month" in text
    assert "145.00 kr more than last month" in text
    assert "Data beyond what is included +145.00 kr New this month: you used 14.2 GB" in text
    assert '<html lang="en">' in response.content.decode()


def test_language_switch_links_to_both_languages_and_marks_the_current(client, october):
    _invoice, token = october
    html = client.get(f"/i/{token}/?lang=en").content.decode()
    assert '<a href="?lang=sv" lang="sv" hreflang="sv">Svenska</a>' in html
    assert 'href="?lang=en" lang="en" hreflang="en" aria-current="true"' in html


def test_page_opens_in_the_customers_language_without_a_switch(client: Client):
    # given an English-speaking customer
    sub = SubscriptionFactory(customer=CustomerFactory(language="en"))
    bill(OCT)
    token = invoice_link_create(invoice=Invoice.objects.get(customer=sub.customer))
    # when the link is opened without ?lang
    text = page_text(client.get(f"/i/{token}/"))
    # then the page is in English
    assert "What you pay and why" in text
    assert "Vad du betalar och varför" not in text


def test_lines_are_grouped_per_subscription_with_rounding_last(client: Client):
    # given two subscriptions at prices with öre, so the invoice has a rounding line
    customer = CustomerFactory()
    first = SubscriptionFactory(customer=customer, label="Anna", agreed_monthly_price="199.30")
    second = SubscriptionFactory(customer=customer, label="Bertil", agreed_monthly_price="99.00")
    bill(OCT)
    invoice = Invoice.objects.get(customer=customer)
    # when the page's context is built
    groups = invoice_page_context(invoice, "sv")["groups"]
    # then one group per subscription in order, each with its own lines, and the rounding last
    assert [g["id"] for g in groups] == [first.id, second.id, None]
    assert [g["heading"] for g in groups] == ["Anna", "Bertil", "Övrigt"]
    assert [line["kind"] for line in groups[2]["lines"]] == ["rounding"]
    assert groups[0]["subtotal"] == "199,30\xa0kr"
    assert sum(g["subtotal_value"] for g in groups) == invoice.total == Decimal("298.00")


def test_difference_names_each_reason_and_they_add_up_to_the_change(client: Client):
    # given September: a subscription with a 50 kr discount that ends in September;
    # October: the discount is gone, data overage appears, and a second number starts mid-month
    customer = CustomerFactory()
    anna = SubscriptionFactory(customer=customer, label="Anna")
    Discount.objects.create(
        subscription=anna,
        description="Välkomstrabatt",
        monthly_amount=Decimal("50.00"),
        valid_from=date(2026, 1, 1),
        valid_until=date(2026, 9, 30),
    )
    data(anna, "12288", date(2026, 10, 5))  # 12 GB: 2 GB beyond 10 GB
    SubscriptionFactory(customer=customer, label="Bertil", start_date=date(2026, 10, 17))
    bill(SEP)
    bill(OCT)
    invoice = Invoice.objects.get(customer=customer, period_start=OCT)
    september = Invoice.objects.get(customer=customer, period_start=SEP)
    # when the comparison is computed
    comparison = invoice_page_context(invoice, "en")["comparison"]
    # then every reason is named with its kronor, and together they make the difference
    amounts = {r["code"]: r["amount_value"] for r in comparison["reasons"]}
    assert amounts == {
        "discount_ended": Decimal("50.00"),
        "overage_appeared": Decimal("58.00"),
        "new_subscription": Decimal("144.68"),  # 15 of 31 days of 299 kr
        "rounding": Decimal("0.32"),
    }
    assert (
        sum(amounts.values()) == invoice.total - september.total == comparison["difference_value"]
    )
    assert comparison["headline"] == "253.00\xa0kr more than last month"
    # and, with two subscriptions, each reason says which one it concerns
    subjects = {r["code"]: r["subject"] for r in comparison["reasons"]}
    assert comparison["several"] is True
    assert subjects["discount_ended"] == "Anna (Mobil 10 GB)"
    assert subjects["new_subscription"] == "Bertil (Mobil 10 GB)"
    assert subjects["rounding"] == ""


def test_difference_explains_proration_when_a_subscription_started_last_month(client: Client):
    # given a subscription that started on 16 September: half a month, then a full October
    sub = SubscriptionFactory(start_date=date(2026, 9, 16))
    bill(SEP)
    bill(OCT)
    invoice = Invoice.objects.get(customer=sub.customer, period_start=OCT)
    # when the comparison is computed
    reasons = invoice_page_context(invoice, "en")["comparison"]["reasons"]
    # then the change in the monthly fee is explained as days charged
    proration = next(r for r in reasons if r["code"] == "proration")
    assert proration["amount_value"] == Decimal("299.00") - Decimal("149.50")
    assert "15 of 30 days last month" in proration["detail"]
    assert "31 of 31 days this month" in proration["detail"]


def test_first_invoice_says_there_is_nothing_to_compare_yet(client: Client):
    sub = SubscriptionFactory()
    bill(OCT)
    token = invoice_link_create(invoice=Invoice.objects.get(customer=sub.customer))
    text = page_text(client.get(f"/i/{token}/?lang=en"))
    assert "This is your first invoice, so there is nothing to compare with yet." in text


def test_chart_shows_six_months_from_earlier_invoices_snapshots():
    # given seven months of invoices with growing data use
    sub = SubscriptionFactory()
    months = [date(2026, m, 1) for m in range(4, 11)]
    for gb, month in enumerate(months, start=1):
        data(sub, str(gb * 1024), month.replace(day=3))
        bill(month)
    invoice = Invoice.objects.get(customer=sub.customer, period_start=OCT)
    # when the page's context is built
    chart = invoice_page_context(invoice, "sv")["chart"]
    # then the last six months (May–October) are charted, with a text equivalent and a table
    assert [row["month"] for row in chart["rows"]] == [
        "maj 2026",
        "juni 2026",
        "juli 2026",
        "augusti 2026",
        "september 2026",
        "oktober 2026",
    ]
    assert [row["data"] for row in chart["rows"]] == [f"{n}\xa0GB" for n in range(2, 8)]
    assert chart["svg"].startswith('<svg class="usage-chart"')
    assert 'role="img"' in chart["svg"]
    assert "oktober 2026: 7\xa0GB" in chart["svg"]
    assert chart["svg"].count("<rect") == 6


def test_earlier_invoices_are_listed_with_number_period_total_and_status(client, october):
    invoice, token = october
    september = Invoice.objects.get(customer=invoice.customer, period_start=SEP)
    with transaction.atomic():
        invoice_set_status(
            invoice=Invoice.objects.select_for_update().get(id=september.id), status="paid"
        )
    text = page_text(client.get(f"/i/{token}/?lang=en"))
    assert f"September 2026 299.00 kr Invoice {september.display_number} Status: Paid" in text


def test_an_earlier_invoice_paid_after_the_page_was_cached_shows_as_paid(client, october):
    # given the page was rendered (and cached) while September was unpaid
    invoice, token = october
    september = Invoice.objects.get(customer=invoice.customer, period_start=SEP)
    before = page_text(client.get(f"/i/{token}/?lang=en"))
    assert f"Invoice {september.display_number} Status: Not paid yet" in before
    # when September is paid
    with transaction.atomic():
        invoice_set_status(
            invoice=Invoice.objects.select_for_update().get(id=september.id), status="paid"
        )
    # then the October page lists it as paid
    text = page_text(client.get(f"/i/{token}/?lang=en"))
    assert f"Invoice {september.display_number} Status: Paid" in text


def test_the_cache_keys_raw_query_reads_the_same_invoices_as_the_page():
    # given seven months of invoices for one customer and one for another
    sub = SubscriptionFactory()
    SubscriptionFactory()
    for month in range(4, 11):
        bill(date(2026, month, 1))
    invoice = Invoice.objects.get(customer=sub.customer, period_start=OCT)
    # then the raw (id, revision) query and the ORM query agree, newest first, five of them
    expected = list(_earlier_invoices(invoice).values_list("id", "revision"))
    assert _earlier_revisions(invoice) == expected
    assert len(expected) == 5


def test_binding_period_that_has_ended_says_what_happens_now(client: Client):
    sub = SubscriptionFactory(binding_end=date(2026, 6, 30), notice_period_months=1)
    bill(OCT)
    invoice = Invoice.objects.get(customer=sub.customer)
    binding = invoice_page_context(invoice, "en")["binding"][0]
    assert binding["state"] == "ended"
    assert binding["headline"] == "Your binding period ended on 30 June 2026."
    assert binding["after"] == (
        "Your plan continues month to month at 299.00\xa0kr a month; "
        "you can change or cancel it with one month's notice."
    )


def test_no_binding_period_says_so():
    sub = SubscriptionFactory(binding_end=None)
    bill(OCT)
    binding = invoice_page_context(Invoice.objects.get(customer=sub.customer), "sv")["binding"]
    assert binding[0]["state"] == "none"
    assert binding[0]["headline"] == "Ingen bindningstid."


def test_value_summary_shows_cost_per_gb_and_share_of_allowance(october):
    invoice, _token = october
    items = {i["label"]: i for i in invoice_page_context(invoice, "en")["value"]["items"]}
    assert items["Cost this month"]["value"] == "444.00\xa0kr"
    assert items["Data used"]["value"] == "14.2\xa0GB"
    assert items["Data used"]["note"] == "142% of the 10 GB included"
    assert items["Per GB used"]["value"] == "31.27\xa0kr"  # 444 / 14.2
    assert items["Per day"]["value"] == "14.32\xa0kr"  # 444 / 31


def test_unlimited_plan_shows_usage_without_a_scale():
    plan = PlanFactory(code="fri", name="Fri surf", data_included_gb=None)
    sub = SubscriptionFactory(plan=plan)
    data(sub, "30720", date(2026, 10, 2))
    bill(OCT)
    meter = invoice_page_context(Invoice.objects.get(customer=sub.customer), "en")["usage"][0][
        "meters"
    ][0]
    assert meter["text"] == "30\xa0GB used, unlimited included"
    assert meter["unlimited"] is True
    assert meter["svg"] == ""  # nothing to draw against


def test_credit_note_is_shown_with_amount_and_reason_and_reduces_what_is_left(client, october):
    # given the data overage line of October is credited
    invoice, token = october
    overage = invoice.lines.get(kind="data_overage")
    note = credit_note_issue(invoice_id=invoice.id, reason="Fel i mätningen", line_ids=[overage.id])
    # when the page is opened
    text = page_text(client.get(f"/i/{token}/"))
    # then the credit note, its amount and reason are shown, and 299 kr is left to pay
    assert f"Kreditfaktura {note.display_number}" in text
    assert "−145,00 kr" in text
    assert "Anledning: Fel i mätningen" in text
    assert "Att betala 299,00 kr" in text
    assert f"Krediterad genom kreditfaktura {note.display_number}" in text


def test_paid_invoice_shows_nothing_to_pay(client, october):
    invoice, token = october
    with transaction.atomic():
        invoice_set_status(
            invoice=Invoice.objects.select_for_update().get(id=invoice.id), status="paid"
        )
    text = page_text(client.get(f"/i/{token}/?lang=en"))
    assert "Nothing to pay. Thank you!" in text
    assert "How to pay" not in text


def test_a_new_revision_re_renders_the_cached_page(client: Client, october):
    # given the page was rendered once (and cached)
    invoice, token = october
    assert "Amount to pay 444.00 kr" in page_text(client.get(f"/i/{token}/?lang=en"))
    # when the status changes without a new revision, the cached page is still served
    Invoice.objects.filter(id=invoice.id).update(status=InvoiceStatus.PAID)
    assert "Amount to pay 444.00 kr" in page_text(client.get(f"/i/{token}/?lang=en"))
    # then a new revision renders the page again
    Invoice.objects.filter(id=invoice.id).update(revision=invoice.revision + 1)
    text = page_text(client.get(f"/i/{token}/?lang=en"))
    assert "Amount to pay" not in text
    assert "Nothing to pay. Thank you!" in text


def test_each_language_is_cached_separately(client: Client, october):
    _invoice, token = october
    client.get(f"/i/{token}/?lang=sv")
    assert "What you pay and why" in page_text(client.get(f"/i/{token}/?lang=en"))


def test_first_open_records_first_opened(client: Client, october):
    invoice, token = october
    client.get(f"/i/{token}/")
    assert list(PageEvent.objects.filter(invoice=invoice).values_list("kind", flat=True)) == [
        PageEventKind.FIRST_OPENED
    ]


def test_second_open_records_opened_again(client: Client, october):
    invoice, token = october
    client.get(f"/i/{token}/")
    cache.clear()  # the re-open throttle window has passed
    client.get(f"/i/{token}/")
    kinds = list(PageEvent.objects.filter(invoice=invoice).values_list("kind", flat=True))
    assert kinds == [PageEventKind.FIRST_OPENED, PageEventKind.OPENED_AGAIN]


def test_reloads_within_the_window_record_one_open(client: Client, october):
    invoice, token = october
    client.get(f"/i/{token}/")
    client.get(f"/i/{token}/")
    assert PageEvent.objects.filter(invoice=invoice).count() == 1


def _customer_with(subscriptions: int) -> str:
    """A customer with ``subscriptions`` numbers, each with usage and a discount, billed for
    three months; returns a link to the last invoice."""
    customer = CustomerFactory()
    for n in range(subscriptions):
        sub = SubscriptionFactory(customer=customer, label=f"Nummer {n}")
        Discount.objects.create(
            subscription=sub,
            description="Rabatt",
            monthly_amount=Decimal("10.00"),
            valid_from=date(2026, 1, 1),
            valid_until=date(2026, 9, 30),
        )
        for month in (8, 9, 10):
            data(sub, str(1024 * (9 + n + month % 3)), date(2026, month, 4))
    for month in (8, 9, 10):
        bill(date(2026, month, 1))
    invoice = Invoice.objects.get(customer=customer, period_start=OCT)
    credit_note_issue(invoice_id=invoice.id, reason="Goodwill", line_ids=[invoice.lines.first().id])
    return invoice_link_create(invoice=invoice)


# token + page event (exists, insert) + what is owed with the due date now (a reminder or a
# postponement may have moved it: dunning.selectors.invoice_debt) + the dunning policy (the
# ways out the page offers: dunning.page) + earlier invoices' revisions (cache key) +
# earlier invoices + lines of this and the previous invoice + credit notes + payments + the
# offers part (consent in force, the offers to show: offers.page) + the chat panel (the
# conversation with its newest messages, whether an agent is online: chat.panel).
PAGE_QUERIES_UNCACHED = 14
# token + what is owed + the policy + earlier invoices' revisions: the document and the
# offers part come from the cache (the offers part with its CSRF token filled in per request),
# the open is throttled; the chat panel's two queries are made on every request (it shows the
# conversation as it is now).
PAGE_QUERIES_CACHED = 6


@pytest.mark.parametrize("subscriptions", [1, 8])
def test_query_count_is_constant_however_many_subscriptions(
    client: Client, django_assert_num_queries, subscriptions: int
):
    # given a customer with 1 or 8 subscriptions, three months of invoices and a credit note
    token = _customer_with(subscriptions)
    cache.clear()
    # when the page is opened the first time, then again
    with django_assert_num_queries(PAGE_QUERIES_UNCACHED):
        first = client.get(f"/i/{token}/")
    with django_assert_num_queries(PAGE_QUERIES_CACHED):
        again = client.get(f"/i/{token}/")
    # then the query count does not grow with the number of subscriptions or lines
    assert first.status_code == again.status_code == 200
    # the same page, but for the CSRF token of the offers part's forms (masked per request)
    assert without_csrf_tokens(first) == without_csrf_tokens(again)
    assert page_text(first).count("Nummer ") >= 3 * subscriptions


def test_plan_used_by_the_factories_is_the_ten_gb_one():
    # guards the figures above: 299 kr for 10 GB, 29 kr per started GB beyond
    plan = PlanFactory()
    assert (plan.monthly_fee, plan.data_included_gb, plan.data_overage_per_gb) == (
        Decimal("299.00"),
        Decimal("10"),
        Decimal("29.00"),
    )
    assert Plan.objects.count() == 1


# --- charts -----------------------------------------------------------------------------------


def test_usage_bar_over_the_allowance_draws_the_part_beyond_in_amber():
    svg = usage_bar_svg(used=Decimal("15"), included=Decimal("10"), label="15 of 10 GB")
    assert 'fill="#b45309"' in svg
    assert 'aria-label="15 of 10 GB"' in svg
    assert "<title>15 of 10 GB</title>" in svg


def test_usage_bar_within_the_allowance_has_no_amber():
    svg = usage_bar_svg(used=Decimal("4"), included=Decimal("10"), label="4 of 10 GB")
    assert 'fill="#b45309"' not in svg
    assert 'width="120"' in svg  # 4/10 of 300


def test_chart_labels_are_escaped():
    label = '<script>alert("x")</script>'
    svg = monthly_usage_chart_svg(
        bars=[ChartBar(label=label, value=Decimal(1), value_label=label, current=True)],
        label=label,
    )
    assert "<script>" not in svg
    assert escape(label) in svg


def test_chart_marks_each_months_own_allowance_when_it_changes():
    # given two months: one subscription (10 GB) in September, two (20 GB) in October
    bars = [
        ChartBar(label="sep", value=Decimal(8), value_label="8", allowance=Decimal(10)),
        ChartBar(label="okt", value=Decimal(12), value_label="12", allowance=Decimal(20)),
    ]
    # when the chart is drawn
    svg = monthly_usage_chart_svg(bars=bars, label="x", allowance_label="Included that month")
    # then each month has its own dashed mark, at different heights, and a legend
    marks = re.findall(r'<line x1="[\d.]+" y1="([\d.]+)"[^>]*stroke-dasharray', svg)
    assert len(marks) == 3  # two months and the legend's sample
    assert marks[0] != marks[1]
    assert "Included that month" in svg


def test_chart_without_a_legend_draws_no_allowance_marks():
    bars = [ChartBar(label="okt", value=Decimal(12), value_label="12", allowance=Decimal(20))]
    assert "stroke-dasharray" not in monthly_usage_chart_svg(bars=bars, label="x")


def test_a_credit_notes_own_page_says_what_it_corrects_and_why(client: Client, october):
    # given a credit note for October's data overage, with a link of its own
    invoice, _token = october
    overage = invoice.lines.get(kind="data_overage")
    note = credit_note_issue(invoice_id=invoice.id, reason="Fel i mätningen", line_ids=[overage.id])
    token = invoice_link_create(invoice=note)
    # when its link is opened
    text = page_text(client.get(f"/i/{token}/"))
    # then it is a credit note, not a bill: what it credits, why, and nothing to pay
    assert f"Kreditfaktura {note.display_number}" in text
    assert "Krediteras dig 145,00 kr" in text
    assert f"Den här kreditfakturan rättar faktura {invoice.display_number}." in text
    assert "Anledning: Fel i mätningen" in text
    assert "Så betalar du" not in text


# --- the messages that carry the link -----------------------------------------------------------


def test_the_sms_keeps_to_the_gsm_alphabet_and_formats_money_in_swedish(sms_outbox):
    # given a Swedish customer who gets invoices by SMS, with an invoice over 1 000 kr
    customer = CustomerFactory(delivery_method="sms")
    SubscriptionFactory(customer=customer, agreed_monthly_price=Decimal("1299.00"))
    bill(OCT)
    # when the invoice is delivered
    from invoices.services.delivery import invoice_deliver

    message = invoice_deliver(invoice=Invoice.objects.get(customer=customer))[0]
    # then the amount and date read as Swedish, with plain spaces only
    assert "din faktura på 1 299,00 kr förfaller 1 december 2026" in message.body_text
    assert "\xa0" not in message.body_text


def test_difference_explains_what_went_away_roaming_overage_and_a_number():
    # given September: Anna roams outside the EU/EEA and uses 12 GB, Bertil's number is active;
    # October: no roaming, 5 GB, and Bertil's number ended on 30 September
    RoamingZoneFactory()
    customer = CustomerFactory()
    anna = SubscriptionFactory(customer=customer, label="Anna")
    SubscriptionFactory(customer=customer, label="Bertil", end_date=date(2026, 9, 30))
    data(anna, "12288", date(2026, 9, 5))
    UsageRecordFactory(
        subscription=anna,
        quantity=Decimal("100"),
        occurred_at=datetime(2026, 9, 8, 12, tzinfo=UTC),
        country="US",
    )
    data(anna, "5120", date(2026, 10, 5))
    bill(SEP)
    bill(OCT)
    invoice = Invoice.objects.get(customer=customer, period_start=OCT)
    september = Invoice.objects.get(customer=customer, period_start=SEP)
    # when the comparison is computed
    comparison = invoice_page_context(invoice, "en")["comparison"]
    # then each thing that went away is a reason with its kronor, and they add up
    amounts = {r["code"]: r["amount_value"] for r in comparison["reasons"]}
    assert amounts == {
        "subscription_ended": Decimal("-299.00"),
        "overage_gone": Decimal("-58.00"),
        "roaming": Decimal("-50.00"),  # 100 MB at 0.50 kr
    }
    assert sum(amounts.values()) == invoice.total - september.total
    assert comparison["headline"] == "407.00\xa0kr less than last month"


def test_days_left_count_from_today_in_stockholm_not_utc(client: Client, october):
    # given it is 23:30 UTC on 3 November, which is already 4 November in Stockholm
    _invoice, token = october
    with time_machine.travel(datetime(2026, 11, 3, 23, 30, tzinfo=UTC), tick=False):
        # when the page is opened
        text = page_text(client.get(f"/i/{token}/?lang=en"))
    # then the days left count from 4 November
    assert f"{(BINDING_END - date(2026, 11, 4)).days} days left" in text


def test_a_vat_free_line_has_its_own_row_in_the_vat_summary(client: Client):
    # given an invoice with a VAT-free one-off charge beside the 25 % fee
    from billing.models import OneOffCharge

    sub = SubscriptionFactory()
    OneOffCharge.objects.create(
        subscription=sub,
        description="Avgift utan moms",
        amount=Decimal("100"),
        vat_rate=Decimal("0"),
        charge_date=date(2026, 10, 2),
    )
    bill(date(2026, 10, 1))
    invoice = Invoice.objects.get()
    # then the page lists both rates
    rates = invoice_page_context(invoice, "en")["vat"]["rates"]
    assert [(row["base"], row["vat"]) for row in rates] == [
        ("100.00\u00a0kr", "0.00\u00a0kr"),
        ("239.20\u00a0kr", "59.80\u00a0kr"),
    ]
