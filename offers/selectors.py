"""Reads of the offers app that the admin and the API share: the campaign report, and the
offers and plan changes the API lists.

The report compares a campaign's treatment group with its holdout, customer by customer,
as an intention-to-treat comparison: every eligible customer of the treatment counts,
whether or not an offer was ever shown to them, because only the whole groups were assigned
at random (``offers.services.holdout_group``). Counting only the customers who saw an offer
would compare self-selected customers with a random control.

Definitions (a customer is "eligible" for a campaign when they have at least one offer of
it, in any status; "the offer" below is any of their offers of the campaign):

- conversion: the customer changed the plan of an offered subscription within that offer's
  validity, i.e. a plan change that was not undone, requested at or after the offer was
  created and on or before its ``valid_until`` (and ``today``). An accepted offer is such a
  change; for the holdout it measures what customers did on their own. An accepted offer
  whose change was undone within the cooling-off period does not count, exactly as an undone
  change of a holdout customer does not.
- revenue effect: Σ (to_price − from_price) in kronor per month over the plan changes (not
  undone, requested by ``today``) of offered subscriptions at or after the subscription's
  first offer of the campaign, divided by the group's eligible customers. Negative: the
  group pays less per month (a right-size campaign is meant to be negative).
- churn: share of offered subscriptions whose ``end_date`` is set on or after the day
  (Stockholm) of their first offer: ended, or notice given and ending later.
- payment: share of the eligible customers' invoices (credit notes and credited invoices
  left out) issued after their first offer and due before ``today`` that are paid. An
  invoice not yet due is not yet a payment outcome.

Three aggregate queries, whatever the number of offers.
"""

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from statistics import NormalDist
from typing import Literal

from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils.translation import gettext as _

from billing.models import PlanChange, PlanChangeStatus
from core.money import quantize_ore
from invoices.models import DocumentKind, Invoice, InvoiceStatus
from offers.models import Campaign, Group, Offer, OfferEvent, OfferEventKind, OfferStatus
from offers.services import STOCKHOLM

CONFIDENCE = 0.95
# Below this many successes or failures in a group, the normal approximation is rough: the
# report says so next to the interval (the usual n·p ≥ 5 and n·(1 − p) ≥ 5 rule of thumb).
ROUGH_BELOW = 5


# --- the confidence interval -----------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    method: Literal["wald", "agresti-caffo"]


def difference_interval(
    x1: int, n1: int, x2: int, n2: int, *, confidence: float = CONFIDENCE
) -> Interval | None:
    """Confidence interval for p1 − p2, p1 = x1/n1 and p2 = x2/n2, by normal approximation.

    Wald (unpooled):  (p1 − p2) ± z · √( p1(1 − p1)/n1 + p2(1 − p2)/n2 ),
    z = Φ⁻¹(1 − (1 − confidence)/2), 1.959964 for 95 %.

    When a proportion is 0 or 1 its Wald variance is 0 and the interval collapses (0 of 10
    against 0 of 10 would give [0, 0]): then the Agresti–Caffo interval is used instead, the
    same formula on one success and one failure added to each group,
    p̃i = (xi + 1)/(ni + 2) and ñi = ni + 2; its centre moves towards 0 accordingly.
    Bounds are clipped to [−1, 1]. None when a group is empty: there is nothing to compare.
    """
    if n1 <= 0 or n2 <= 0:
        return None
    if not (0 <= x1 <= n1 and 0 <= x2 <= n2):
        raise ValueError("successes must lie between 0 and the group size")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p1, p2 = x1 / n1, x2 / n2
    method: Literal["wald", "agresti-caffo"] = "wald"
    if p1 in (0.0, 1.0) or p2 in (0.0, 1.0):
        method = "agresti-caffo"
        n1, n2 = n1 + 2, n2 + 2
        p1, p2 = (x1 + 1) / n1, (x2 + 1) / n2
    half = z * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    centre = p1 - p2
    return Interval(low=max(-1.0, centre - half), high=min(1.0, centre + half), method=method)


