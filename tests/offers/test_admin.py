"""The offers back office: campaigns, read-only offers and events, the report and its CSV.

The admin speaks the browser's language (``LocaleMiddleware``), Swedish when it asks for none
(``LANGUAGE_CODE``): tests that read English texts ask for English.
"""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client

from billing.models import Plan, Subscription
from billing.services import plan_change_request
from offers.models import Campaign, Group, Offer
from offers.services import offer_event_record
from tests.factories import PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel("2026-11-22 10:00 +01:00", tick=False):
        yield


@pytest.fixture
def campaign() -> Campaign:
    campaign, _ = Campaign.objects.update_or_create(
        code="right-size",
        defaults={
            "name": "Right-size: the plan that fits the usage",
            "kind": "right_size",
            "holdout_share": Decimal("0.100"),
            "active": True,
        },
    )
    return campaign


@pytest.fixture
def small() -> Plan:
    return PlanFactory(
        code="mobil-3", name="Mobil 3 GB", monthly_fee=Decimal("199"), data_included_gb=3
    )


def offer(campaign: Campaign, small: Plan, group: str, **kwargs: object) -> Offer:
    sub = kwargs.pop("subscription", None) or SubscriptionFactory(binding_end=None)
    assert isinstance(sub, Subscription)
    return Offer.objects.create(
        campaign=campaign,
        customer=sub.customer,
        subscription=sub,
        group=group,
        personalised=True,
        to_plan=small,
        offered_price=Decimal("199.00"),
        current_monthly_cost=Decimal("299.00"),
        offered_monthly_cost=Decimal("199.00"),
        monthly_saving=Decimal("100.00"),
        yearly_saving=Decimal("1200.00"),
        reason={"sv": "…", "en": "…"},
        valid_until=date(2026, 12, 20),
        created_at=datetime(2026, 11, 20, 8, tzinfo=UTC),
        **kwargs,
    )


@pytest.fixture
def offers(campaign: Campaign, small: Plan) -> list[Offer]:
    """Two treatment customers, one of whom saw the offer and moved to Mobil 3 GB on their
    own; one holdout customer who did nothing."""
    shown = offer(campaign, small, Group.TREATMENT)
    offer_event_record(offer_id=shown.id, kind="shown")
    plan_change_request(
        subscription_id=shown.subscription_id,
        to_plan_id=small.id,
        requested_via="chat",
        idempotency_key="k",
    )
    return [shown, offer(campaign, small, Group.TREATMENT), offer(campaign, small, Group.HOLDOUT)]


ENGLISH = {"accept-language": "en"}
SWEDISH = {"accept-language": "sv-SE,sv;q=0.9,en;q=0.8"}


def staff_without_permissions() -> Client:
    user = get_user_model().objects.create_user("clerk", password="x", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/admin/offers/campaign/",
        "/admin/offers/campaign/?kind__exact=right_size",
        "/admin/offers/offer/",
        "/admin/offers/offer/?q=Kund",
        "/admin/offers/offer/?group__exact=holdout&status__exact=open&personalised__exact=1",
        "/admin/offers/offerevent/",
        "/admin/offers/offerevent/?kind__exact=shown",
    ],
)
def test_list_views_answer_staff(admin_client, offers, path: str) -> None:
    assert admin_client.get(path).status_code == 200


def test_the_campaign_list_counts_open_offers_and_links_the_report(
    admin_client, campaign, offers
) -> None:
    Offer.objects.filter(id=offers[2].id).update(status="expired")
    response = admin_client.get("/admin/offers/campaign/")
    listed = {c.code: c.open_offer_count for c in response.context["cl"].result_list}
    assert listed["right-size"] == 2
    assert f"/admin/offers/campaign/{campaign.id}/report/" in response.content.decode()


def test_the_campaign_page_links_its_report(admin_client, campaign) -> None:
    response = admin_client.get(f"/admin/offers/campaign/{campaign.id}/change/")
    assert response.status_code == 200
    assert f"/admin/offers/campaign/{campaign.id}/report/" in response.content.decode()


