"""One click to change, from the invoice page: the confirmation says what changes before any
click, a price rise or a new binding period needs a one-time code, a double submit makes one
change, the receipt carries an undo link that works until the cooling-off period ends."""

import html
import re
import threading
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test import Client

from billing.models import PlanChange, PlanChangeStatus, SubscriptionEvent
from billing.services import plan_change_request
from core.errors import DomainError
from core.logging import mask_invoice_tokens
from core.models import OneTimeCode
from invoices.models import OutboundMessage
from offers.forms import PlanChangeConfirmForm
from offers.models import Offer, OfferEvent, OfferStatus
from offers.services import (
    plan_change_code_send,
    plan_change_request_from_page,
)
from tests.offers.page_fixtures import (
    NOW,
    billed_customer,
    campaigns,
    catalogue,
    hidden,
    offer_of,
    text,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def medium_user(plans):
    """Mobil 10 GB at 299 kr, no binding period, no offers; the customer's phone ends in 67."""
    return billed_customer(plans.medium, consent=False, generate=False, phone="+46709876567")


def confirm(client: Client, url: str, page, **fields) -> object:
    """Post the confirmation form of ``page`` as a browser would, with its own key."""
    data = {"action": "confirm", "timing": "next_period", **fields}
    if "idempotency_key" not in data:
        data["idempotency_key"] = hidden(page, "idempotency_key")
    return client.post(url, data)


@pytest.fixture
def ask_for_code(client: Client, django_capture_on_commit_callbacks):
    """Tap "send me the code" on ``page``; the code is sent once the request commits."""

    def ask(url: str, page) -> object:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                url, {"action": "send_code", "idempotency_key": hidden(page, "idempotency_key")}
            )

    return ask


def sent_code(sms_outbox) -> str:
    return re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1)


# --- the confirmation of an offer --------------------------------------------------------------


def test_the_confirmation_says_what_changes_and_from_when_before_any_click(
    client: Client, light_user
):
    offer = offer_of(light_user)
    # when the customer taps "Change to Mobil 3 GB"
    response = client.get(f"{light_user.url}offers/{offer.id}/?lang=en")
    page = text(response)
    # then the page says from what to what, the difference plainly, from when, the binding
    # and the cooling-off right, with the offer's reason, and asks for no code (cheaper)
    assert response.status_code == 200
    assert "Change to Mobil 3 GB" in page
    assert offer.reason["en"].replace("\xa0", " ") in page
    assert "Now Mobil 30 GB 399 kr a month" in page
    assert "New Mobil 3 GB 199 kr a month" in page
    assert "−200 kr a month You pay 200 kr less a month." in page
    assert "From 1 December 2026, when your next period starts" in page
    assert "Today, 22 November 2026, with the rest of this month charged by day" in page
    assert "No binding period" in page
    assert "You can undo the change until 6 December 2026 (14 days)" in page
    assert "Confirm the change to Mobil 3 GB" in page
    assert 'name="code"' not in response.content.decode()
    assert len(hidden(response, "idempotency_key")) == 32
    # and the click on the offer is recorded, once
    client.get(f"{light_user.url}offers/{offer.id}/")
    assert OfferEvent.objects.filter(offer=offer, kind="clicked").count() == 1


def test_confirming_an_offer_makes_the_change_and_shows_the_receipt(client: Client, light_user):
    offer = offer_of(light_user)
    url = f"{light_user.url}offers/{offer.id}/?lang=en"
    # when the customer confirms
    response = confirm(client, url, client.get(url))
    # then one change is scheduled for the next period, as asked from the invoice page,
    # and the customer lands on its receipt
    change = PlanChange.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"../../changes/{change.id}/?lang=en"
    assert (change.to_plan_id, change.to_price) == (offer.to_plan_id, Decimal("199.00"))
    assert (change.requested_via, change.status) == ("invoice_page", PlanChangeStatus.SCHEDULED)
    assert change.effective_date == date(2026, 12, 1)
    offer.refresh_from_db()
    assert (offer.status, offer.plan_change_id) == (OfferStatus.ACCEPTED, change.id)
    receipt = client.get(f"{light_user.url}changes/{change.id}/?lang=en")
    page = text(receipt)
    assert "Your plan change is confirmed" in page
    assert "You get Mobil 3 GB for 199 kr a month from 1 December 2026." in page
    assert "Done. We have sent you a receipt with a link to undo the change" in page
    assert "You can undo the change until 6 December 2026." in page
    assert "Undo the change" in page
    assert light_user.token not in receipt.content.decode()


