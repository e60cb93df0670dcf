"""The campaign report: treatment against holdout, on a small data set checked by hand.

Ten treatment and ten holdout customers, one subscription each on Mobil 30 GB at 399 kr,
each with an offer of Mobil 3 GB at 199 kr created on 15 October 2026 (valid until 14
November); the report is read on 22 November. What each customer did is written next to
them below, and every expected figure is counted from that list.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import translation

from billing.models import ConsentKind, Plan, Subscription
from billing.services import consent_give, plan_change_request, plan_change_undo
from invoices.models import Invoice, InvoiceSeries
from offers.models import Campaign, Group, Offer, OfferStatus
from offers.selectors import campaign_report, difference_interval
from offers.services import offer_accept, offer_event_record
from tests.factories import PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 22)
OFFERED_AT = datetime(2026, 10, 15, 8, tzinfo=UTC)
VALID_UNTIL = date(2026, 11, 14)


# --- the confidence interval, against hand computations -------------------------------


def test_the_uplift_interval_is_the_wald_interval_of_two_proportions() -> None:
    # 3/10 against 1/10: d = 0.3 − 0.1 = 0.2
    # SE = √(0.3 · 0.7 / 10 + 0.1 · 0.9 / 10) = √(0.021 + 0.009) = √0.03 = 0.173205
    # 1.96 · 0.173205 = 0.339482  →  [−0.139482, 0.539482]
    interval = difference_interval(3, 10, 1, 10)
    assert interval is not None
    assert interval.method == "wald"
    assert interval.low == pytest.approx(-0.139482, abs=1e-4)
    assert interval.high == pytest.approx(0.539482, abs=1e-4)


def test_a_larger_sample_gives_a_narrower_interval() -> None:
    # 120/1000 against 10/100: d = 0.02
    # SE = √(0.12 · 0.88 / 1000 + 0.1 · 0.9 / 100) = √(0.0001056 + 0.0009) = 0.0317112
    # 1.96 · 0.0317112 = 0.062154  →  [−0.042154, 0.082154]
    interval = difference_interval(120, 1000, 10, 100)
    assert interval is not None
    assert (interval.low, interval.high) == (
        pytest.approx(-0.042154, abs=1e-4),
        pytest.approx(0.082154, abs=1e-4),
    )


def test_a_group_at_zero_percent_uses_agresti_caffo_instead_of_a_collapsed_interval() -> None:
    # 3/10 against 0/10: Wald's variance of the holdout is 0. Agresti–Caffo:
    # p̃1 = 4/12 = 0.333333, p̃2 = 1/12 = 0.083333, centre 0.25
    # SE = √(0.333333 · 0.666667 / 12 + 0.083333 · 0.916667 / 12)
    #    = √(0.0185185 + 0.0063657) = √0.0248843 = 0.157748
    # 1.96 · 0.157748 = 0.309186  →  [−0.059186, 0.559186]
    interval = difference_interval(3, 10, 0, 10)
    assert interval is not None
    assert interval.method == "agresti-caffo"
    assert interval.low == pytest.approx(-0.059186, abs=1e-4)
    assert interval.high == pytest.approx(0.559186, abs=1e-4)


def test_no_change_in_either_group_still_has_an_interval_of_real_width() -> None:
    # 0/10 against 0/10: p̃ = 1/12 in both, centre 0
    # SE = √(2 · 0.083333 · 0.916667 / 12) = √0.0127315 = 0.112834; 1.96 · SE = 0.221155
    interval = difference_interval(0, 10, 0, 10)
    assert interval is not None
    assert interval.low == pytest.approx(-0.221155, abs=1e-4)
    assert interval.high == pytest.approx(0.221155, abs=1e-4)


def test_the_interval_stays_within_minus_one_and_one() -> None:
    # 10/10 against 0/10: p̃1 = 11/12, p̃2 = 1/12, centre 0.833333, 1.96 · SE = 0.221155
    # → [0.612178, 1.054488], clipped to 1 at the top
    interval = difference_interval(10, 10, 0, 10)
    assert interval is not None
    assert interval.low == pytest.approx(0.612178, abs=1e-4)
    assert interval.high == 1.0


def test_an_empty_group_has_no_interval() -> None:
    assert difference_interval(0, 0, 1, 10) is None
    assert difference_interval(3, 10, 0, 0) is None


# --- the constructed campaign -----------------------------------------------------------


@pytest.fixture(autouse=True)
def _today() -> Iterator[None]:
    with time_machine.travel("2026-11-22 10:00 +01:00", tick=False):
        yield


def at(day: str) -> time_machine.travel:
    """Do what follows on ``day`` at 12:00 Stockholm time (CET in October–November here)."""
    return time_machine.travel(f"{day} 12:00 +01:00", tick=False)


@pytest.fixture
def campaign() -> Campaign:
    campaign, _ = Campaign.objects.update_or_create(
        code="report-test",
        defaults={"name": "Report test", "kind": "custom", "holdout_share": Decimal("0.5")},
    )
    return campaign


@pytest.fixture
def plans() -> dict[str, Plan]:
    return {
        "small": PlanFactory(
            code="mobil-3", name="Mobil 3 GB", monthly_fee=Decimal("199"), data_included_gb=3
        ),
        "medium": PlanFactory(code="mobil-10", name="Mobil 10 GB", monthly_fee=Decimal("299")),
        "large": PlanFactory(
            code="mobil-30", name="Mobil 30 GB", monthly_fee=Decimal("399"), data_included_gb=30
        ),
    }


def offer(
    campaign: Campaign,
    sub: Subscription,
    plans: dict[str, Plan],
    group: str,
    *,
    created_at: datetime = OFFERED_AT,
    valid_until: date = VALID_UNTIL,
    status: str = OfferStatus.OPEN,
) -> Offer:
    return Offer.objects.create(
        campaign=campaign,
        customer=sub.customer,
        subscription=sub,
        group=group,
        personalised=True,
        to_plan=plans["small"],
        offered_price=Decimal("199.00"),
        current_monthly_cost=Decimal("399.00"),
        offered_monthly_cost=Decimal("199.00"),
        monthly_saving=Decimal("200.00"),
        yearly_saving=Decimal("2400.00"),
        reason={"sv": "…", "en": "…"},
        valid_until=valid_until,
        created_at=created_at,
        status=status,
    )


def change(sub: Subscription, plan: Plan, day: str, key: str, *, undo_on: str = "") -> None:
    """The customer changes plan on their own (in a chat with an agent)."""
    with at(day):
        result = plan_change_request(
            subscription_id=sub.id, to_plan_id=plan.id, requested_via="chat", idempotency_key=key
        )
    if undo_on:
        with at(undo_on):
            plan_change_undo(change_id=result.change.id, via="chat")


def accept(o: Offer, day: str, *, undo_on: str = "") -> None:
    with at(day):
        result = offer_accept(offer_id=o.id, idempotency_key=f"accept-{o.id}", requested_via="x")
    if undo_on:
        with at(undo_on):
            plan_change_undo(change_id=result.change.id, via="invoice_page")


def shown(o: Offer, *, clicked: bool = False) -> None:
    with at("2026-10-16"):
        offer_event_record(offer_id=o.id, kind="shown")
        offer_event_record(offer_id=o.id, kind="shown")  # a second view counts once
        if clicked:
            offer_event_record(offer_id=o.id, kind="clicked")


_numbers = iter(range(1, 1000))


def invoice(
    sub: Subscription, issued: str, due: str, status: str, *, credited: Invoice | None = None
) -> Invoice:
    series, _ = InvoiceSeries.objects.get_or_create(code="T")
    number = next(_numbers)
    issued_on = date.fromisoformat(issued)
    return Invoice.objects.create(
        kind="credit_note" if credited else "invoice",
        series=series,
        number=number,
        customer=sub.customer,
        credited_invoice=credited,
        period_start=issued_on.replace(day=1) - timedelta(days=number),  # unique per customer
        period_end=issued_on,
        invoice_date=issued_on,
        due_date=date.fromisoformat(due),
        language="sv",
        buyer={},
        seller={},
        net_total=Decimal("319.20"),
        vat_total=Decimal("79.80"),
        rounding=Decimal("0.00"),
        total=Decimal("399.00"),
        status=status,
        issued_at=datetime.combine(issued_on, datetime.min.time(), tzinfo=UTC) + timedelta(hours=7),
    )


def line(plans: dict[str, Plan], **kwargs: object) -> Subscription:
    """A customer's subscription; they let their usage be used for offers (the offers are
    made from it)."""
    sub = SubscriptionFactory(plan=plans["large"], binding_end=None, **kwargs)
    consent_give(customer_id=sub.customer_id, kind=ConsentKind.PERSONALISED_OFFERS, source="crm")
    return sub


@pytest.fixture
def constructed(campaign: Campaign, plans: dict[str, Plan]) -> None:
    small, medium = plans["small"], plans["medium"]
    t = [line(plans) for _ in range(10)]
    h = [line(plans) for _ in range(10)]
    # An earlier change (before any offer) of T8: not a conversion, not in the revenue.
    change(t[8], medium, "2026-10-01", "t8-before")
    to = [offer(campaign, sub, plans, Group.TREATMENT) for sub in t]
    for sub in h:
        offer(campaign, sub, plans, Group.HOLDOUT)

    # Treatment
    shown(to[0], clicked=True)
    accept(to[0], "2026-10-20")  # T0: accepts: converted, −200
    shown(to[1], clicked=True)
    accept(to[1], "2026-10-21", undo_on="2026-10-22")  # T1: accepts, then undoes: neither
    shown(to[2])
    accept(to[2], "2026-11-10")  # T2: accepts later in the window: converted, −200
    shown(to[3])
    change(t[3], medium, "2026-11-01", "t3")  # T3: changes on their own: converted, −100
    shown(to[4])
    change(t[4], medium, "2026-11-20", "t4")  # T4: after the window: not converted, −100
    shown(to[5], clicked=True)  # T5: clicks, does nothing; gets a newer offer on 15 Nov
    to[5].status = OfferStatus.SUPERSEDED
    to[5].save(update_fields=["status"])
    offer(
        campaign,
        t[5],
        plans,
        Group.TREATMENT,
        created_at=datetime(2026, 11, 15, 8, tzinfo=UTC),
        valid_until=date(2026, 12, 15),
    )
    shown(to[6])  # T6: sees it, nothing more
    # T7: never opened the invoice. T8: changed before the offer (above).
    t[9].end_date = date(2026, 11, 30)  # T9: gave notice, ends after the report day: churn
    t[9].save(update_fields=["end_date"])

    # Holdout: never shown anything.
    change(h[0], small, "2026-10-25", "h0")  # H0: on their own, in the window: converted, −200
    change(h[1], medium, "2026-11-21", "h1")  # H1: after the window: not converted, −100
    change(h[2], medium, "2026-10-20", "h2", undo_on="2026-10-21")  # H2: undone: neither
    Subscription.objects.filter(id=h[3].id).update(status="ended", end_date=date(2026, 11, 5))
    # H4: ended the day before the offer (as if offered late): not churn after the offer.
    Subscription.objects.filter(id=h[4].id).update(status="ended", end_date=date(2026, 10, 14))

    # Invoices: (customer, issued, due, status)
    invoice(t[0], "2026-11-01", "2026-11-20", "paid")  # due, paid
    invoice(t[1], "2026-11-01", "2026-11-20", "overdue")  # due, not paid
    invoice(t[2], "2026-10-01", "2026-10-20", "paid")  # before the offer: left out
    invoice(t[3], "2026-11-01", "2026-11-30", "issued")  # not yet due: left out
    credited = invoice(t[4], "2026-11-01", "2026-11-20", "credited")  # credited: left out
    invoice(t[4], "2026-11-05", "2026-11-20", "issued", credited=credited)  # credit note: out
    invoice(t[5], "2026-11-01", "2026-11-20", "paid")  # due, paid
    invoice(t[5], "2026-11-16", "2026-11-21", "paid")  # after both T5 offers: counted once
    invoice(h[0], "2026-11-01", "2026-11-20", "paid")
    invoice(h[1], "2026-11-01", "2026-11-20", "partly_paid")
    invoice(h[5], "2026-10-16", "2026-11-05", "paid")
    invoice(h[5], "2026-11-01", "2026-11-20", "overdue")

    # Another campaign's offer, shown and followed by a change: none of this report's business.
    other, _ = Campaign.objects.update_or_create(
        code="report-other", defaults={"name": "Other", "kind": "custom"}
    )
    x = line(plans)
    shown(offer(other, x, plans, Group.TREATMENT))
    change(x, small, "2026-10-20", "x")


def test_the_report_counts_each_group_as_checked_by_hand(
    constructed: None, campaign: Campaign, django_assert_num_queries
) -> None:
    with django_assert_num_queries(3):
        report = campaign_report(campaign, today=TODAY)
    t, h = report.treatment, report.holdout

    assert (t.customers, t.subscriptions, t.offers, t.offers_valid) == (10, 10, 11, 1)
    assert (t.exposed, t.offers_shown, t.clicked, t.accepted) == (7, 7, 3, 3)  # T0–6; T0,1,5
    assert t.converted == 3  # T0, T2, T3
    assert (t.plan_changes, t.price_change_total) == (4, Decimal("-600.00"))  # T0 T2 T3 T4
    assert t.churned == 1  # T9
    assert (t.invoices_due, t.invoices_paid) == (4, 3)  # T0, T1, T5 × 2

    assert (h.customers, h.subscriptions, h.offers, h.offers_valid) == (10, 10, 10, 0)
    assert (h.exposed, h.offers_shown, h.clicked, h.accepted) == (None, None, 0, 0)
    assert report.holdout_shown == 0
    assert h.converted == 1  # H0
    assert (h.plan_changes, h.price_change_total) == (2, Decimal("-300.00"))  # H0, H1
    assert h.churned == 1  # H3
    assert (h.invoices_due, h.invoices_paid) == (4, 2)  # H0, H1, H5 × 2

    assert (t.conversion, h.conversion) == (0.3, 0.1)
    assert report.uplift == pytest.approx(0.2)
    assert report.interval == difference_interval(3, 10, 1, 10)  # checked by hand above
    assert report.approximation_rough  # 1 conversion in the holdout
    assert (t.revenue_per_customer, h.revenue_per_customer) == (
        Decimal("-60.00"),
        Decimal("-30.00"),
    )
    assert report.revenue_difference == Decimal("-30.00")
    assert (t.churn, h.churn) == (0.1, 0.1)
    assert (t.payment, h.payment) == (0.75, 0.5)
    assert t.exposure == 0.7


def test_the_rows_carry_the_same_figures_for_table_and_csv(
    constructed: None, campaign: Campaign
) -> None:
    rows = {row.key: row for row in campaign_report(campaign, today=TODAY).rows()}
    assert (rows["conversion"].treatment, rows["conversion"].holdout) == (0.3, 0.1)
    assert rows["conversion"].difference == pytest.approx(0.2)
    assert rows["revenue_per_customer"].difference == Decimal("-30.00")
    assert rows["uplift_low"].difference == pytest.approx(-0.139482, abs=1e-4)
    assert rows["payment"].difference == pytest.approx(0.25)
    assert rows["exposed"].holdout is None


def test_a_day_earlier_the_changes_after_it_are_not_yet_counted(
    constructed: None, campaign: Campaign
) -> None:
    # On 20 November H1's change (21 Nov) has not happened yet, and T1's, T0's and H0's
    # invoices due on 20 November are not yet overdue either.
    report = campaign_report(campaign, today=date(2026, 11, 20))
    assert report.holdout.plan_changes == 1
    assert report.treatment.invoices_due == 0
    assert report.holdout.invoices_due == 1  # H5's October invoice, paid


def test_a_holdout_offer_that_was_shown_all_the_same_is_reported(
    campaign: Campaign, plans: dict[str, Plan]
) -> None:
    shown(offer(campaign, line(plans), plans, Group.HOLDOUT))
    offer(campaign, line(plans), plans, Group.TREATMENT)
    report = campaign_report(campaign, today=TODAY)
    assert report.holdout_shown == 1
    assert report.holdout.exposed is None


def test_a_campaign_without_offers_has_no_figures_to_compare(
    campaign: Campaign, django_assert_num_queries
) -> None:
    with django_assert_num_queries(3):
        report = campaign_report(campaign, today=TODAY)
    assert not report.has_offers
    assert report.treatment.customers == report.holdout.customers == 0
    assert report.uplift is None
    assert report.interval is None
    assert report.revenue_difference is None
    assert report.treatment.conversion is None


def test_the_rows_are_labelled_in_the_active_language_under_the_same_keys(
    constructed: None, campaign: Campaign
) -> None:
    # given the campaign checked by hand, when its rows are read in English and in Swedish
    report = campaign_report(campaign, today=TODAY)
    with translation.override("en"):
        english = report.rows()
    with translation.override("sv"):
        swedish = report.rows()

    # then the keys and figures are the same and only the labels differ
    assert [row.key for row in swedish] == [row.key for row in english]
    assert [(r.treatment, r.holdout, r.difference) for r in swedish] == [
        (r.treatment, r.holdout, r.difference) for r in english
    ]
    labels = {row.key: (row.label, sv.label) for row, sv in zip(english, swedish, strict=True)}
    assert labels["conversion"] == ("Conversion", "Konvertering")
    assert labels["revenue_per_customer"] == (
        "Change of monthly price per customer (kr)",
        "Förändrad intäkt per kund och månad (kr)",
    )
    assert labels["churn"] == ("Churn", "Andel uppsagda abonnemang")
    assert labels["payment"] == ("Paid share", "Andel betalda fakturor")
    assert labels["uplift_low"][1] == "Skillnad, 95 % konfidensintervall, nedre gräns"
    assert all(row.label != sv.label for row, sv in zip(english, swedish, strict=True))
