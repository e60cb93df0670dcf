"""The offers part of the invoice page, consent from the page, and the plan list: what the
customer sees, what is recorded, and that nothing of another customer's can be reached."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from billing.models import Consent, PlanChange
from billing.services import plan_change_request
from offers.models import Group, Offer, OfferEvent, OfferStatus
from offers.services import offers_consent_withdraw
from tests.offers.page_fixtures import NOW, billed_customer, text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _now():
    with time_machine.travel(NOW, tick=False):
        yield


def offer_of(billed) -> Offer:
    return Offer.objects.get(subscription=billed.subscription, status=OfferStatus.OPEN)


# --- the offers part of the invoice page ------------------------------------------------------


def test_the_offer_is_shown_with_its_reason_saving_price_and_button(client: Client, light_user):
    # given a consenting light user with a right-size offer
    offer = offer_of(light_user)
    # when the invoice page is opened (in Swedish, the customer's language)
    response = client.get(light_user.url)
    # then the offer reads with its reason, the prices, the saving and a button to change
    page = text(response)
    assert response.status_code == 200
    assert offer.reason["sv"].replace("\xa0", " ") in page
    assert "Ett abonnemang som passar dig" in page
    assert "Du betalar nu 399 kr i månaden" in page
    assert "Nytt pris 199 kr i månaden −200 kr" in page
    assert "Med din användning sparar du 200 kr i månaden, 2 400 kr om året." in page
    assert "Erbjudandet gäller till 22 december 2026" in page
    html = response.content.decode()
    assert f'href="offers/{offer.id}/?lang=sv"' in html
    assert "Byt till Mobil 3 GB" in page


def test_the_offer_reads_in_english_when_the_page_does(client: Client, light_user):
    offer = offer_of(light_user)
    page = text(client.get(f"{light_user.url}?lang=en"))
    assert offer.reason["en"].replace("\xa0", " ") in page
    assert "With your usage you save 200 kr a month, 2,400 kr a year." in page
    assert "Change to Mobil 3 GB" in page
    html = client.get(f"{light_user.url}?lang=en").content.decode()
    assert f'href="offers/{offer.id}/?lang=en"' in html


def test_exposure_is_recorded_once_however_often_the_page_is_opened(client: Client, light_user):
    offer = offer_of(light_user)
    # a HEAD (a link checker) shows nothing to anyone
    client.head(light_user.url)
    assert not OfferEvent.objects.exists()
    for _ in range(3):
        client.get(light_user.url)
    shown = OfferEvent.objects.get(kind="shown")
    assert (shown.offer_id, shown.invoice_id) == (offer.id, light_user.invoice.id)


def test_a_cached_page_with_offers_costs_the_same_queries_as_without(
    client: Client, light_user, django_assert_num_queries
):
    from tests.invoices.test_page import PAGE_QUERIES_CACHED

    # given the page was opened once (cached, exposure recorded)
    client.get(light_user.url)
    # when it is opened again, the offers part comes from the cache too
    with django_assert_num_queries(PAGE_QUERIES_CACHED):
        response = client.get(light_user.url)
    assert "Byt till Mobil 3 GB" in text(response)


def test_holdout_offers_are_measured_but_never_shown(client: Client, light_user):
    offer = offer_of(light_user)
    Offer.objects.filter(id=offer.id).update(group=Group.HOLDOUT)
    response = client.get(light_user.url)
    assert "Byt till Mobil 3 GB" not in text(response)
    assert f"offers/{offer.id}/" not in response.content.decode()
    assert not OfferEvent.objects.exists()
    # and its confirmation page does not exist for the customer
    assert client.get(f"{light_user.url}offers/{offer.id}/").status_code == 404


def test_usage_based_offers_stop_when_consent_is_withdrawn_but_price_parity_stays(
    client: Client, plans
):
    # given a light user who pays more than new customers for the same plan
    billed = billed_customer(plans.large, consent=True, price=Decimal("449.00"))
    kinds = set(Offer.objects.values_list("campaign__kind", flat=True))
    assert {"right_size", "loyalty_parity"} <= kinds
    # when the consent is withdrawn (and the offers computed from usage are not cleaned up)
    Consent.objects.update(withdrawn_at=billed.invoice.issued_at)
    page = text(client.get(billed.url))
    # then only the offer that needs no usage data is shown: the same plan at the new price
    assert "Byt till Mobil 3 GB" not in page
    assert "Få det nya priset" in page
    assert "Nya kunder betalar 399 kr i månaden för Mobil 30 GB" in page
    parity = Offer.objects.get(campaign__kind="loyalty_parity")
    confirmation = text(client.get(f"{billed.url}offers/{parity.id}/"))
    assert "Nytt pris för Mobil 30 GB" in confirmation
    assert "−50 kr i månaden Du betalar 50 kr mindre i månaden." in confirmation
    assert "Bekräfta det nya priset" in confirmation


def test_two_campaigns_offering_the_same_change_show_it_once(client: Client, plans):
    # given a binding period ending within 60 days: right-size and end of binding both
    # recommend Mobil 3 GB at 199 kr
    billed = billed_customer(plans.large, consent=True, binding_end=date(2026, 12, 31))
    assert Offer.objects.filter(status=OfferStatus.OPEN).count() == 2
    page = text(client.get(billed.url))
    # then one offer is shown, with the reason that names the end of the binding period,
    # and says the cheaper plan starts the day after it
    assert page.count("Mobil 3 GB 199 kr i månaden") == 1
    assert "Din bindningstid slutar 2026-12-31" in page
    assert "Börjar 1 januari 2027, dagen efter att din bindningstid slutar." in page
    assert "Byt till Mobil 3 GB" in page
    assert OfferEvent.objects.filter(kind="shown").count() == 1


def test_an_offer_of_what_the_customer_already_has_is_not_shown(client: Client, light_user):
    # given two open offers of the same change from two campaigns, one taken today
    from offers.models import Campaign
    from offers.services import offer_accept

    taken = offer_of(light_user)
    other = Offer.objects.get(id=taken.id)
    other.pk = None
    other.campaign = Campaign.objects.get(code="end-of-binding")
    other.save()
    offer_accept(offer_id=taken.id, idempotency_key="k", requested_via="chat", timing="now")
    assert Offer.objects.get(id=other.id).status == OfferStatus.OPEN
    # then the page offers nothing the customer already has
    response = client.get(light_user.url)
    assert f"offers/{other.id}/" not in response.content.decode()
    assert "Erbjudandet gäller till" not in text(response)


def test_an_offer_past_its_validity_is_not_shown(client: Client, light_user):
    Offer.objects.update(valid_until=date(2026, 11, 21))
    assert "Byt till Mobil 3 GB" not in text(client.get(light_user.url))


def test_an_offer_for_a_subscription_with_a_pending_change_is_not_shown(client, light_user):
    plan_change_request(
        subscription_id=light_user.subscription.id,
        to_plan_id=offer_of(light_user).to_plan_id,
        requested_via="chat",
        idempotency_key="agent",
    )
    assert "Byt till Mobil 3 GB" not in text(client.get(light_user.url))


def test_a_consenting_customer_without_offers_is_told_so(client: Client, plans):
    # a customer whose plan fits: 8 GB a month on Mobil 10 GB
    billed = billed_customer(plans.medium, consent=True, data_mb=8192)
    page = text(client.get(billed.url))
    assert "Vi har inget bättre abonnemang att föreslå just nu." in page
    assert "Sluta använda min användning för förslag" in page


def test_without_consent_the_page_gives_best_tariff_information_and_asks(client, plans):
    billed = billed_customer(plans.large, consent=False)
    response = client.get(billed.url)
    page = text(response)
    html = response.content.decode()
    # the generic best-tariff information the law asks for, with the plan list
    assert "Jämför med alla våra abonnemang" in page
    assert 'href="plans/?lang=sv"' in html
    # and a one-click consent, as a CSRF-protected POST
    assert 'action="consent/?lang=sv"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "Använd min användning för att föreslå ett bättre abonnemang" in page
    assert "Byt till" not in page  # nothing computed from usage without consent


def test_the_page_with_offers_and_forms_never_contains_its_token(client: Client, light_user):
    assert light_user.token not in client.get(light_user.url).content.decode()


def test_a_credit_note_page_has_no_offers_part(client: Client, light_user):
    from invoices.services.credit_notes import credit_note_issue
    from invoices.services.links import invoice_link_create

    note = credit_note_issue(
        invoice_id=light_user.invoice.id,
        reason="Goodwill",
        line_ids=[light_user.invoice.lines.first().id],
    )
    response = client.get(f"/i/{invoice_link_create(invoice=note)}/")
    assert response.status_code == 200
    assert "Ett abonnemang som passar dig" not in text(response)


# --- consent from the page ----------------------------------------------------------------------


def test_giving_consent_records_it_from_the_invoice_page_and_computes_offers(
    client: Client, plans, django_capture_on_commit_callbacks
):
    # given a light user without consent, so without a usage-based offer
    billed = billed_customer(plans.large, consent=False)
    assert not Offer.objects.exists()
    # when they click "use my usage to suggest a better plan"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{billed.url}consent/?lang=sv")
    # then the consent is recorded with its source, the offers are computed, and the page
    # says so and shows the offer
    assert response.status_code == 302
    assert response["Location"] == "../?lang=sv#offers"
    consent = Consent.objects.get(customer=billed.customer)
    assert (consent.kind, consent.source, consent.withdrawn_at) == (
        "personalised_offers",
        "invoice_page",
        None,
    )
    page = text(client.get(billed.url))
    assert "Tack. Nu föreslår vi abonnemang utifrån hur du använder ditt abonnemang." in page
    assert "Byt till Mobil 3 GB" in page
    # and clicking again changes nothing
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{billed.url}consent/?lang=sv")
    assert Consent.objects.count() == 1


def test_withdrawing_consent_stops_the_usage_based_offers_in_one_click(client, light_user):
    response = client.post(f"{light_user.url}consent/withdraw/?lang=en")
    assert response["Location"] == "../../?lang=en#offers"
    consent = Consent.objects.get(customer=light_user.customer)
    assert consent.withdrawn_at is not None
    assert not Offer.objects.filter(status=OfferStatus.OPEN, personalised=True).exists()
    page = text(client.get(f"{light_user.url}?lang=en"))
    assert "We no longer use your usage to suggest plans" in page
    assert "Use my usage to suggest a better plan" in page
    # a repeat is harmless
    assert client.post(f"{light_user.url}consent/withdraw/").status_code == 302
    assert offers_consent_withdraw(customer_id=light_user.customer.id) == 0


def test_consent_cannot_be_given_by_a_get_or_without_the_csrf_token(light_user):
    client = Client(enforce_csrf_checks=True)
    assert client.get(f"{light_user.url}consent/").status_code == 405
    assert client.post(f"{light_user.url}consent/withdraw/").status_code == 403
    assert Consent.objects.get().withdrawn_at is None


# --- the plan list ------------------------------------------------------------------------------


def test_the_plan_list_shows_the_plans_of_the_kind_with_prices_and_the_current_one(
    client: Client, light_user, plans
):
    response = client.get(f"{light_user.url}plans/")
    page = text(response)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Alla våra abonnemang" in page
    assert "Du har Mobil 30 GB för 399 kr i månaden." in page
    assert "Mobil 3 GB 199 kr i månaden 3 GB surf · 300 min samtal · 100 sms" in page
    assert "Ditt abonnemang Mobil 30 GB 399 kr i månaden 30 GB surf · Fria samtal · Fria sms" in (
        page
    )
    assert "−200 kr i månaden jämfört med i dag" in page
    assert "Bredband 250" not in page
    sub = light_user.subscription
    assert f'href="../change/{sub.id}/{plans.small.id}/?lang=sv"' in html
    assert f'href="../change/{sub.id}/{plans.large.id}/' not in html  # nothing to choose


def test_the_plan_list_says_a_cheaper_plan_starts_after_the_binding_period(client, plans):
    billed = billed_customer(plans.medium, consent=False, binding_end=date(2027, 3, 31))
    response = client.get(f"{billed.url}plans/?lang=en")
    page = text(response)
    assert "Starts 1 April 2027, the day after your binding period ends." in page
    assert f"../change/{billed.subscription.id}/{plans.small.id}/" in response.content.decode()
    assert f"../change/{billed.subscription.id}/{plans.large.id}/" in response.content.decode()


def test_the_plan_list_offers_the_new_customer_price_of_the_current_plan(client, plans):
    billed = billed_customer(plans.large, consent=False, price=Decimal("449.00"))
    response = client.get(f"{billed.url}plans/?lang=en")
    assert "Get the price new customers pay" in text(response)
    assert f"../change/{billed.subscription.id}/{plans.large.id}/" in response.content.decode()


def test_the_plan_list_shows_a_pending_change_instead_of_choices(client, light_user, plans):
    change = plan_change_request(
        subscription_id=light_user.subscription.id,
        to_plan_id=plans.small.id,
        requested_via="chat",
        idempotency_key="agent",
    ).change
    response = client.get(f"{light_user.url}plans/?lang=en")
    assert "A change to Mobil 3 GB for 199 kr a month takes effect on 1 December 2026." in text(
        response
    )
    assert f'href="../changes/{change.id}/?lang=en"' in response.content.decode()
    assert "../change/" not in response.content.decode()


# --- the same friendly 404, the same private headers ---------------------------------------


def test_ids_of_another_customer_get_the_friendly_404(client: Client, light_user, plans):
    # given another customer with an offer, a subscription and a change
    other = billed_customer(plans.large, consent=True)
    other_offer = offer_of(other)
    other_change = plan_change_request(
        subscription_id=other.subscription.id,
        to_plan_id=plans.medium.id,
        requested_via="chat",
        idempotency_key="other",
    ).change
    # when the first customer's link is used with them
    paths = [
        f"offers/{other_offer.id}/",
        f"change/{other.subscription.id}/{plans.small.id}/",
        f"changes/{other_change.id}/",
        f"change/{light_user.subscription.id}/{plans.broadband.id}/",  # a plan of another kind
        "offers/999999/",
    ]
    responses = [client.get(f"{light_user.url}{path}") for path in paths]
    # then each is the same friendly 404 as an unknown link, and nothing changed
    unknown = client.get(f"/i/{'x' * 43}/")
    for response in responses:
        assert response.status_code == 404
        assert response.content == unknown.content
        assert response["Cache-Control"] == "no-store"
    posted = client.post(f"{light_user.url}offers/{other_offer.id}/", {"action": "confirm"})
    assert posted.status_code == 404
    assert client.post(f"{light_user.url}changes/{other_change.id}/undo/").status_code == 404
    assert PlanChange.objects.get(id=other_change.id).status == "scheduled"
    assert not PlanChange.objects.filter(subscription=light_user.subscription).exists()


@pytest.mark.parametrize("path", ["plans/", "consent/"])
def test_the_plan_pages_answer_unknown_links_like_the_invoice_page(client: Client, path):
    response = client.get(f"/i/{'x' * 43}/{path}")
    assert response.status_code == 404
    assert "Vi hittade inte fakturan" in text(response)
    assert response["Referrer-Policy"] == "strict-origin"


def test_the_plan_pages_send_the_private_headers(client: Client, light_user):
    offer = offer_of(light_user)
    for path in ("plans/", f"offers/{offer.id}/"):
        response = client.get(f"{light_user.url}{path}")
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
        assert "noindex" in response["X-Robots-Tag"]
        assert response["Referrer-Policy"] == "strict-origin"
        assert light_user.token not in response.content.decode()


def test_taking_an_offer_shows_at_once_on_the_cached_page(client: Client, light_user):
    # given the page with its offer, kept in the cache
    assert "Byt till Mobil 3 GB" in text(client.get(light_user.url))
    offer = offer_of(light_user)
    # when the customer takes it
    from offers.services import offer_accept, offers_section_forget

    offer_accept(offer_id=offer.id, idempotency_key="k", requested_via="invoice_page")
    offers_section_forget(light_user.subscription.customer_id)
    # then the next open no longer offers it
    assert "Byt till Mobil 3 GB" not in text(client.get(light_user.url))


def test_each_form_on_a_cached_page_carries_this_visitor_s_csrf_token(light_user):
    from django.test import Client as BrowserClient

    first, second = BrowserClient(enforce_csrf_checks=True), BrowserClient(enforce_csrf_checks=True)
    first.get(light_user.url)
    page = second.get(light_user.url).content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    assert token != "@@csrf-token@@"
    response = second.post(f"{light_user.url}consent/withdraw/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