def test_a_double_click_a_retry_and_a_second_tab_make_one_change(client: Client, light_user):
    offer = offer_of(light_user)
    url = f"{light_user.url}offers/{offer.id}/"
    page = client.get(url)
    second_tab = client.get(url)
    # when the same form is posted twice, and the form of a second tab once
    first = confirm(client, url, page)
    again = confirm(client, url, page)
    other = confirm(client, url, second_tab)
    # then there is one change and every answer leads to its receipt
    change = PlanChange.objects.get()
    assert {r["Location"] for r in (first, again, other)} == {f"../../changes/{change.id}/?lang=sv"}


def test_the_same_change_from_the_plan_list_twice_is_one_change(client, light_user, plans):
    url = f"{light_user.url}change/{light_user.subscription.id}/{plans.medium.id}/"
    page, second_tab = client.get(url), client.get(url)
    assert confirm(client, url, page).status_code == 302
    assert confirm(client, url, page).status_code == 302
    assert confirm(client, url, second_tab).status_code == 302
    assert PlanChange.objects.count() == 1
    # and a page opened afterwards says it is done, with the way to its receipt
    change = PlanChange.objects.get()
    again = client.get(f"{url}?lang=en")
    assert "You have already confirmed this change." in text(again)
    assert f"../../../changes/{change.id}/?lang=en" in again.content.decode()


def test_the_receipt_goes_out_with_an_undo_link_that_is_masked_in_the_outbox(
    client: Client, light_user, settings, django_capture_on_commit_callbacks
):
    settings.TOUCHPOINT_BASE_URL = "https://faktura.example.se"
    offer = offer_of(light_user)
    url = f"{light_user.url}offers/{offer.id}/"
    page = client.get(url)
    # when the change is confirmed, and the confirmation posted again
    with django_capture_on_commit_callbacks(execute=True):
        confirm(client, url, page)
    with django_capture_on_commit_callbacks(execute=True):
        confirm(client, url, page)
    # then one receipt is e-mailed, in Swedish, with a working undo link
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert mail.outbox[0].to == [light_user.customer.email]
    assert mail.outbox[0].subject == "Ditt byte till Mobil 3 GB – Nordtele AB"
    assert "Vi har bytt +46701234567 från Mobil 30 GB (399,00\xa0kr i månaden) till Mobil 3 GB" in (
        body
    )
    assert "till och med 6 december 2026 (ångerrätt, 14 dagar)" in body
    undo_url = re.search(r"https://faktura\.example\.se(/u/[\w-]+/)", body).group(1)
    # and the outbox keeps it with the token masked
    stored = OutboundMessage.objects.get()
    assert stored.sent_at is not None
    assert "/u/[token]/" in stored.body_text
    assert undo_url not in stored.body_text
    # and the link opens the undo page
    assert "Ångra ditt byte av abonnemang" in text(client.get(undo_url))


def test_a_customer_who_gets_invoices_by_sms_gets_the_receipt_by_sms(
    client: Client, plans, sms_outbox, django_capture_on_commit_callbacks
):
    billed = billed_customer(plans.large, consent=True, delivery_method="sms")
    url = f"{billed.url}offers/{offer_of(billed).id}/"
    with django_capture_on_commit_callbacks(execute=True):
        confirm(client, url, client.get(url))
    ((to, body),) = sms_outbox
    assert to == billed.customer.phone
    assert body.startswith(
        "Nordtele AB: +46701234567 byter till Mobil 3 GB (199,00 kr i månaden) från och med "
        "1 december 2026. Ångra till och med 6 december 2026: http"
    )
    assert "\xa0" not in body
    assert "/u/[token]/" in OutboundMessage.objects.get().body_text


def test_an_offer_that_is_no_longer_open_says_so_and_an_accepted_one_shows_its_receipt(
    client: Client, light_user
):
    offer = offer_of(light_user)
    Offer.objects.filter(id=offer.id).update(status=OfferStatus.SUPERSEDED)
    response = client.get(f"{light_user.url}offers/{offer.id}/?lang=en")
    assert "This offer is no longer valid." in text(response)
    assert "Confirm the change" not in text(response)
    posted = client.post(
        f"{light_user.url}offers/{offer.id}/",
        {"action": "confirm", "idempotency_key": "0" * 32},
    )
    assert posted.status_code == 200
    assert not PlanChange.objects.exists()
    # an offer accepted in another tab leads to its receipt
    Offer.objects.filter(id=offer.id).update(status=OfferStatus.OPEN)
    url = f"{light_user.url}offers/{offer.id}/"
    confirm(client, url, client.get(url))
    change = PlanChange.objects.get()
    assert client.get(url)["Location"] == f"../../changes/{change.id}/?lang=sv"


