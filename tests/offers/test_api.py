"""The offers and plan-changes API, for the operator's shop, call centre and CRM: offers
listed and read (never a control group's), accepted once by the page's rules when the
customer accepted through another channel; plan changes listed, read and undone."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from billing.models import ConsentKind, PlanChange, PlanChangeStatus
from billing.services import consent_withdraw, plan_change_request, plan_changes_apply_due
from core.models import WebhookEvent
from core.webhooks import webhook_endpoint_create
from invoices.models import DocumentKind, Invoice, OutboundMessage
from offers.models import Campaign, Group, Offer, OfferStatus
from offers.services import offer_accept
from tests.api import keyed
from tests.factories import PlanFactory, SubscriptionFactory
from tests.invoices.test_corrections import change_now_on_22_november
from tests.offers.page_fixtures import NOW, Billed, offer_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def shop() -> APIClient:
    """The operator's shop system: it reads offers and accepts them."""
    return keyed("read", "billing:write")


def accept(api: APIClient, offer: Offer, **given: object):
    return api.post(f"/api/v1/offers/{offer.id}/accept/", given, format="json")


# --- offers ------------------------------------------------------------------------------------


def test_the_offers_a_customer_may_be_shown_are_listed_and_read(
    shop: APIClient, light_user: Billed, django_assert_max_num_queries
) -> None:
    offer = offer_of(light_user)
    with django_assert_max_num_queries(3):  # the key, its last use, one page with all it names
        listed = shop.get("/api/v1/offers/", {"customer": light_user.customer.customer_number})
    assert listed.status_code == 200
    (shown,) = listed.json()["results"]
    assert shown == {
        "id": offer.id,
        "campaign": "right-size",
        "customer": light_user.customer.customer_number,
        "subscription": light_user.subscription.id,
        "identifier": "+46701234567",
        "personalised": True,
        "from_plan": "mobil-30",
        "to_plan": "mobil-3",
        "binding_months_options": [0, 12, 24],
        "offered_price": "199.00",
        "current_monthly_cost": str(offer.current_monthly_cost),
        "offered_monthly_cost": str(offer.offered_monthly_cost),
        "monthly_saving": str(offer.monthly_saving),
        "yearly_saving": str(offer.yearly_saving),
        "reason": offer.reason,
        "valid_until": offer.valid_until.isoformat(),
        "created_at": shown["created_at"],
        "status": "open",
        "plan_change": None,
    }
    assert shop.get(f"/api/v1/offers/{offer.id}/").json() == shown


def test_offers_are_filtered_and_a_control_groups_offer_is_never_listed(
    shop: APIClient, light_user: Billed
) -> None:
    offer = offer_of(light_user)

    def listed(**filters: object) -> list[int]:
        answer = shop.get("/api/v1/offers/", filters)
        assert answer.status_code == 200
        return [o["id"] for o in answer.json()["results"]]

    assert listed(status="open", campaign="right-size") == [offer.id]
    assert listed(status="accepted") == []
    assert listed(campaign="loyalty-parity") == []
    assert listed(customer="K-404") == []
    Offer.objects.filter(id=offer.id).update(group=Group.HOLDOUT)
    assert listed() == []
    assert shop.get(f"/api/v1/offers/{offer.id}/").status_code == 404
    assert accept(shop, offer).status_code == 404
    refused = shop.get("/api/v1/offers/", {"status": "maybe"})
    assert (refused.status_code, list(refused.json()["fields"])) == (400, ["status"])


def test_an_offer_accepted_in_the_shop_makes_its_change_once_and_tells_the_customer(
    shop: APIClient, light_user: Billed, django_capture_on_commit_callbacks
) -> None:
    # given the operator's CRM listening, and another open offer of the subscription
    webhook_endpoint_create(name="CRM", url="https://crm.example.se/hooks")
    offer = offer_of(light_user)
    other = Offer.objects.create(
        **{
            f.attname: getattr(offer, f.attname)
            for f in Offer._meta.concrete_fields
            if f.name not in {"id", "campaign"}
        },
        campaign=Campaign.objects.get(code="loyalty-parity"),
    )
    # when the shop tells that the customer accepted it
    with django_capture_on_commit_callbacks(execute=True):
        made = accept(shop, offer, binding_months=12)
    # then the change is made at the offered price, with the binding period chosen
    assert made.status_code == 201
    change = PlanChange.objects.get()
    assert made.json() | {"requested_at": None} == {
        "id": change.id,
        "subscription": light_user.subscription.id,
        "customer": light_user.customer.customer_number,
        "identifier": "+46701234567",
        "from_plan": "mobil-30",
        "to_plan": "mobil-3",
        "from_price": "399.00",
        "to_price": "199.00",
        "from_binding_end": None,
        "to_binding_end": "2027-11-30",
        "effective_date": "2026-12-01",
        "status": "scheduled",
        "requested_via": "api",
        "requested_at": None,
        "cooling_off_until": change.cooling_off_until.isoformat(),
        "applied_at": None,
        "undone_at": None,
    }
    offer.refresh_from_db()
    other.refresh_from_db()
    assert (offer.status, offer.plan_change_id) == (OfferStatus.ACCEPTED, change.id)
    assert other.status == OfferStatus.SUPERSEDED
    # the customer has the receipt with the undo link, the CRM offer.accepted
    receipt = OutboundMessage.objects.get()
    assert "/u/[token]/" in receipt.body_text
    event = WebhookEvent.objects.get(type="offer.accepted")
    assert (event.data["offer"], event.data["plan_change"], event.data["via"]) == (
        offer.id,
        change.id,
        "api",
    )
    # and accepting it again, however, answers the same change
    again = accept(shop, offer, binding_months=0)
    assert (again.status_code, again.json()["id"]) == (200, change.id)
    assert PlanChange.objects.count() == 1
    assert OutboundMessage.objects.count() == 1
    assert WebhookEvent.objects.filter(type="offer.accepted").count() == 1


