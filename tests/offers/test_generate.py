from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.models import Consent, PlanChange
from billing.services import ChangeTiming
from offers.models import Campaign, Group, Offer, OfferStatus
from offers.services import offer_accept, offers_generate
from tests.factories import PlanFactory, SubscriptionFactory, UsageRecordFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel("2026-11-22 10:00 +01:00", tick=False):
        yield


@pytest.fixture
def campaigns() -> None:
    for code, kind in (
        ("right-size", "right_size"),
        ("end-of-binding", "end_of_binding"),
        ("loyalty-parity", "loyalty_parity"),
    ):
        Campaign.objects.update_or_create(
            code=code, defaults={"name": code, "kind": kind, "holdout_share": Decimal("0")}
        )


@pytest.fixture
def plans():
    small = PlanFactory(
        code="mobil-3", name="Mobil 3 GB", monthly_fee=Decimal("199"), data_included_gb=Decimal("3")
    )
    large = PlanFactory(
        code="mobil-30",
        name="Mobil 30 GB",
        monthly_fee=Decimal("399"),
        data_included_gb=Decimal("30"),
    )
    return small, large


def light_user(plan, *, consent: bool, binding_end=None, price=None):
    sub = SubscriptionFactory(
        plan=plan, binding_end=binding_end, agreed_monthly_price=price or plan.monthly_fee
    )
    for month in (8, 9, 10):
        UsageRecordFactory(
            subscription=sub,
            source_id=f"{sub.id}-{month}",
            quantity=2048,
            occurred_at=datetime(2026, month, 10, 10, tzinfo=UTC),
        )
    if consent:
        Consent.objects.create(
            customer=sub.customer,
            kind="personalised_offers",
            given_at=datetime(2026, 1, 1, tzinfo=UTC),
            source="crm",
        )
    return sub


def test_a_consenting_light_user_is_offered_the_smaller_plan_with_the_reason(
    campaigns, plans
) -> None:
    small, large = plans
    sub = light_user(large, consent=True)
    assert offers_generate(customer_ids=[sub.customer_id]) == 1
    offer = Offer.objects.get()
    assert offer.to_plan == small
    assert offer.monthly_saving == Decimal("200.00")
    assert offer.yearly_saving == Decimal("2400.00")
    assert offer.reason["en"] == (
        "You used about 2 GB a month over the last 3 months; Mobil 3 GB would have cost you "
        "200 kr less per month, 2,400 kr a year."
    )
    assert "Mobil 3 GB hade kostat dig 200 kr mindre per månad" in offer.reason["sv"]


def test_without_consent_no_offer_is_computed_from_usage(campaigns, plans) -> None:
    _, large = plans
    sub = light_user(large, consent=False)
    assert offers_generate(customer_ids=[sub.customer_id]) == 0


def test_loyalty_parity_needs_no_usage_and_says_so_plainly(campaigns, plans) -> None:
    _, large = plans
    sub = light_user(large, consent=False, price=Decimal("449"))
    offers_generate(customer_ids=[sub.customer_id])
    offer = Offer.objects.get(campaign__kind="loyalty_parity")
    assert (offer.to_plan, offer.offered_price) == (large, Decimal("399.00"))
    assert offer.reason["en"].startswith(
        "New customers pay 399 kr a month for Mobil 30 GB; you pay 449 kr."
    )


def test_the_end_of_binding_offer_names_the_date_and_what_happens(campaigns, plans) -> None:
    _, large = plans
    sub = light_user(large, consent=True, binding_end=date(2027, 1, 10))
    offers_generate(customer_ids=[sub.customer_id])
    offer = Offer.objects.get(campaign__kind="end_of_binding")
    assert "2027-01-10" in offer.reason["en"]
    assert "continues month to month at 399 kr" in offer.reason["en"]
    assert offer.valid_until == date(2027, 1, 10)


def test_computing_again_supersedes_the_open_offer(campaigns, plans) -> None:
    _, large = plans
    sub = light_user(large, consent=True)
    offers_generate(customer_ids=[sub.customer_id])
    offers_generate(customer_ids=[sub.customer_id])
    assert Offer.objects.filter(status=OfferStatus.OPEN).count() == 1
    assert Offer.objects.filter(status=OfferStatus.SUPERSEDED).count() == 1


def test_accepting_makes_one_plan_change_at_the_offered_price(campaigns, plans) -> None:
    small, large = plans
    sub = light_user(large, consent=True)
    offers_generate(customer_ids=[sub.customer_id])
    offer = Offer.objects.get()
    first = offer_accept(offer_id=offer.id, idempotency_key="k", requested_via="invoice_page")
    again = offer_accept(offer_id=offer.id, idempotency_key="k2", requested_via="invoice_page")
    assert first.change == again.change
    assert PlanChange.objects.get().to_plan == small
    offer.refresh_from_db()
    assert offer.status == OfferStatus.ACCEPTED