def test_a_usage_based_offer_cannot_be_taken_after_consent_is_withdrawn(client, light_user):
    from billing.models import Consent

    offer = offer_of(light_user)
    Consent.objects.update(withdrawn_at=light_user.invoice.issued_at)
    url = f"{light_user.url}offers/{offer.id}/?lang=en"
    response = client.get(url)
    assert "This offer is no longer valid." in text(response)
    assert confirm(client, url, response, idempotency_key="1" * 32).status_code == 200
    assert not PlanChange.objects.exists()


# --- a price rise or a new binding period: the one-time code ------------------------------------


def test_a_price_rise_asks_for_a_code_and_makes_the_change_only_with_it(
    client: Client, medium_user, plans, sms_outbox, ask_for_code
):
    url = f"{medium_user.url}change/{medium_user.subscription.id}/{plans.large.id}/"
    # given the confirmation of a move up from 299 to 399 kr
    page = client.get(url)
    assert "+100 kr i månaden Du betalar 100 kr mer i månaden." in text(page)
    assert "Bytet höjer ditt månadspris, så vi bekräftar det med en kod." in text(page)
    assert "Vi skickar den till ditt telefonnummer som slutar på 67." in text(page)
    assert "Bekräfta bytet" not in text(page)  # no confirm before a code is asked for
    # when the form is posted without a code, nothing changes
    refused = confirm(client, url, page)
    assert refused.status_code == 400
    assert "Be om koden först." in text(refused)
    assert not PlanChange.objects.exists()
    # when the customer asks for the code, it goes to their phone, in their language
    asked = ask_for_code(url, page)
    assert asked.status_code == 302
    assert asked["Location"] == "?lang=sv&code=sent&timing=next_period&binding=0"
    ((to, body),) = sms_outbox
    assert to == medium_user.customer.phone
    assert "är din kod för att byta +46701234567 till Mobil 30 GB för 399 kr i månaden" in body
    code = sent_code(sms_outbox)
    # then the page asks for it
    with_field = client.get(f"{url}?lang=sv&code=sent&timing=next_period")
    assert 'autocomplete="one-time-code"' in with_field.content.decode()
    assert "Vi har skickat den till ditt telefonnummer som slutar på 67." in text(with_field)
    # a wrong code is refused, said plainly, and counted
    wrong = confirm(client, url, with_field, code="000000" if code != "000000" else "111111")
    assert wrong.status_code == 400
    assert "Koden stämmer inte." in text(wrong)
    assert 'aria-invalid="true"' in wrong.content.decode()
    assert hidden(wrong, "idempotency_key") == hidden(with_field, "idempotency_key")
    assert OneTimeCode.objects.get().attempts == 1
    assert not PlanChange.objects.exists()
    # the right code makes the change at the new price
    done = confirm(client, url, wrong, code=code)
    assert done.status_code == 302
    change = PlanChange.objects.get()
    assert (change.to_plan_id, change.to_price) == (plans.large.id, Decimal("399.00"))
    # and a double click after it, with the code already used, leads to the same receipt
    assert confirm(client, url, wrong, code=code)["Location"] == done["Location"]
    assert PlanChange.objects.count() == 1


def test_five_wrong_codes_use_the_code_up(
    client: Client, medium_user, plans, sms_outbox, ask_for_code
):
    url = f"{medium_user.url}change/{medium_user.subscription.id}/{plans.large.id}/?lang=en"
    page = client.get(url)
    ask_for_code(url, page)
    code = sent_code(sms_outbox)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert "The code is not right." in text(confirm(client, url, page, code=wrong))
    # then even the right code no longer works: the customer asks for a new one
    response = confirm(client, url, page, code=code)
    assert "The code has expired or was entered wrong too many times." in text(response)
    assert not PlanChange.objects.exists()


def test_a_code_that_is_not_six_digits_is_refused_before_it_is_checked(
    client: Client, medium_user, plans, ask_for_code
):
    url = f"{medium_user.url}change/{medium_user.subscription.id}/{plans.large.id}/?lang=en"
    page = client.get(url)
    ask_for_code(url, page)
    response = confirm(client, url, page, code="12ab")
    assert response.status_code == 400
    assert "Enter the 6 digits of the code we sent you." in text(response)
    assert OneTimeCode.objects.get().attempts == 0


def test_the_code_goes_by_e_mail_to_a_customer_without_a_phone(client, plans, ask_for_code):
    billed = billed_customer(plans.medium, consent=False, generate=False, phone="")
    url = f"{billed.url}change/{billed.subscription.id}/{plans.large.id}/?lang=en"
    page = client.get(url)
    assert "We send it to your e-mail address k…@example.se." in text(page)
    ask_for_code(url, page)
    assert mail.outbox[-1].to == [billed.customer.email]
    assert mail.outbox[-1].subject == "Your code to confirm the change of plan"
    assert OneTimeCode.objects.get().channel == "email"


