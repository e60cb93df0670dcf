"""The CRM's API: customers with their consents, the plan catalogue, subscriptions created,
changed to another plan once per key, and ended."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from billing.models import Consent, Customer, PlanChange, Subscription, SubscriptionEvent
from tests.api import keyed
from tests.factories import CustomerFactory, PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm() -> APIClient:
    return keyed("read", "billing:write")


def test_a_customer_is_created_read_changed_and_listed(crm: APIClient) -> None:
    made = crm.post(
        "/api/v1/customers/",
        {
            "customer_number": "K-1001",
            "name": "Anna Berg",
            "email": "anna@example.se",
            "language": "en",
            "delivery_method": "sms",
        },
        format="json",
    )
    assert made.status_code == 201
    assert (made.json()["customer_number"], made.json()["language"]) == ("K-1001", "en")
    again = crm.post(
        "/api/v1/customers/", {"customer_number": "K-1001", "name": "Other"}, format="json"
    )
    assert (again.status_code, again.json()["code"]) == (400, "customer_exists")
    changed = crm.patch("/api/v1/customers/K-1001/", {"city": "Lund"}, format="json")
    assert (changed.json()["city"], changed.json()["name"]) == ("Lund", "Anna Berg")
    assert crm.get("/api/v1/customers/K-1001/").json()["city"] == "Lund"
    assert [c["customer_number"] for c in crm.get("/api/v1/customers/").json()["results"]] == [
        "K-1001"
    ]
    assert crm.get("/api/v1/customers/K-404/").status_code == 404


def test_bad_customer_fields_are_named(crm: APIClient) -> None:
    answer = crm.post(
        "/api/v1/customers/",
        {"customer_number": "K-1", "name": "", "email": "not an address", "language": "de"},
        format="json",
    )
    assert answer.status_code == 400
    assert set(answer.json()["fields"]) == {"name", "email", "language"}
    assert not Customer.objects.exists()


def test_consents_are_given_and_withdrawn_with_their_source(crm: APIClient) -> None:
    customer = CustomerFactory(customer_number="K-2")
    url = "/api/v1/customers/K-2/consents/"
    given = crm.post(url, {"kind": "marketing_sms", "given": True, "source": "crm"}, format="json")
    assert [c["kind"] for c in given.json()["consents"]] == ["marketing_sms"]
    crm.post(url, {"kind": "marketing_sms", "given": False}, format="json")
    consent = Consent.objects.get(customer=customer)
    assert (consent.source, consent.withdrawn_at is not None) == ("crm", True)


def test_a_subscription_is_created_changed_once_per_key_and_ended(crm: APIClient) -> None:
    CustomerFactory(customer_number="K-3")
    PlanFactory()
    PlanFactory(code="mobil-30", name="Mobil 30 GB", monthly_fee=Decimal("399.00"))
    with time_machine.travel(date(2026, 12, 1)):
        made = crm.post(
            "/api/v1/subscriptions/",
            {
                "customer": "K-3",
                "plan": "mobil-10",
                "identifier": "+46701112233",
                "start_date": "2026-12-01",
            },
            format="json",
        )
        assert made.status_code == 201
        sub = made.json()
        assert (sub["plan"], sub["agreed_monthly_price"], sub["status"]) == (
            "mobil-10",
            "299.00",
            "active",
        )
        url = f"/api/v1/subscriptions/{sub['id']}/change-plan/"
        body = {"plan": "mobil-30", "idempotency_key": "crm-77"}
        first = crm.post(url, body, format="json")
        second = crm.post(url, body, format="json")
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.json()["change"] == second.json()["change"]
        assert first.json()["effective_date"] == "2027-01-01"
        assert PlanChange.objects.count() == 1
        ended = crm.post(
            f"/api/v1/subscriptions/{sub['id']}/end/", {"end_date": "2027-03-31"}, format="json"
        )
        assert (ended.json()["status"], ended.json()["end_date"]) == ("ended", "2027-03-31")
        other_day = crm.post(
            f"/api/v1/subscriptions/{sub['id']}/end/", {"end_date": "2027-04-30"}, format="json"
        )
        assert other_day.json()["code"] == "subscription_ended"
    events = SubscriptionEvent.objects.filter(subscription_id=sub["id"]).values_list(
        "via", flat=True
    )
    assert set(events) == {"api"}
    listed = crm.get("/api/v1/subscriptions/?customer=K-3").json()["results"]
    assert [s["id"] for s in listed] == [sub["id"]]


def test_a_subscription_needs_a_known_customer_and_plan(crm: APIClient) -> None:
    CustomerFactory(customer_number="K-4")
    answer = crm.post(
        "/api/v1/subscriptions/",
        {"customer": "K-404", "plan": "none", "identifier": "1", "start_date": "2026-12-01"},
        format="json",
    )
    assert (answer.status_code, set(answer.json()["fields"])) == (400, {"customer"})
    answer = crm.post(
        "/api/v1/subscriptions/",
        {"customer": "K-4", "plan": "none", "identifier": "1", "start_date": "2026-12-01"},
        format="json",
    )
    assert set(answer.json()["fields"]) == {"plan"}
    assert not Subscription.objects.exists()


def test_the_plan_catalogue_is_read_with_the_read_scope() -> None:
    PlanFactory()
    PlanFactory(code="bredband-250", name="Bredband 250", kind="broadband")
    PlanFactory(code="mobil-old", name="Mobil (old)", available_for_new_customers=False)
    reader = keyed("read")

    def listed(query: str = "") -> list[str]:
        answer = reader.get(f"/api/v1/plans/?{query}")
        assert answer.status_code == 200, answer.json()
        return [plan["code"] for plan in answer.json()["results"]]

    plans = reader.get("/api/v1/plans/?kind=mobile&available=true").json()["results"]
    assert [(p["code"], p["data_included_gb"]) for p in plans] == [("mobil-10", "10.00")]
    assert sorted(listed()) == ["bredband-250", "mobil-10", "mobil-old"]
    assert listed("kind=broadband") == ["bredband-250"]
    assert listed("available=false") == ["mobil-old"]
    assert reader.get("/api/v1/plans/?kind=landline").status_code == 400


def test_writes_need_the_billing_scope_or_the_model_permission() -> None:
    reader = keyed("read")
    body = {"customer_number": "K-9", "name": "Nils"}
    assert reader.post("/api/v1/customers/", body, format="json").status_code == 403
    assert reader.get("/api/v1/customers/").status_code == 200
    staff = User.objects.create_user("crm-staff", is_staff=True)
    api = APIClient()
    api.force_authenticate(staff)
    assert api.post("/api/v1/customers/", body, format="json").status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="add_customer"))
    api.force_authenticate(User.objects.get(id=staff.id))
    assert api.post("/api/v1/customers/", body, format="json").status_code == 201
    SubscriptionFactory()
    assert keyed("usage:write").get("/api/v1/subscriptions/").status_code == 403


def test_customers_are_listed_by_the_filters_asked_with_their_consents_in_few_queries(
    crm: APIClient, django_assert_max_num_queries
) -> None:
    north = CustomerFactory.create_batch(3, billing_group="north", delivery_method="sms")
    CustomerFactory(billing_group="north", language="en")
    CustomerFactory(billing_group="south")
    for customer in north:
        Consent.objects.create(
            customer=customer, kind="marketing_sms", given_at="2026-11-01T10:00Z", source="crm"
        )
    # the page and its consents: a fixed number of queries, whatever the page's size
    with django_assert_max_num_queries(4):
        page = crm.get("/api/v1/customers/?billing_group=north&delivery_method=sms").json()
    assert [c["customer_number"] for c in page["results"]] == [c.customer_number for c in north]
    assert all(c["consents"][0]["kind"] == "marketing_sms" for c in page["results"])
    english = crm.get("/api/v1/customers/?language=en").json()["results"]
    assert [c["billing_group"] for c in english] == ["north"]
    wrong = crm.get("/api/v1/customers/?delivery_method=pigeon")
    assert (wrong.status_code, set(wrong.json()["fields"])) == (400, {"delivery_method"})


def test_subscriptions_are_listed_by_customer_plan_status_and_identifier(crm: APIClient) -> None:
    other_plan = PlanFactory(code="mobil-50", name="Mobil 50 GB")
    on_ten = SubscriptionFactory(identifier="+46701111111")
    on_fifty = SubscriptionFactory(plan=other_plan, customer=on_ten.customer)
    ended = SubscriptionFactory(end_date=date(2026, 10, 31), status="ended")

    def listed(query: str) -> list[int]:
        return [s["id"] for s in crm.get(f"/api/v1/subscriptions/?{query}").json()["results"]]

    assert listed("plan=mobil-50") == [on_fifty.id]
    assert listed(f"customer={on_ten.customer.customer_number}") == [on_ten.id, on_fifty.id]
    assert listed("status=ended") == [ended.id]
    assert listed("identifier=%2B46701111111") == [on_ten.id]
    assert listed("status=active&plan=mobil-10") == [on_ten.id]
    for query in ("status=", "status=paused"):
        wrong = crm.get(f"/api/v1/subscriptions/?{query}")
        assert (wrong.status_code, set(wrong.json()["fields"])) == (400, {"status"})