# --- the report ------------------------------------------------------------------------


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class GroupFigures:
    """One group's counts. Customers unless the name says otherwise."""

    group: str
    customers: int  # eligible: distinct customers with an offer of the campaign
    subscriptions: int  # distinct offered subscriptions (churn's denominator)
    offers: int
    offers_valid: int  # offers still valid on the report day: conversion may still come
    exposed: int | None  # customers shown an offer; None for the holdout, which never is
    offers_shown: int | None  # offers with a "shown" event; None for the holdout
    clicked: int
    accepted: int  # customers with an accepted offer (its change may since be undone)
    converted: int
    plan_changes: int  # plan changes counted in the revenue effect
    price_change_total: Decimal  # Σ (to_price − from_price), kronor per month
    churned: int  # subscriptions
    invoices_due: int
    invoices_paid: int

    @property
    def conversion(self) -> float | None:
        return _share(self.converted, self.customers)

    @property
    def exposure(self) -> float | None:
        return None if self.exposed is None else _share(self.exposed, self.customers)

    @property
    def revenue_per_customer(self) -> Decimal | None:
        """Mean change of the monthly price per eligible customer, in kronor (öre rounded)."""
        if not self.customers:
            return None
        return quantize_ore(self.price_change_total / self.customers)

    @property
    def churn(self) -> float | None:
        return _share(self.churned, self.subscriptions)

    @property
    def payment(self) -> float | None:
        return _share(self.invoices_paid, self.invoices_due)


@dataclass(frozen=True)
class ReportRow:
    """One figure for both groups, as the admin table and the CSV print it."""

    key: str  # stable English identifier: the CSV's "figure" column, which integrators parse
    label: str  # for people, in the language active when ``rows()`` was called
    kind: Literal["count", "share", "money"]
    treatment: int | float | Decimal | None
    holdout: int | float | Decimal | None
    difference: int | float | Decimal | None = None  # treatment − holdout, where it means something


@dataclass(frozen=True)
class CampaignReport:
    campaign: Campaign
    today: date
    treatment: GroupFigures
    holdout: GroupFigures
    uplift: float | None  # conversion_treatment − conversion_holdout (observed)
    interval: Interval | None  # of the uplift, 95 %
    revenue_difference: Decimal | None  # kronor per customer and month, treatment − holdout
    holdout_shown: int  # holdout offers with a "shown" event: must be 0, or the control leaks

    @property
    def has_offers(self) -> bool:
        return bool(self.treatment.offers or self.holdout.offers)

    @property
    def approximation_rough(self) -> bool:
        """Too few conversions (or non-conversions) for the normal approximation to be good."""
        if self.interval is None:
            return False
        return (
            min(
                self.treatment.converted,
                self.treatment.customers - self.treatment.converted,
                self.holdout.converted,
                self.holdout.customers - self.holdout.converted,
            )
            < ROUGH_BELOW
        )

    def rows(self) -> list[ReportRow]:
        t, h = self.treatment, self.holdout

        def diff(a: float | Decimal | None, b: float | Decimal | None) -> float | Decimal | None:
            return None if a is None or b is None else a - b  # type: ignore[operator]

        interval = self.interval
        return [
            ReportRow("customers", _("Eligible customers"), "count", t.customers, h.customers),
            ReportRow("subscriptions", _("Offered subscriptions"), "count", t.subscriptions,
                      h.subscriptions),
            ReportRow("offers", _("Offers"), "count", t.offers, h.offers),
            ReportRow("offers_valid", _("Offers still valid"), "count", t.offers_valid,
                      h.offers_valid),
            ReportRow("exposed", _("Customers shown an offer"), "count", t.exposed, h.exposed),
            ReportRow("offers_shown", _("Offers shown"), "count", t.offers_shown,
                      h.offers_shown),
            ReportRow("exposure", _("Exposure"), "share", t.exposure, h.exposure),
            ReportRow("clicked", _("Customers who clicked"), "count", t.clicked, h.clicked),
            ReportRow("accepted", _("Customers who accepted"), "count", t.accepted, h.accepted),
            ReportRow("converted", _("Customers who changed plan"), "count", t.converted,
                      h.converted),
            ReportRow("conversion", _("Conversion"), "share", t.conversion, h.conversion,
                      self.uplift),
            ReportRow("uplift_low", _("Uplift, 95 % CI low"), "share", None, None,
                      interval.low if interval else None),
            ReportRow("uplift_high", _("Uplift, 95 % CI high"), "share", None, None,
                      interval.high if interval else None),
            ReportRow("plan_changes", _("Plan changes after the offer"), "count",
                      t.plan_changes, h.plan_changes),
            ReportRow("price_change_total", _("Change of monthly price, total (kr)"), "money",
                      t.price_change_total, h.price_change_total),
            ReportRow("revenue_per_customer", _("Change of monthly price per customer (kr)"),
                      "money", t.revenue_per_customer, h.revenue_per_customer,
                      self.revenue_difference),
            ReportRow("churned", _("Subscriptions ended or given notice"), "count", t.churned,
                      h.churned),
            ReportRow("churn", _("Churn"), "share", t.churn, h.churn, diff(t.churn, h.churn)),
            ReportRow("invoices_due", _("Invoices due since the offer"), "count",
                      t.invoices_due, h.invoices_due),
            ReportRow("invoices_paid", _("of which paid"), "count", t.invoices_paid,
                      h.invoices_paid),
            ReportRow("payment", _("Paid share"), "share", t.payment, h.payment,
                      diff(t.payment, h.payment)),
        ]  # fmt: skip