def test_without_a_phone_or_e_mail_address_the_page_says_whom_to_ask(client, plans):
    billed = billed_customer(plans.medium, consent=False, generate=False, phone="", email="")
    url = f"{billed.url}change/{billed.subscription.id}/{plans.large.id}/?lang=en"
    page = client.get(url)
    assert "We send it to" not in text(page)
    refused = client.post(
        url, {"action": "send_code", "idempotency_key": hidden(page, "idempotency_key")}
    )
    assert refused.status_code == 409
    assert "We have no phone number or e-mail address to send a code to." in text(refused)
    assert not OneTimeCode.objects.exists()


def test_asking_for_codes_again_and_again_is_refused_with_a_message(
    client: Client, medium_user, plans, sms_outbox, ask_for_code
):
    url = f"{medium_user.url}change/{medium_user.subscription.id}/{plans.large.id}/?lang=en"
    page = client.get(url)
    assert [ask_for_code(url, page).status_code for _ in range(3)] == [302, 302, 302]
    refused = ask_for_code(url, page)
    assert refused.status_code == 429
    assert "We have sent several codes just now." in text(refused)
    assert len(sms_outbox) == 3


def test_a_code_for_one_change_does_not_confirm_another(
    medium_user, plans, sms_outbox, django_capture_on_commit_callbacks
):
    sub = medium_user.subscription
    with django_capture_on_commit_callbacks(execute=True):
        plan_change_code_send(
            subscription_id=sub.id, to_plan_id=plans.large.id, price=Decimal("399"), language="en"
        )
    code = sent_code(sms_outbox)
    # a plan of the same price that is not the one the code was sent for
    other = type(plans.large).objects.create(
        code="mobil-40", name="Mobil 40 GB", monthly_fee=Decimal("399"), data_included_gb=40
    )
    with pytest.raises(DomainError) as error:
        plan_change_request_from_page(
            subscription_id=sub.id, to_plan_id=other.id, idempotency_key="k", code=code
        )
    assert error.value.code == "code_expired"  # no code was sent for that change
    assert not PlanChange.objects.exists()


# --- the binding period, chosen on the page ------------------------------------------------------


def binding_links(response) -> dict[str, tuple[str, bool]]:
    """The binding-period choice of the page: label -> (href, marked as the current one)."""
    choice = re.search(
        r'<div class="binding-choice".*?</ul>', response.content.decode(), flags=re.S
    )
    assert choice, "no binding-period choice"
    links = re.findall(r'<a href="([^"]*)"( aria-current="true")?>([^<]*)</a>', choice.group(0))
    return {label: (href.replace("&amp;", "&"), bool(current)) for href, current, label in links}


def test_the_binding_periods_are_links_with_no_binding_marked_by_default(
    client: Client, light_user, plans
):
    # given Mobil 10 GB, sold without binding or with 12 or 24 months
    url = f"{light_user.url}change/{light_user.subscription.id}/{plans.medium.id}/"
    # when the customer opens its confirmation
    response = client.get(f"{url}?lang=en")
    # then each binding period is a link to the page with it, "no binding" the current one,
    # and the form is for no binding period, without a code (the plan is cheaper)
    assert "Choose a binding period" in text(response)
    assert binding_links(response) == {
        "No binding period": ("?lang=en&binding=0#binding-choice", True),
        "12 months": ("?lang=en&binding=12#binding-choice", False),
        "24 months": ("?lang=en&binding=24#binding-choice", False),
    }
    assert hidden(response, "binding_months") == "0"
    assert "No binding period: you can change or cancel with one month" in text(response)
    assert "Confirm the change to Mobil 10 GB" in text(response)
    # and in Swedish
    swedish = client.get(f"{url}?lang=sv")
    assert list(binding_links(swedish)) == ["Ingen bindningstid", "12 månader", "24 månader"]
    assert "Välj bindningstid" in text(swedish)


def test_choosing_24_months_shows_the_new_binding_end_and_asks_for_a_code(
    client: Client, light_user, plans
):
    url = f"{light_user.url}change/{light_user.subscription.id}/{plans.medium.id}/"
    # when the customer chooses 24 months, having asked to change today
    response = client.get(f"{url}?lang=en&timing=now&binding=24")
    page = text(response)
    # then the page says the binding period it adds, until when, and asks for a code first
    assert response.status_code == 200
    assert "A new binding period, ending on the date shown with when the change" in page
    # each time it can take effect with the binding end it gives: 24 months from that day
    assert "when your next period starts (binding period until 30 November 2028)" in page
    assert "charged by day (binding period until 21 November 2028)" in page
    assert "This change adds a binding period, so we confirm it with a code." in page
    assert "Send me the code" in page
    assert "Confirm the change" not in page
    assert hidden(response, "binding_months") == "24"
    # and 24 months is marked, the other links keep the timing
    links = binding_links(response)
    assert links["24 months"] == ("?lang=en&timing=now&binding=24#binding-choice", True)
    assert links["No binding period"] == ("?lang=en&timing=now&binding=0#binding-choice", False)


