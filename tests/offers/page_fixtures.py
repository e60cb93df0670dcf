"""Shared set-up of the plan-page tests: a catalogue, campaigns without a holdout, and a
customer's October invoice, issued by the real bill run, with a live link and the offers
``offers_generate`` computes from three months of usage."""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from billing.models import Consent, Customer, Plan, Subscription
from invoices.models import Invoice
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.links import invoice_link_create
from offers.models import Campaign, Offer, OfferStatus
from offers.services import offers_generate
from tests.factories import PlanFactory, SubscriptionFactory, UsageRecordFactory

# "Now" in every plan-page test: three weeks after the October invoice was issued.
NOW = "2026-11-22 10:00 +01:00"


@dataclass
class Catalogue:
    small: Plan  # Mobil 3 GB, 199 kr
    medium: Plan  # Mobil 10 GB, 299 kr
    large: Plan  # Mobil 30 GB, 399 kr
    broadband: Plan  # another kind: never listed for a mobile subscription


def catalogue() -> Catalogue:
    small = PlanFactory(
        code="mobil-3",
        name="Mobil 3 GB",
        monthly_fee=Decimal("199.00"),
        data_included_gb=Decimal("3"),
        voice_included_minutes=300,
        sms_included=100,
    )
    medium = PlanFactory(code="mobil-10", name="Mobil 10 GB", monthly_fee=Decimal("299.00"))
    large = PlanFactory(
        code="mobil-30",
        name="Mobil 30 GB",
        monthly_fee=Decimal("399.00"),
        data_included_gb=Decimal("30"),
    )
    broadband = PlanFactory(
        code="bredband-250",
        name="Bredband 250",
        kind="broadband",
        monthly_fee=Decimal("349.00"),
        data_included_gb=None,
    )
    return Catalogue(small=small, medium=medium, large=large, broadband=broadband)


def campaigns() -> None:
    """The standard campaigns, everyone in treatment (transactional tests flush the rows the
    data migration made, so they are written here)."""
    for code, kind in (
        ("right-size", "right_size"),
        ("end-of-binding", "end_of_binding"),
        ("loyalty-parity", "loyalty_parity"),
    ):
        Campaign.objects.update_or_create(
            code=code,
            defaults={"name": code, "kind": kind, "holdout_share": Decimal("0"), "active": True},
        )


@dataclass
class Billed:
    invoice: Invoice
    token: str
    subscription: Subscription

    @property
    def customer(self) -> Customer:
        return self.subscription.customer

    @property
    def url(self) -> str:
        return f"/i/{self.token}/"


def billed_customer(
    plan: Plan,
    *,
    consent: bool,
    data_mb: int = 2048,
    binding_end: date | None = None,
    price: Decimal | None = None,
    generate: bool = True,
    **customer: object,
) -> Billed:
    """A customer with one subscription ("Anna") using ``data_mb`` a month in August to
    October, billed for October (invoice dated 1 November), with a live link; offers are
    computed unless ``generate`` is false."""
    from tests.factories import CustomerFactory

    sub = SubscriptionFactory(
        customer=CustomerFactory(**customer),
        plan=plan,
        label="Anna",
        identifier="+46701234567",
        binding_end=binding_end,
        agreed_monthly_price=price or plan.monthly_fee,
    )
    for month in (8, 9, 10):
        UsageRecordFactory(
            subscription=sub,
            source_id=f"{sub.id}-{month}",
            quantity=Decimal(data_mb),
            occurred_at=datetime(2026, month, 10, 10, tzinfo=UTC),
        )
    if consent:
        Consent.objects.create(
            customer=sub.customer,
            kind="personalised_offers",
            given_at=datetime(2026, 1, 1, tzinfo=UTC),
            source="crm",
        )
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    bill_run_execute(bill_run_id=run.id)
    if generate:
        offers_generate(customer_ids=[sub.customer_id])
    invoice = Invoice.objects.get(customer=sub.customer, period_start=date(2026, 10, 1))
    return Billed(invoice=invoice, token=invoice_link_create(invoice=invoice), subscription=sub)


def offer_of(billed: Billed) -> Offer:
    """The subscription's open offer (there is one)."""
    return Offer.objects.get(subscription=billed.subscription, status=OfferStatus.OPEN)


def text(response) -> str:
    """The page's visible text, whitespace collapsed (tags dropped)."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html).replace("\xa0", " "))


def hidden(response, name: str) -> str:
    """The value of a hidden field of the page's form."""
    match = re.search(rf'name="{name}" value="([^"]*)"', response.content.decode())
    assert match, f"no field {name}"
    return match.group(1)