def _empty(group: str) -> dict[str, object]:
    return {
        "group": group,
        "customers": 0,
        "subscriptions": 0,
        "offers": 0,
        "offers_valid": 0,
        "exposed": 0,
        "offers_shown": 0,
        "clicked": 0,
        "accepted": 0,
        "converted": 0,
        "plan_changes": 0,
        "price_change_total": Decimal("0.00"),
        "churned": 0,
        "invoices_due": 0,
        "invoices_paid": 0,
    }


def _event(kind: str) -> Exists:
    return Exists(OfferEvent.objects.filter(offer_id=OuterRef("pk"), kind=kind))


def campaign_report(campaign: Campaign, *, today: date) -> CampaignReport:
    """Treatment against holdout for one campaign, as of ``today`` (see the module's
    docstring for each figure). Three queries."""
    figures = {group: _empty(group) for group in Group.values}
    not_undone = ~Q(status=PlanChangeStatus.UNDONE)

    # 1. Per offer, then counted per group: funnel, conversion, churn.
    changed_in_window = Exists(
        PlanChange.objects.filter(not_undone, subscription_id=OuterRef("subscription_id"))
        .filter(requested_at__gte=OuterRef("created_at"))
        .annotate(day=TruncDate("requested_at", tzinfo=STOCKHOLM))
        .filter(day__lte=OuterRef("valid_until"))
        .filter(day__lte=today)
    )
    accepted_kept = Q(status=OfferStatus.ACCEPTED) & ~Q(plan_change__status=PlanChangeStatus.UNDONE)
    offer_day = TruncDate("created_at", tzinfo=STOCKHOLM)
    by_offer = (
        Offer.objects.filter(campaign=campaign)
        .values("group")
        .order_by()
        .annotate(
            customers=Count("customer_id", distinct=True),
            subscriptions=Count("subscription_id", distinct=True),
            offers=Count("id"),
            offers_valid=Count("id", filter=Q(valid_until__gte=today)),
            exposed=Count("customer_id", distinct=True, filter=Q(_event(OfferEventKind.SHOWN))),
            offers_shown=Count("id", filter=Q(_event(OfferEventKind.SHOWN))),
            clicked=Count("customer_id", distinct=True, filter=Q(_event(OfferEventKind.CLICKED))),
            accepted=Count("customer_id", distinct=True, filter=Q(status=OfferStatus.ACCEPTED)),
            converted=Count(
                "customer_id", distinct=True, filter=Q(changed_in_window) | accepted_kept
            ),
            churned=Count(
                "subscription_id",
                distinct=True,
                filter=Q(subscription__end_date__isnull=False)
                & Q(subscription__end_date__gte=offer_day),
            ),
        )
    )
    for row in by_offer:
        figures[row["group"]].update(row)

    # 2. Revenue: each plan change once, against its subscription's first offer.
    first_offer = Offer.objects.filter(
        campaign=campaign, subscription_id=OuterRef("subscription_id")
    ).order_by("created_at", "id")
    money = DecimalField(max_digits=14, decimal_places=2)
    by_change = (
        PlanChange.objects.filter(not_undone)
        .annotate(
            first_offer_at=Subquery(first_offer.values("created_at")[:1]),
            offer_group=Subquery(first_offer.values("group")[:1]),
            day=TruncDate("requested_at", tzinfo=STOCKHOLM),
        )
        .filter(first_offer_at__isnull=False, requested_at__gte=F("first_offer_at"))
        .filter(day__lte=today)
        .values("offer_group")
        .order_by()
        .annotate(
            plan_changes=Count("id"),
            price_change_total=Sum(F("to_price") - F("from_price"), output_field=money),
        )
    )
    for change_row in by_change:
        figures[change_row["offer_group"]].update(
            plan_changes=change_row["plan_changes"],
            price_change_total=change_row["price_change_total"],
        )

    # 3. Payment: each invoice once, against its customer's first offer. The join to the
    # customer's offers repeats an invoice per offer before it; distinct counts it once.
    by_invoice = (
        Invoice.objects.filter(
            kind=DocumentKind.INVOICE,
            due_date__lt=today,
            customer__offers__campaign=campaign,
            issued_at__gte=F("customer__offers__created_at"),
        )
        .exclude(status=InvoiceStatus.CREDITED)
        .values("customer__offers__group")
        .order_by()
        .annotate(
            invoices_due=Count("id", distinct=True),
            invoices_paid=Count("id", distinct=True, filter=Q(status=InvoiceStatus.PAID)),
        )
    )
    for invoice_row in by_invoice:
        figures[invoice_row["customer__offers__group"]].update(
            invoices_due=invoice_row["invoices_due"], invoices_paid=invoice_row["invoices_paid"]
        )

    # The holdout is never shown an offer: exposure does not apply (not "0 %"). Should a
    # page show one all the same, the report says so rather than hide it.
    holdout_shown = int(figures[Group.HOLDOUT]["offers_shown"])  # type: ignore[call-overload]
    figures[Group.HOLDOUT].update(exposed=None, offers_shown=None)
    treatment = GroupFigures(**figures[Group.TREATMENT])  # type: ignore[arg-type]
    holdout = GroupFigures(**figures[Group.HOLDOUT])  # type: ignore[arg-type]
    uplift = None
    if treatment.conversion is not None and holdout.conversion is not None:
        uplift = treatment.conversion - holdout.conversion
    revenue_difference = None
    if treatment.revenue_per_customer is not None and holdout.revenue_per_customer is not None:
        revenue_difference = treatment.revenue_per_customer - holdout.revenue_per_customer
    return CampaignReport(
        campaign=campaign,
        today=today,
        treatment=treatment,
        holdout=holdout,
        uplift=uplift,
        interval=difference_interval(
            treatment.converted, treatment.customers, holdout.converted, holdout.customers
        ),
        revenue_difference=revenue_difference,
        holdout_shown=holdout_shown,
    )