def test_confirming_24_months_with_its_code_binds_for_24_months(
    client: Client, light_user, plans, sms_outbox, django_capture_on_commit_callbacks
):
    url = f"{light_user.url}change/{light_user.subscription.id}/{plans.medium.id}/"
    page = client.get(f"{url}?lang=en&binding=24")
    # when the customer asks for the code for 24 months
    with django_capture_on_commit_callbacks(execute=True):
        asked = client.post(
            f"{url}?lang=en&binding=24",
            {
                "action": "send_code",
                "idempotency_key": hidden(page, "idempotency_key"),
                "binding_months": "24",
            },
        )
    # then the code's message names the binding period, and the page keeps it
    assert asked["Location"] == "?lang=en&code=sent&timing=next_period&binding=24"
    assert "for 299 kr a month with a binding period of 24 months." in sms_outbox[-1][1]
    with_field = client.get(f"{url}{asked['Location']}")
    assert 'autocomplete="one-time-code"' in with_field.content.decode()
    links = binding_links(with_field)
    assert links["24 months"][1]
    # the code was sent for 24 months: another period's link asks for its own code
    assert links["12 months"][0] == "?lang=en&timing=next_period&binding=12#binding-choice"
    assert links["24 months"][0] == (
        "?lang=en&timing=next_period&code=sent&binding=24#binding-choice"
    )
    # when they confirm with it
    code = sent_code(sms_outbox)
    binding = hidden(with_field, "binding_months")
    done = confirm(
        client, f"{url}{asked['Location']}", with_field, code=code, binding_months=binding
    )
    # then the change binds the subscription for 24 months from when it takes effect
    assert done.status_code == 302
    change = PlanChange.objects.get()
    assert (change.to_plan, change.effective_date) == (plans.medium, date(2026, 12, 1))
    assert (change.from_binding_end, change.to_binding_end) == (None, date(2028, 11, 30))
    receipt = text(client.get(f"{light_user.url}changes/{change.id}/?lang=en"))
    assert "New binding period until 30 November 2028." in receipt


def test_a_code_for_one_binding_period_does_not_confirm_another(
    medium_user, plans, sms_outbox, django_capture_on_commit_callbacks
):
    # given a price rise to Mobil 30 GB (a code either way), and the codes sent for it
    # without a binding period and with 24 months
    sub = medium_user.subscription

    def send(months: int) -> str:
        with django_capture_on_commit_callbacks(execute=True):
            plan_change_code_send(
                subscription_id=sub.id,
                to_plan_id=plans.large.id,
                price=Decimal("399"),
                language="sv",
                binding_months=months,
            )
        return sent_code(sms_outbox)

    without, with_24 = send(0), send(24)
    assert "bindningstid" not in sms_outbox[0][1]
    assert "för 399 kr i månaden med 24 månaders bindningstid." in sms_outbox[1][1]

    def request(months: int, code: str, key: str):
        return plan_change_request_from_page(
            subscription_id=sub.id,
            to_plan_id=plans.large.id,
            idempotency_key=key,
            binding_months=months,
            code=code,
        )

    # when the code for no binding confirms 24 months, and the code for 24 months none
    for months, code, key in ((24, without, "a"), (0, with_24, "b")):
        with pytest.raises(DomainError) as error:
            request(months, code, key)
        # then it is not the right code, and nothing changes
        assert error.value.code == "code_invalid"
    assert not PlanChange.objects.exists()
    # and each code confirms the binding period it was sent for
    change = request(24, with_24, "c").change
    assert change.to_binding_end == date(2028, 11, 30)


def test_a_plan_sold_only_with_a_binding_period_can_be_chosen_and_confirmed(
    client: Client, light_user, plans, sms_outbox, ask_for_code
):
    # given Mobil 10 GB is sold only with 12 or 24 months' binding period
    plans.medium.binding_months_options = [12, 24]
    plans.medium.save()
    # then the plan list offers it, and says so
    listing = client.get(f"{light_user.url}plans/?lang=en")
    assert "With 12 or 24 months' binding period." in html.unescape(text(listing))
    url = f"{light_user.url}change/{light_user.subscription.id}/{plans.medium.id}/"
    assert f'href="../change/{light_user.subscription.id}/{plans.medium.id}/?lang=en"' in (
        listing.content.decode()
    )
    assert "Med 12 eller 24 månaders bindningstid." in text(client.get(f"{light_user.url}plans/"))
    # and its confirmation quotes the shortest binding period, marked, and asks for a code
    page = client.get(f"{url}?lang=en")
    assert page.status_code == 200
    assert list(binding_links(page).items()) == [
        ("12 months", ("?lang=en&binding=12#binding-choice", True)),
        ("24 months", ("?lang=en&binding=24#binding-choice", False)),
    ]
    assert "(binding period until 30 November 2027)" in text(page)
    assert "This plan is not offered with that binding period." not in text(page)
    # when the customer asks for the code and confirms with it
    ask_for_code(f"{url}?lang=en", page)
    done = confirm(client, f"{url}?lang=en", page, code=sent_code(sms_outbox), binding_months="12")
    # then the change is made with 12 months' binding
    assert done.status_code == 302
    assert PlanChange.objects.get().to_binding_end == date(2027, 11, 30)