def test_an_offer_accepted_on_the_page_first_is_answered_with_that_change(
    shop: APIClient, light_user: Billed
) -> None:
    offer = offer_of(light_user)
    on_page = offer_accept(offer_id=offer.id, idempotency_key="page:1", requested_via="x")
    answer = accept(shop, offer)
    assert (answer.status_code, answer.json()["id"]) == (200, on_page.change.id)


def test_the_receipt_is_left_to_the_operator_when_asked(
    shop: APIClient, light_user: Billed
) -> None:
    made = accept(shop, offer_of(light_user), send_receipt=False)
    assert made.status_code == 201
    assert made.json()["to_binding_end"] is None  # the shortest binding offered: none
    assert not OutboundMessage.objects.exists()


def test_a_repeat_with_the_idempotency_key_is_the_first_answer_replayed(
    shop: APIClient, light_user: Billed
) -> None:
    offer = offer_of(light_user)
    headers = {"HTTP_IDEMPOTENCY_KEY": "shop-accept-1"}
    made = shop.post(f"/api/v1/offers/{offer.id}/accept/", {}, format="json", **headers)
    again = shop.post(f"/api/v1/offers/{offer.id}/accept/", {}, format="json", **headers)
    assert (made.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == made.json()


def test_an_offer_made_from_usage_needs_the_consent_in_force(
    shop: APIClient, light_user: Billed
) -> None:
    # given the customer withdrew their consent in the CRM (the offer is still open)
    consent_withdraw(
        customer_id=light_user.customer.id, kind=ConsentKind.PERSONALISED_OFFERS, source="crm"
    )
    offer = offer_of(light_user)
    # when the shop accepts it, then it is refused, and nothing is changed
    refused = accept(shop, offer)
    assert (refused.status_code, refused.json()["code"]) == (400, "consent_not_in_force")
    assert not PlanChange.objects.exists()
    offer.refresh_from_db()
    assert offer.status == OfferStatus.OPEN


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ({"binding_months": 6}, "binding_not_offered"),
        ({"timing": "whenever"}, "invalid"),
        ({"binding_months": "twelve"}, "invalid"),
        ({"send_receipt": "perhaps"}, "invalid"),
    ],
)
def test_a_choice_the_plan_is_not_sold_with_is_refused(
    shop: APIClient, light_user: Billed, given: dict[str, object], code: str
) -> None:
    refused = accept(shop, offer_of(light_user), **given)
    assert (refused.status_code, refused.json()["code"]) == (400, code)
    assert not PlanChange.objects.exists()


def test_an_expired_offer_is_not_accepted(shop: APIClient, light_user: Billed) -> None:
    offer = offer_of(light_user)
    with time_machine.travel(offer.valid_until + timedelta(days=1), tick=False):
        refused = accept(shop, offer)
    assert (refused.status_code, refused.json()["code"]) == (400, "offer_not_open")


def test_reading_needs_the_read_scope_and_accepting_the_billing_scope(light_user: Billed) -> None:
    offer = offer_of(light_user)
    assert APIClient().get("/api/v1/offers/").status_code == 401
    assert accept(APIClient(), offer).status_code == 401
    assert keyed("payments:write").get("/api/v1/offers/").status_code == 403
    refused = accept(keyed("read", "usage:write"), offer)
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    staff = User.objects.create_user("shop-staff", is_staff=True)
    api = APIClient()
    api.force_authenticate(staff)
    assert accept(api, offer).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="change_offer"))
    api.force_authenticate(User.objects.get(id=staff.id))
    assert accept(api, offer).status_code == 201


# --- plan changes ------------------------------------------------------------------------------


