"""factory_boy factories for the billing domain."""

from datetime import date
from decimal import Decimal

import factory

from billing.models import Customer, Plan, RoamingZone, Subscription, UsageRecord


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    customer_number = factory.Sequence(lambda n: f"C{n:07d}")
    name = factory.Sequence(lambda n: f"Kund {n}")
    email = factory.Sequence(lambda n: f"kund{n}@example.se")
    phone = factory.Sequence(lambda n: f"+4670{n:07d}")
    language = "sv"
    address = "Storgatan 1"
    postal_code = "111 22"
    city = "Stockholm"


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan
        django_get_or_create = ("code",)

    code = "mobil-10"
    name = "Mobil 10 GB"
    monthly_fee = Decimal("299.00")
    data_included_gb = Decimal("10")
    voice_included_minutes = None
    sms_included = None
    data_overage_per_gb = Decimal("29.00")
    voice_overage_per_minute = Decimal("0.49")
    sms_overage_each = Decimal("0.69")
    binding_months_options = [0, 12, 24]


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    customer = factory.SubFactory(CustomerFactory)
    plan = factory.SubFactory(PlanFactory)
    identifier = factory.Sequence(lambda n: f"+4673{n:07d}")
    agreed_monthly_price = factory.LazyAttribute(lambda o: o.plan.monthly_fee)
    start_date = date(2025, 1, 1)
    binding_end = date(2026, 12, 31)


class RoamingZoneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RoamingZone
        django_get_or_create = ("code",)

    code = "world"
    name = "Resten av världen"
    countries = "*"
    data_per_mb = Decimal("0.50")
    voice_per_minute = Decimal("9.90")
    sms_each = Decimal("3.90")


class UsageRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageRecord

    subscription = factory.SubFactory(SubscriptionFactory)
    source_id = factory.Sequence(lambda n: f"med-{n}")
    kind = "data"
    quantity = Decimal("100")
    occurred_at = factory.LazyFunction(lambda: None)
    country = ""