def test_offers_and_events_are_read_only(admin_client, offers) -> None:
    # (new offers only into custom campaigns, through offer_create: see below)
    page = admin_client.get(f"/admin/offers/offer/{offers[0].id}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert admin_client.post(f"/admin/offers/offer/{offers[0].id}/delete/").status_code == 403
    assert admin_client.get("/admin/offers/offerevent/add/").status_code == 403


def test_the_report_shows_both_groups_with_an_accessible_chart(
    admin_client, campaign, offers
) -> None:
    response = admin_client.get(f"/admin/offers/campaign/{campaign.id}/report/", headers=ENGLISH)
    assert response.status_code == 200
    html = response.content.decode()
    report = response.context["report"]
    assert (report.treatment.customers, report.treatment.converted) == (2, 1)
    assert (report.holdout.customers, report.holdout.converted) == (1, 0)
    assert '<svg id="conversion-chart"' in html
    assert 'role="img"' in html
    assert 'aria-labelledby="conversion-chart-title conversion-chart-desc"' in html
    assert "Treatment converted 50.0 %, holdout 0.0 %. Uplift +50.0 pp" in html
    assert "<caption>Figures in the chart</caption>" in html
    assert "n/a: never shown" in html
    assert "Agresti–Caffo" in html  # the holdout converted 0 %


def test_the_csv_has_the_reports_figures(admin_client, campaign, offers) -> None:
    response = admin_client.get(f"/admin/offers/campaign/{campaign.id}/report.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "campaign-right-size-2026-11-22.csv" in response["Content-Disposition"]
    rows = {row[0]: row[2:] for row in csv.reader(io.StringIO(response.content.decode()))}
    assert rows["customers"] == ["2", "1", ""]
    assert rows["converted"] == ["1", "0", ""]
    assert rows["conversion"] == ["0.5000", "0.0000", "0.5000"]
    assert rows["exposed"] == ["1", "", ""]
    # The change 299 → 199 kr of one of two treatment customers: −50 kr each a month.
    assert rows["revenue_per_customer"] == ["-50.00", "0.00", "-50.00"]
    assert rows["interval_method"] == ["", "", "agresti-caffo"]


@pytest.mark.parametrize("headers", [SWEDISH, {}], ids=["swedish-browser", "no-preference"])
def test_the_report_reads_in_swedish_for_staff_in_sweden(
    admin_client, campaign, offers, headers: dict[str, str]
) -> None:
    # given a campaign with figures, when a Swedish browser (or one that states no language:
    # LANGUAGE_CODE is Swedish) opens its report
    response = admin_client.get(f"/admin/offers/campaign/{campaign.id}/report/", headers=headers)

    # then the page, the table, the interval sentence and the chart are in Swedish, with
    # Swedish decimal commas, and the figures are those of the English page
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["title"] == f"Rapport: {campaign.name}"
    for text in [
        "kontrollgrupp 10,0 % av kunderna i kampanjen",
        "Ladda ner CSV",
        "<caption>Siffrorna i diagrammet</caption>",
        "<caption>Testgrupp jämfört med kontrollgrupp</caption>",
        '<th scope="row">Skillnad (testgrupp − kontrollgrupp)</th>',
        '<th scope="row">Konvertering</th><td class="num">50,0 %</td><td class="num">0,0 %</td>'
        '<td class="num">+50,0 p.e.</td>',
        '<th scope="row">Förändrad intäkt per kund och månad (kr)</th><td class="num">−50,00</td>',
        '<th scope="row">Andel betalda fakturor</th>',
        '<th scope="row">Andel uppsagda abonnemang</th>',
        "ej aktuellt: visas aldrig",
        "95 % konfidensintervall för skillnaden: ",
        "Agresti–Caffo-intervall",  # a hyphen in the words stays a hyphen
        "Så räknas siffrorna",
        # the chart
        "Testgruppen konverterade 50,0 %, kontrollgruppen 0,0 %. Skillnad +50,0 p.e., "
        "95 % konfidensintervall ",
        ">Kontrollgrupp</text>",
        ">Test − kontroll</text>",
    ]:
        assert text in html, text
    for english in [
        "Conversion",
        "Holdout",
        "Uplift",
        "Download CSV",
        "never shown",
        " pp",
        "50.0 %",
    ]:
        assert english not in html, english


def test_the_report_stays_in_english_for_an_english_browser(admin_client, campaign, offers) -> None:
    response = admin_client.get(f"/admin/offers/campaign/{campaign.id}/report/", headers=ENGLISH)
    html = response.content.decode()
    assert response.context["title"] == f"Report: {campaign.name}"
    for text in [
        "holdout 10.0 % of eligible customers",
        "Download CSV",
        '<th scope="row">Conversion</th><td class="num">50.0 %</td><td class="num">0.0 %</td>'
        '<td class="num">+50.0 pp</td>',
        '<th scope="row">Change of monthly price per customer (kr)</th><td class="num">−50.00</td>',
        "95 % interval of the uplift: ",
        ">Holdout</text>",
        ">Treatment − holdout</text>",
    ]:
        assert text in html, text
    for swedish in ["Konvertering", "Kontrollgrupp", "Ladda ner", "p.e.", "50,0 %"]:
        assert swedish not in html, swedish


def test_a_holdout_offer_shown_all_the_same_is_reported_in_swedish(
    admin_client, campaign, offers
) -> None:
    offer_event_record(offer_id=offers[2].id, kind="shown")
    response = admin_client.get(f"/admin/offers/campaign/{campaign.id}/report/", headers=SWEDISH)
    assert "1 erbjudande i kontrollgruppen har registrerats som visat" in response.content.decode()


def test_the_campaign_list_and_page_link_the_report_in_swedish(
    admin_client, campaign, offers
) -> None:
    listing = admin_client.get("/admin/offers/campaign/", headers=SWEDISH).content.decode()
    assert f'/admin/offers/campaign/{campaign.id}/report/">Rapport</a>' in listing
    assert "Öppna erbjudanden" in listing
    assert "10,0 %" in listing
    page = admin_client.get(f"/admin/offers/campaign/{campaign.id}/change/", headers=SWEDISH)
    assert f'/admin/offers/campaign/{campaign.id}/report/">Rapport</a>' in page.content.decode()


def test_the_custom_offer_form_is_labelled_in_swedish(admin_client) -> None:
    html = admin_client.get("/admin/offers/offer/add/", headers=SWEDISH).content.decode()
    assert "Motivering (svenska)" in html
    assert "Motivering (engelska)" in html
    assert "Reason (" not in html


def test_the_csv_is_in_english_whatever_the_admins_language(admin_client, campaign, offers) -> None:
    # the file is the same whoever downloads it: integrators parse "figure", and a spreadsheet
    # opens the ASCII labels without garbling them
    url = f"/admin/offers/campaign/{campaign.id}/report.csv"
    swedish = admin_client.get(url, headers=SWEDISH).content.decode()
    assert swedish == admin_client.get(url, headers=ENGLISH).content.decode()
    rows = list(csv.reader(io.StringIO(swedish)))
    assert rows[0] == ["figure", "label", "treatment", "holdout", "treatment_minus_holdout"]
    labels = {row[0]: row[1] for row in rows[1:]}
    assert labels["conversion"] == "Conversion"
    assert labels["revenue_per_customer"] == "Change of monthly price per customer (kr)"
    assert swedish.isascii()


def test_a_custom_campaign_defined_by_staff_reports_that_it_has_no_offers_yet(
    admin_client,
) -> None:
    response = admin_client.post(
        "/admin/offers/campaign/add/",
        {
            "code": "winter-deal",
            "name": "Winter deal",
            "kind": "custom",
            "holdout_share": "0.200",
            "active": "on",
            "description": "Staff-defined",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    campaign = Campaign.objects.get(code="winter-deal")
    assert campaign.holdout_share == Decimal("0.200")
    report = admin_client.get(f"/admin/offers/campaign/{campaign.id}/report/", headers=ENGLISH)
    assert report.status_code == 200
    assert "This campaign has no offers yet." in report.content.decode()
    assert 'id="conversion-chart"' not in report.content.decode()


def test_a_second_active_campaign_of_a_computed_kind_is_refused(admin_client, campaign) -> None:
    response = admin_client.post(
        "/admin/offers/campaign/add/",
        {"code": "right-size-2", "name": "Again", "kind": "right_size", "holdout_share": "0.1",
         "active": "on"},
    )  # fmt: skip
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors.as_data()["__all__"]
    assert [error.code for error in errors] == ["campaign_kind_active"]
    assert not Campaign.objects.filter(code="right-size-2").exists()


def test_a_holdout_share_of_one_is_refused(admin_client) -> None:
    response = admin_client.post(
        "/admin/offers/campaign/add/",
        {"code": "all-holdout", "name": "x", "kind": "custom", "holdout_share": "1.000"},
    )
    assert response.status_code == 200
    assert not Campaign.objects.filter(code="all-holdout").exists()


@pytest.mark.parametrize("suffix", ["report/", "report.csv"])
def test_anonymous_visitors_are_sent_to_the_login(client, campaign, suffix: str) -> None:
    response = client.get(f"/admin/offers/campaign/{campaign.id}/{suffix}")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("suffix", ["report/", "report.csv"])
def test_staff_without_the_campaign_permission_cannot_read_the_report(
    campaign, suffix: str
) -> None:
    response = staff_without_permissions().get(f"/admin/offers/campaign/{campaign.id}/{suffix}")
    assert response.status_code == 403


def test_an_unknown_campaign_is_not_found(admin_client) -> None:
    assert admin_client.get("/admin/offers/campaign/999999/report/").status_code == 404


def test_staff_add_an_offer_to_their_own_campaign(admin_client) -> None:
    from decimal import Decimal

    from offers.models import Campaign, Offer
    from tests.factories import PlanFactory, SubscriptionFactory

    custom = Campaign.objects.create(
        code="vinter", name="Vinterkampanj", kind="custom", holdout_share=Decimal("0")
    )
    medium = PlanFactory(code="mobil-10", name="Mobil 10 GB", monthly_fee=Decimal("299"))
    large = PlanFactory(code="mobil-30", name="Mobil 30 GB", monthly_fee=Decimal("399"))
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    form = {
        "campaign": custom.id,
        "subscription": sub.id,
        "to_plan": large.id,
        "offered_price": "329.00",
        "valid_until": "2099-12-31",
        "reason_sv": "Vintererbjudande: 30 GB för 329 kr.",
        "reason_en": "Winter offer: 30 GB for 329 kr.",
    }
    response = admin_client.post("/admin/offers/offer/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    offer = Offer.objects.get()
    assert (offer.campaign, offer.group, offer.offered_price) == (
        custom,
        "treatment",
        Decimal("329.00"),
    )
    assert offer.monthly_saving == Decimal("-30.00")  # said on the page before any click
    assert offer.reason["en"] == "Winter offer: 30 GB for 329 kr."
    # a reason in one language only is refused, and nothing is added
    response = admin_client.post("/admin/offers/offer/add/", {**form, "reason_en": ""})
    assert response.status_code == 200
    assert Offer.objects.count() == 1
