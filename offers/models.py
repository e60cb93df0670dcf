"""Offers computed from a customer's own usage, the campaigns they belong to, and what the
customer did with them — measured against a holdout group that is never shown the offer."""

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models import Customer, Plan, PlanChange, Subscription
from invoices.models import Invoice


class CampaignKind(models.TextChoices):
    RIGHT_SIZE = "right_size", _("Right-size")  # the plan that fits the usage
    END_OF_BINDING = "end_of_binding", _("End of binding")  # best tariff as binding ends
    LOYALTY_PARITY = "loyalty_parity", _("Loyalty parity")  # never above new customers' price
    CUSTOM = "custom", _("Custom")  # defined by staff; offers added by them


class Campaign(models.Model):
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=CampaignKind)
    holdout_share = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.100"),
        help_text="Share of eligible customers who are never shown the offer (the control)",
    )
    active = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(holdout_share__gte=0) & Q(holdout_share__lt=1),
                name="holdout_share_fraction",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Group(models.TextChoices):
    TREATMENT = "treatment", _("Treatment")  # sees the offer
    HOLDOUT = "holdout", _("Holdout")  # eligible, not shown: the control group


class OfferStatus(models.TextChoices):
    OPEN = "open", _("Open")  # valid, may be shown and accepted
    ACCEPTED = "accepted", _("Accepted")  # a plan change came of it
    SUPERSEDED = "superseded", _("Superseded")  # replaced by a newer computation
    EXPIRED = "expired", _("Expired")  # past its validity


class Offer(models.Model):
    """One recommendation for one subscription, with its reason and figures.

    Money in kronor incl. VAT; savings are per month and per year against what the current
    plan cost over the same months (negative = the offer costs more, said before any click).
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="offers")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="offers")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="offers")
    group = models.CharField(max_length=10, choices=Group)
    personalised = models.BooleanField(help_text="Computed from usage (consent given)")
    to_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    offered_price = models.DecimalField(max_digits=10, decimal_places=2)
    current_monthly_cost = models.DecimalField(max_digits=10, decimal_places=2)
    offered_monthly_cost = models.DecimalField(max_digits=10, decimal_places=2)
    monthly_saving = models.DecimalField(max_digits=10, decimal_places=2)
    yearly_saving = models.DecimalField(max_digits=12, decimal_places=2)
    reason = models.JSONField(help_text='{"sv": "...", "en": "..."}')
    figures = models.JSONField(default=dict, blank=True)
    valid_until = models.DateField()
    created_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=OfferStatus, default=OfferStatus.OPEN)
    plan_change = models.ForeignKey(
        PlanChange, on_delete=models.SET_NULL, null=True, blank=True, related_name="offers"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "subscription"],
                condition=Q(status="open"),
                name="one_open_offer_per_campaign_subscription",
            )
        ]
        indexes = [models.Index(fields=["customer", "status"])]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.subscription_id} → {self.to_plan_id}"


class CampaignAssignment(models.Model):
    """Which group a customer is in for a campaign: decided once, from a hash, stable."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="assignments")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    group = models.CharField(max_length=10, choices=Group)
    assigned_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "customer"], name="one_group_per_campaign")
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.customer_id} {self.group}"


class OfferEventKind(models.TextChoices):
    SHOWN = "shown", _("Shown on the invoice")  # exposure: the customer opened the page with it
    CLICKED = "clicked", _("Clicked")  # the customer opened its confirmation page
    ACCEPTED = "accepted", _("Accepted")  # the change was confirmed


class OfferEvent(models.Model):
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=OfferEventKind)
    occurred_at = models.DateTimeField()
    invoice = models.ForeignKey(Invoice, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ["offer", "occurred_at"]
        constraints = [
            models.UniqueConstraint(fields=["offer", "kind"], name="offer_event_once_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.offer_id} {self.kind}"