# --- the API's reads -----------------------------------------------------------------------


def offers_for_api(
    *, customer: str | None = None, status: str | None = None, campaign: str | None = None
) -> QuerySet[Offer]:
    """The offers an operator's channel may present: those of the treatment groups (a
    holdout's offer is the control, never shown anywhere), with what they are read with;
    ``customer`` a customer number, ``campaign`` a campaign's code."""
    found = Offer.objects.filter(group=Group.TREATMENT).select_related(
        "campaign", "customer", "subscription__plan", "to_plan"
    )
    if customer:
        found = found.filter(customer__customer_number=customer)
    if status:
        found = found.filter(status=status)
    if campaign:
        found = found.filter(campaign__code=campaign)
    return found


def offer_get_for_api(offer_id: int) -> Offer:
    """One offer of a treatment group, or ``Http404`` (a holdout's is not found either)."""
    found = offers_for_api().filter(id=offer_id).first()
    if found is None:
        raise Http404("No such offer.")
    return found


def plan_changes_for_api(
    *, customer: str | None = None, subscription: int | None = None, status: str | None = None
) -> QuerySet[PlanChange]:
    """Plan changes with their subscription, customer and plans; ``customer`` a customer
    number, ``subscription`` an id."""
    found = PlanChange.objects.select_related("subscription__customer", "from_plan", "to_plan")
    if customer:
        found = found.filter(subscription__customer__customer_number=customer)
    if subscription is not None:
        found = found.filter(subscription_id=subscription)
    if status:
        found = found.filter(status=status)
    return found


def plan_change_get_for_api(change_id: int) -> PlanChange:
    """One plan change, or ``Http404``."""
    found = plan_changes_for_api().filter(id=change_id).first()
    if found is None:
        raise Http404("No such plan change.")
    return found