def test_a_plan_sold_with_one_binding_period_says_it_as_a_fact(client: Client, light_user, plans):
    plans.medium.binding_months_options = [24]
    plans.medium.save()
    url = f"{light_user.url}change/{light_user.subscription.id}/{plans.medium.id}/?lang=en"
    response = client.get(url)
    assert 'class="binding-choice"' not in response.content.decode()
    assert "Binding period 24 months. A new binding period, ending on the date" in text(response)
    assert "(binding period until 30 November 2028)" in text(response)
    assert hidden(response, "binding_months") == "24"


@pytest.mark.parametrize("asked", ["abc", "-12", "36", "7", "1.5", "9" * 5000, ""])
def test_a_binding_period_the_plan_is_not_sold_with_shows_the_default(
    client: Client, light_user, plans, asked
):
    plans.small.binding_months_options = [12, 24]
    plans.small.save()
    sub = light_user.subscription
    # when the page is asked for a binding period that is no number, or not one on sale
    medium = client.get(f"{light_user.url}change/{sub.id}/{plans.medium.id}/?binding={asked}")
    small = client.get(f"{light_user.url}change/{sub.id}/{plans.small.id}/?binding={asked}")
    # then it shows the plan's default: no binding where it is sold without, else the shortest
    assert (medium.status_code, small.status_code) == (200, 200)
    assert hidden(medium, "binding_months") == "0"
    assert binding_links(medium)["Ingen bindningstid"][1]
    assert hidden(small, "binding_months") == "12"
    assert binding_links(small)["12 månader"][1]


def test_a_posted_binding_period_that_is_wrong_is_refused_without_a_change(
    client: Client, light_user, plans
):
    url = f"{light_user.url}change/{light_user.subscription.id}/{plans.medium.id}/?lang=en"
    page = client.get(url)
    # a negative or broken binding period is the form's to refuse
    for broken in ("-1", "twelve"):
        refused = confirm(client, url, page, binding_months=broken)
        assert refused.status_code == 400
        assert "Choose one of the binding periods shown." in text(refused)
    # one the plan is not sold with is the rules'
    refused = confirm(client, url, page, binding_months="36")
    assert refused.status_code == 409
    assert "This plan is not offered with that binding period." in text(refused)
    assert not PlanChange.objects.exists()


@pytest.mark.parametrize(
    ("posted", "valid", "cleaned"),
    [
        ("24", True, 24),
        ("0", True, 0),
        ("", True, None),  # a page rendered before the choice: the view takes the default
        ("-1", False, None),
        ("1.5", False, None),
        ("abc", False, None),
    ],
)
def test_the_form_takes_a_binding_period_as_a_whole_number_of_months(posted, valid, cleaned):
    form = PlanChangeConfirmForm(
        {"action": "confirm", "idempotency_key": "1" * 32, "binding_months": posted}
    )
    assert form.is_valid() is valid
    if valid:
        assert form.cleaned_data["binding_months"] == cleaned
    else:
        assert list(form.errors) == ["binding_months"]


def test_an_offer_is_confirmed_with_the_binding_period_chosen(
    client: Client, light_user, sms_outbox, ask_for_code
):
    offer = offer_of(light_user)
    url = f"{light_user.url}offers/{offer.id}/?lang=en&binding=12"
    page = client.get(url)
    assert binding_links(page)["12 months"][1]
    ask_for_code(url, page)
    confirm(client, url, page, code=sent_code(sms_outbox), binding_months="12")
    change = PlanChange.objects.get()
    assert (change.to_price, change.to_binding_end) == (Decimal("199.00"), date(2027, 11, 30))
    offer.refresh_from_db()
    assert (offer.status, offer.plan_change_id) == (OfferStatus.ACCEPTED, change.id)


# --- the rules, said on the page --------------------------------------------------------------