def test_plan_changes_are_listed_filtered_and_read(
    shop: APIClient, light_user: Billed, django_assert_max_num_queries
) -> None:
    made = accept(shop, offer_of(light_user)).json()
    other = SubscriptionFactory(plan=PlanFactory(code="mobil-30"), binding_end=None)
    theirs = plan_change_request(
        subscription_id=other.id,
        to_plan_id=PlanFactory(code="mobil-10").id,
        requested_via="chat",
        idempotency_key="chat-1",
    ).change

    def listed(**filters: object) -> list[int]:
        answer = shop.get("/api/v1/plan-changes/", filters)
        assert answer.status_code == 200
        return [c["id"] for c in answer.json()["results"]]

    with django_assert_max_num_queries(3):  # the key, its last use, one page with all it names
        assert len(shop.get("/api/v1/plan-changes/").json()["results"]) == 2
    assert listed() == [theirs.id, made["id"]]
    assert listed(customer=light_user.customer.customer_number) == [made["id"]]
    assert listed(subscription=other.id) == [theirs.id]
    assert listed(status="applied") == []
    assert listed(limit=1) == [theirs.id]
    assert shop.get(f"/api/v1/plan-changes/{made['id']}/").json() == made
    assert shop.get(f"/api/v1/plan-changes/{theirs.id + 1}/").status_code == 404
    for subscription in ("x", str(2**64)):
        refused = shop.get("/api/v1/plan-changes/", {"subscription": subscription})
        assert (refused.status_code, list(refused.json()["fields"])) == (400, ["subscription"])
    refused = shop.get("/api/v1/plan-changes/", {"subscription": "x", "status": "done"})
    assert (refused.status_code, set(refused.json()["fields"])) == (400, {"subscription", "status"})


def test_a_scheduled_change_is_undone_once(shop: APIClient, light_user: Billed) -> None:
    made = accept(shop, offer_of(light_user)).json()
    url = f"/api/v1/plan-changes/{made['id']}/undo/"
    undone = shop.post(url, format="json")
    assert undone.status_code == 200
    assert (undone.json()["plan_change"]["status"], undone.json()["corrections"]) == (
        "undone",
        [],
    )
    assert undone.json()["plan_change"]["undone_at"] is not None
    again = shop.post(url, format="json")
    assert again.json() == undone.json()
    light_user.subscription.refresh_from_db()
    assert light_user.subscription.plan.code == "mobil-30"
    with time_machine.travel(date(2026, 12, 2), tick=False):
        assert plan_changes_apply_due() == 0  # nothing left to take effect


def test_an_applied_change_undone_after_its_month_was_invoiced_is_credited(
    shop: APIClient,
) -> None:
    medium = PlanFactory(code="mobil-10", monthly_fee=Decimal("299"))
    large = PlanFactory(code="mobil-30", monthly_fee=Decimal("399"))
    sub = SubscriptionFactory(plan=medium, binding_end=None)
    change = change_now_on_22_november(sub, large).change
    with time_machine.travel("2026-12-03 12:00 +01:00", tick=False):
        headers = {"HTTP_IDEMPOTENCY_KEY": "undo-1"}
        undone = shop.post(f"/api/v1/plan-changes/{change.id}/undo/", **headers)
        replayed = shop.post(f"/api/v1/plan-changes/{change.id}/undo/", **headers)
    assert undone.status_code == 200
    (correction,) = undone.json()["corrections"]
    november = Invoice.objects.get(kind=DocumentKind.INVOICE)
    note = Invoice.objects.get(kind=DocumentKind.CREDIT_NOTE)
    assert correction == {
        "invoice": november.id,
        "invoice_number": november.display_number,
        "amount": "-30.00",
        "credit_note": note.id,
    }
    assert note.credited_invoice_id == november.id
    assert replayed["Idempotent-Replayed"] == "true"
    assert replayed.json() == undone.json()


def test_a_change_past_its_cooling_off_period_is_not_undone(
    shop: APIClient, light_user: Billed
) -> None:
    made = accept(shop, offer_of(light_user)).json()
    after = date.fromisoformat(made["cooling_off_until"]) + timedelta(days=1)
    with time_machine.travel(after, tick=False):
        plan_changes_apply_due()
        refused = shop.post(f"/api/v1/plan-changes/{made['id']}/undo/")
    assert (refused.status_code, refused.json()["code"]) == (400, "cooling_off_expired")
    assert PlanChange.objects.get().status == PlanChangeStatus.APPLIED


def test_plan_changes_are_read_with_the_read_scope_and_undone_with_the_billing_scope(
    shop: APIClient, light_user: Billed
) -> None:
    made = accept(shop, offer_of(light_user)).json()
    url = f"/api/v1/plan-changes/{made['id']}/"
    assert APIClient().get(url).status_code == 401
    assert APIClient().post(f"{url}undo/").status_code == 401
    assert keyed("usage:write").get(url).status_code == 403
    assert keyed("read").get(url).status_code == 200
    assert keyed("read").post(f"{url}undo/").status_code == 403
    assert PlanChange.objects.get().status == PlanChangeStatus.SCHEDULED