def test_a_holdout_customer_is_measured_but_cannot_accept(plans) -> None:
    Campaign.objects.update(active=False)
    Campaign.objects.update_or_create(
        code="right-size",
        defaults={
            "name": "x",
            "kind": "right_size",
            "holdout_share": Decimal("0.999"),
            "active": True,
        },
    )
    _, large = plans
    sub = light_user(large, consent=True)
    offers_generate(customer_ids=[sub.customer_id])
    offer = Offer.objects.get()
    assert offer.group == Group.HOLDOUT
    from core.errors import DomainError

    with pytest.raises(DomainError):
        offer_accept(offer_id=offer.id, idempotency_key="k", requested_via="invoice_page")


def test_an_offer_that_no_longer_applies_is_withdrawn_on_the_next_computation(
    campaigns, plans
) -> None:
    # given a right-size offer, then usage that grows to fit the current plan
    _, large = plans
    sub = light_user(large, consent=True)
    offers_generate(customer_ids=[sub.customer_id])
    for month in (8, 9, 10):
        UsageRecordFactory(
            subscription=sub,
            source_id=f"{sub.id}-{month}-more",
            quantity=25 * 1024,
            occurred_at=datetime(2026, month, 12, tzinfo=UTC),
        )
    # when offers are computed again
    offers_generate(customer_ids=[sub.customer_id])
    # then no offer stays open
    assert not Offer.objects.filter(status=OfferStatus.OPEN).exists()


def test_an_end_of_binding_offer_starts_the_day_after_the_binding_period(campaigns, plans) -> None:
    small, large = plans
    sub = light_user(large, consent=True, binding_end=date(2027, 1, 10))
    offers_generate(customer_ids=[sub.customer_id])
    offer = Offer.objects.get(campaign__kind="end_of_binding")
    change = offer_accept(
        offer_id=offer.id,
        idempotency_key="k",
        requested_via="invoice_page",
        timing=ChangeTiming.AFTER_BINDING,
    ).change
    assert (change.to_plan, change.effective_date) == (small, date(2027, 1, 11))


def test_broadband_is_never_offered_a_slower_tier_as_equivalent(campaigns) -> None:
    slow = PlanFactory(
        code="bb-100",
        name="Bredband 100",
        kind="broadband",
        monthly_fee=Decimal("349"),
        data_included_gb=None,
    )
    fast = PlanFactory(
        code="bb-1000",
        name="Bredband 1000",
        kind="broadband",
        monthly_fee=Decimal("549"),
        data_included_gb=None,
    )
    sub = light_user(fast, consent=True, price=Decimal("599"))
    offers_generate(customer_ids=[sub.customer_id])
    # only the same plan at the new-customer price, never the slower tier
    assert list(Offer.objects.values_list("to_plan", "offered_price")) == [
        (fast.id, Decimal("549.00"))
    ]
    assert not Offer.objects.filter(to_plan=slow).exists()


def test_taking_a_change_withdraws_the_subscription_s_other_offers(campaigns, plans) -> None:
    from offers.services import plan_change_request_from_page

    small, large = plans
    sub = light_user(large, consent=True, price=Decimal("449"))
    offers_generate(customer_ids=[sub.customer_id])
    assert Offer.objects.filter(status=OfferStatus.OPEN).count() == 2
    plan_change_request_from_page(
        subscription_id=sub.id,
        to_plan_id=small.id,
        idempotency_key="k",
        timing="next_period",
        code="",
        invoice_id=None,
        language="sv",
    )
    assert not Offer.objects.filter(status=OfferStatus.OPEN).exists()


@pytest.mark.django_db(transaction=True)
def test_two_computations_for_the_same_customers_at_once_take_turns(postgres, plans) -> None:
    import threading

    from django.db import connection

    for code, kind in (("right-size", "right_size"), ("loyalty-parity", "loyalty_parity")):
        Campaign.objects.update_or_create(
            code=code, defaults={"name": code, "kind": kind, "holdout_share": Decimal("0.5")}
        )
    _, large = plans
    subs = [light_user(large, consent=True, price=Decimal("449")) for _ in range(20)]
    ids = [s.customer_id for s in subs]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def compute() -> None:
        try:
            barrier.wait()
            offers_generate(customer_ids=ids)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=compute) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Offer.objects.filter(status=OfferStatus.OPEN).count() == 40  # 20 × 2 campaigns