def test_a_cheaper_plan_during_the_binding_period_starts_the_day_after_it(client, plans):
    # given a binding period running until 31 March 2027
    billed = billed_customer(
        plans.medium, consent=False, generate=False, binding_end=date(2027, 3, 31)
    )
    url = f"{billed.url}change/{billed.subscription.id}/{plans.small.id}/?lang=en"
    # then the cheaper plan can be chosen now, and says it starts on 1 April
    page = text(client.get(url))
    assert "From 1 April 2027, the day after your binding period ends" in page
    assert "Confirm the change" in page
    response = confirm(client, url, client.get(url), timing="after_binding")
    change = PlanChange.objects.get()
    assert response.status_code == 302
    assert (change.to_plan, change.effective_date) == (plans.small, date(2027, 4, 1))
    # and the subscription keeps its plan until then
    billed.subscription.refresh_from_db()
    assert billed.subscription.plan == plans.medium


def test_today_with_proration_where_both_plans_allow_it(client: Client, light_user, plans):
    url = f"{light_user.url}change/{light_user.subscription.id}/{plans.medium.id}/?lang=en"
    response = confirm(client, url, client.get(url), timing="now")
    change = PlanChange.objects.get()
    assert response.status_code == 302
    assert (change.effective_date, change.status) == (date(2026, 11, 22), "applied")
    light_user.subscription.refresh_from_db()
    assert light_user.subscription.plan == plans.medium
    event = SubscriptionEvent.objects.get(subscription=light_user.subscription, kind="plan_changed")
    assert event.via == "invoice_page"
    assert "You have Mobil 10 GB for 299 kr a month from 22 November 2026." in text(
        client.get(f"{light_user.url}changes/{change.id}/?lang=en")
    )


def test_no_change_today_where_a_plan_does_not_allow_it(client: Client, light_user, plans):
    plans.medium.allows_immediate_change = False
    plans.medium.save()
    url = f"{light_user.url}change/{light_user.subscription.id}/{plans.medium.id}/?lang=en"
    page = client.get(url)
    assert "Today, 22 November" not in text(page)
    assert "From when From 1 December 2026, when your next period starts" in text(page)
    refused = confirm(client, url, page, timing="now")
    assert refused.status_code == 409
    assert "This change can take effect from your next period, not today." in text(refused)
    assert not PlanChange.objects.exists()


def test_another_change_while_one_is_pending_is_refused_with_a_way_to_undo_it(
    client: Client, light_user, plans
):
    pending = plan_change_request(
        subscription_id=light_user.subscription.id,
        to_plan_id=plans.small.id,
        requested_via="chat",
        idempotency_key="agent",
    ).change
    url = f"{light_user.url}change/{light_user.subscription.id}/{plans.medium.id}/?lang=en"
    response = client.get(url)
    assert "A change of this subscription is already waiting to take effect." in text(response)
    assert f'href="../../../changes/{pending.id}/?lang=en"' in response.content.decode()
    posted = client.post(url, {"action": "confirm", "idempotency_key": "3" * 32})
    assert "already waiting" in text(posted)
    assert PlanChange.objects.count() == 1


def test_a_tampered_key_is_refused_without_a_change(client: Client, light_user, plans):
    url = f"{light_user.url}change/{light_user.subscription.id}/{plans.medium.id}/?lang=en"
    response = client.post(url, {"action": "confirm", "idempotency_key": "'; drop table"})
    assert response.status_code == 400
    assert "The page was out of date." in text(response)
    assert not PlanChange.objects.exists()


def test_posting_without_the_csrf_token_is_refused(light_user, plans):
    client = Client(enforce_csrf_checks=True)
    url = f"{light_user.url}change/{light_user.subscription.id}/{plans.medium.id}/"
    response = client.post(url, {"action": "confirm", "idempotency_key": "4" * 32})
    assert response.status_code == 403
    assert not PlanChange.objects.exists()


# --- undo: from the receipt, and from the link in it ---------------------------------------------


def test_undo_from_the_receipt_within_the_cooling_off_period(client: Client, light_user, plans):
    url = f"{light_user.url}change/{light_user.subscription.id}/{plans.medium.id}/?lang=en"
    confirm(client, url, client.get(url), timing="now")
    change = PlanChange.objects.get()
    # when the customer undoes it the next week
    with time_machine.travel("2026-11-29 12:00 +01:00", tick=False):
        response = client.post(f"{light_user.url}changes/{change.id}/undo/?lang=en")
        assert response["Location"] == "../?lang=en"
        page = text(client.get(f"{light_user.url}changes/{change.id}/?lang=en"))
    # then it never happened
    change.refresh_from_db()
    light_user.subscription.refresh_from_db()
    assert change.status == PlanChangeStatus.UNDONE
    assert light_user.subscription.plan == plans.large
    assert "The change is undone. You keep Mobil 30 GB for 399 kr a month." in page
    assert "Undone on 29 November 2026." in page
    assert "Undo the change" not in page


def test_undo_after_the_cooling_off_period_says_it_has_passed(client: Client, light_user, plans):
    url = f"{light_user.url}change/{light_user.subscription.id}/{plans.medium.id}/?lang=en"
    confirm(client, url, client.get(url))
    change = PlanChange.objects.get()
    with time_machine.travel("2026-12-07 09:00 +01:00", tick=False):
        receipt = text(client.get(f"{light_user.url}changes/{change.id}/?lang=en"))
        assert "The cooling-off period ended on 6 December 2026" in receipt
        assert "Undo the change" not in receipt
        client.post(f"{light_user.url}changes/{change.id}/undo/?lang=en")
        again = text(client.get(f"{light_user.url}changes/{change.id}/?lang=en"))
    assert again.count("The cooling-off period ended on 6 December 2026") == 2
    change.refresh_from_db()
    assert change.status == PlanChangeStatus.SCHEDULED


def test_the_undo_link_undoes_until_the_deadline_and_then_says_it_has_passed(
    client: Client, medium_user, plans
):
    result = plan_change_request(
        subscription_id=medium_user.subscription.id,
        to_plan_id=plans.small.id,
        requested_via="invoice_page",
        idempotency_key="k",
    )
    url = f"/u/{result.undo_token}/"
    # on the last day of the cooling-off period the link shows what it undoes
    with time_machine.travel("2026-12-06 23:00 +01:00", tick=False):
        response = client.get(f"{url}?lang=en")
        page = text(response)
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
        assert response["Referrer-Policy"] == "strict-origin"
        assert "Undo your plan change" in page
        assert "If you undo it, you keep Mobil 10 GB for 299 kr a month" in page
    # the day after, it says the period has passed and undoes nothing
    with time_machine.travel("2026-12-07 00:30 +01:00", tick=False):
        assert "The cooling-off period ended on 6 December 2026" in text(
            client.get(f"{url}?lang=en")
        )
        client.post(url)
    assert PlanChange.objects.get().status == PlanChangeStatus.SCHEDULED
    # and within the period a POST undoes it, once, whatever the repeats
    with time_machine.travel("2026-12-01 08:00 +01:00", tick=False):
        first = client.post(f"{url}?lang=en")
        second = client.post(f"{url}?lang=en")
        page = text(client.get(f"{url}?lang=en"))
    assert first["Location"] == second["Location"] == "./?lang=en"
    assert PlanChange.objects.get().status == PlanChangeStatus.UNDONE
    assert "The change is undone" in page


def test_an_unknown_undo_link_is_a_friendly_404_and_counts_as_a_guess(client, settings):
    settings.INVOICE_LINK_GUESS_LIMIT = 2
    first = client.get(f"/u/{'x' * 43}/?lang=en")
    assert first.status_code == 404
    assert "We could not find that change" in text(first)
    assert first["Cache-Control"] == "no-store"
    client.get(f"/u/{'y' * 43}/")
    assert client.get(f"/u/{'z' * 43}/").status_code == 429


def test_undo_tokens_are_masked_like_invoice_tokens() -> None:
    token = "AbC_d-" * 7
    masked = mask_invoice_tokens(f"GET /u/{token}/ 200 and /i/{token}/plans/")
    assert token not in masked
    assert masked == "GET /u/[token]/ 200 and /i/[token]/plans/"


# --- the double click on PostgreSQL ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_double_click_with_a_code_on_postgresql_makes_one_change_and_no_error(
    postgres, sms_outbox
):
    # given a price rise and the code the customer was sent
    campaigns()
    plans = catalogue()
    billed = billed_customer(plans.medium, consent=False, generate=False)
    sub = billed.subscription
    plan_change_code_send(
        subscription_id=sub.id, to_plan_id=plans.large.id, price=Decimal("399.00"), language="sv"
    )
    code = sent_code(sms_outbox)
    barrier = threading.Barrier(3)
    results, errors = [], []

    def click() -> None:
        try:
            barrier.wait()
            results.append(
                plan_change_request_from_page(
                    subscription_id=sub.id,
                    to_plan_id=plans.large.id,
                    idempotency_key=f"page:{sub.id}:same",
                    code=code,
                    invoice_id=billed.invoice.id,
                )
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    # when the same confirmation arrives three times at once
    threads = [threading.Thread(target=click) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then one change, every answer is that change, and no click saw "code already used"
    assert errors == []
    assert PlanChange.objects.count() == 1
    assert {r.change.id for r in results} == {PlanChange.objects.get().id}
    assert sum(r.created for r in results) == 1
    assert OutboundMessage.objects.filter(body_text__contains="/u/[token]/").count() == 1
