"""Customers, the plan catalogue, subscriptions and usage: what a bill run rates."""

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Language(models.TextChoices):
    SWEDISH = "sv", "Svenska"
    ENGLISH = "en", "English"
    NORWEGIAN = "nb", "Norsk bokmål"


class DeliveryMethod(models.TextChoices):
    EMAIL = "email", _("E-mail with link")
    SMS = "sms", _("SMS with link")
    EMAIL_AND_SMS = "email_sms", _("E-mail and SMS")
    EMAIL_PDF = "email_pdf", _("E-mail with PDF")
    PAPER = "paper", _("Paper")


class Customer(models.Model):
    """Who pays. One invoice per customer and period covers all their subscriptions."""

    customer_number = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True, help_text="E.164, e.g. +46701234567")
    language = models.CharField(max_length=2, choices=Language, default=Language.SWEDISH)
    address = models.CharField(max_length=200, blank=True)
    postal_code = models.CharField(max_length=10, blank=True)
    city = models.CharField(max_length=100, blank=True)
    delivery_method = models.CharField(
        max_length=10, choices=DeliveryMethod, default=DeliveryMethod.EMAIL
    )
    # A bill cycle group: bill runs may cover one group at a time.
    billing_group = models.CharField(max_length=20, default="default", db_index=True)
    # The customer's terms: the day they agreed to a reminder fee (påminnelseavgift), if they
    # did. A fee may be taken only for a debt that arose after it (lag 1981:739 § 2).
    reminder_fee_agreed_on = models.DateField(_("reminder fee agreed on"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["customer_number"]

    def __str__(self) -> str:
        return f"{self.name} ({self.customer_number})"

    @property
    def wants_pdf(self) -> bool:
        return self.delivery_method in {DeliveryMethod.EMAIL_PDF, DeliveryMethod.PAPER}


class ConsentKind(models.TextChoices):
    PERSONALISED_OFFERS = "personalised_offers", _("Offers based on my usage")
    MARKETING_EMAIL = "marketing_email", _("Marketing by e-mail")
    MARKETING_SMS = "marketing_sms", _("Marketing by SMS")


class Consent(models.Model):
    """Samtycke: given at a time from a source, withdrawable. One row per grant."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    kind = models.CharField(max_length=32, choices=ConsentKind)
    given_at = models.DateTimeField()
    source = models.CharField(max_length=64, help_text="Where it was given: crm, invoice_page…")
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "kind"],
                condition=Q(withdrawn_at__isnull=True),
                name="one_active_consent_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.kind}"


class PlanKind(models.TextChoices):
    MOBILE = "mobile", _("Mobile")
    BROADBAND = "broadband", _("Broadband")


class Plan(models.Model):
    """A catalogue entry. Prices include VAT (consumer prices), in kronor.

    ``None`` for an included allowance means unlimited.
    """

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=PlanKind, default=PlanKind.MOBILE)
    monthly_fee = models.DecimalField(max_digits=10, decimal_places=2, help_text="List price")
    data_included_gb = models.DecimalField(
        max_digits=8, decimal_places=2, null=True, blank=True, help_text="Empty = unlimited"
    )
    voice_included_minutes = models.PositiveIntegerField(null=True, blank=True)
    sms_included = models.PositiveIntegerField(null=True, blank=True)
    # Overage, each per started unit: GB of data, minute of calls, one SMS.
    data_overage_per_gb = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal(0))
    voice_overage_per_minute = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal(0)
    )
    sms_overage_each = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal(0))
    binding_months_options = models.JSONField(
        default=list, blank=True, help_text="e.g. [0, 12, 24]"
    )
    available_for_new_customers = models.BooleanField(default=True)
    # Change rules: a move to a cheaper plan during a binding period is refused unless the
    # plan being left allows it; an immediate change is prorated by day where allowed.
    allows_downgrade_in_binding = models.BooleanField(default=False)
    allows_immediate_change = models.BooleanField(default=True)
    vat_rate = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal("0.25"))
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["kind", "monthly_fee"]
        constraints = [
            models.CheckConstraint(condition=Q(monthly_fee__gte=0), name="plan_fee_not_negative"),
            models.CheckConstraint(
                condition=Q(vat_rate__gte=0) & Q(vat_rate__lt=1), name="plan_vat_rate_fraction"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PlanPrice(models.Model):
    """The list-price history of a plan: the price valid from a date until the next row."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="price_history")
    monthly_fee = models.DecimalField(max_digits=10, decimal_places=2)
    valid_from = models.DateField()

    class Meta:
        ordering = ["plan", "-valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "valid_from"], name="one_price_per_plan_date")
        ]

    def __str__(self) -> str:
        return f"{self.plan_id} {self.monthly_fee} from {self.valid_from}"


class RoamingZone(models.Model):
    """Prices for usage abroad outside the EU/EEA (which roams as at home)."""

    code = models.SlugField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    countries = models.CharField(
        max_length=500, help_text="ISO 3166 alpha-2 codes, comma-separated"
    )
    data_per_mb = models.DecimalField(max_digits=8, decimal_places=2)
    voice_per_minute = models.DecimalField(max_digits=8, decimal_places=2)
    sms_each = models.DecimalField(max_digits=8, decimal_places=2)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    def country_codes(self) -> set[str]:
        return {c.strip().upper() for c in self.countries.split(",") if c.strip()}


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", _("Active")  # billed every period
    ENDED = "ended", _("Ended")  # billed up to end_date, then never again


class Subscription(models.Model):
    """A customer's plan on one number or line."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    identifier = models.CharField(max_length=40, help_text="MSISDN or line id", db_index=True)
    label = models.CharField(max_length=60, blank=True, help_text="e.g. the user's name")
    agreed_monthly_price = models.DecimalField(max_digits=10, decimal_places=2)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    binding_end = models.DateField(null=True, blank=True)
    notice_period_months = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=10, choices=SubscriptionStatus, default="active")

    class Meta:
        ordering = ["customer", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="subscription_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(notice_period_months__lte=1), name="consumer_notice_at_most_one_month"
            ),
            # An ended subscription says when it ended: the bill run bills up to that day.
            models.CheckConstraint(
                condition=~Q(status="ended") | Q(end_date__isnull=False),
                name="ended_subscription_has_end_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.identifier} ({self.plan})"


class Discount(models.Model):
    """A monthly discount on a subscription, in kronor incl. VAT, from one date to another."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="discounts"
    )
    description = models.CharField(max_length=120)
    monthly_amount = models.DecimalField(max_digits=10, decimal_places=2)
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True, help_text="Last day; empty = open")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(monthly_amount__gt=0), name="discount_amount_positive"
            )
        ]

    def __str__(self) -> str:
        return self.description


class SubscriptionEvent(models.Model):
    """The history of a subscription: every change, how it was asked for, and by whom."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        PLAN_CHANGED = "plan_changed", _("Plan changed")
        PRICE_CHANGED = "price_changed", _("Price changed")
        BINDING_CHANGED = "binding_changed", _("Binding period changed")
        ENDED = "ended", _("Ended")

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind)
    occurred_at = models.DateTimeField()
    via = models.CharField(max_length=30, help_text="admin, api, invoice_page, chat, import")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["subscription", "occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.kind}"


class UsageKind(models.TextChoices):
    DATA = "data", _("Data")  # quantity in MB
    VOICE = "voice", _("Calls")  # quantity in seconds
    SMS = "sms", _("SMS")  # quantity in messages


USAGE_UNITS = {UsageKind.DATA: "MB", UsageKind.VOICE: "s", UsageKind.SMS: "sms"}


class UsageRecord(models.Model):
    """One metered event or daily aggregate from mediation. ``country`` empty = at home.

    ``source_id`` is the source's own id: sending a record twice stores it once.
    """

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="usage")
    source_id = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=8, choices=UsageKind)
    quantity = models.DecimalField(max_digits=14, decimal_places=3)
    occurred_at = models.DateTimeField()
    country = models.CharField(max_length=2, blank=True, help_text="ISO alpha-2 when abroad")

    class Meta:
        indexes = [models.Index(fields=["subscription", "occurred_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=0), name="usage_quantity_not_negative")
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.kind} {self.quantity}"


class UsageMonth(models.Model):
    """A billed month's usage of one subscription at home and in the EU/EEA: the roll-up.

    Written by the bill run in the transaction that issues the month's invoice, one row for
    every subscription it rated (also without usage: a row means "this subscription-month is
    rolled up"), from the usage it billed; roaming outside the EU/EEA is not in it. The
    offers read it instead of summing the month's usage records again, so a billed month's
    usage is the usage it was billed for: records arriving after the bill run are in neither.

    Quantities are exact integer thousandths of the summed ``UsageRecord.quantity`` (three
    decimals): data in thousandths of a MB, calls of a second, SMS of a message.
    """

    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.CASCADE,
        related_name="usage_months",
        db_index=False,  # (``one_usage_month`` leads with the subscription)
    )
    month = models.DateField(help_text="First day of the month, Europe/Stockholm")
    # Whether any usage record at home or in the EU/EEA fell in the month (one of quantity 0
    # included). The offers count a month with such records and skip one without, exactly as
    # they did when they summed the records themselves.
    has_usage = models.BooleanField()
    data_milli_mb = models.BigIntegerField()
    voice_milli_seconds = models.BigIntegerField()
    sms_milli = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "month"], name="one_usage_month"),
            models.CheckConstraint(
                condition=Q(data_milli_mb__gte=0)
                & Q(voice_milli_seconds__gte=0)
                & Q(sms_milli__gte=0),
                name="usage_month_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.month:%Y-%m}"


class OneOffCharge(models.Model):
    """A one-off charge (a SIM card, a router) billed on the next invoice for its period."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="one_off_charges"
    )
    description = models.CharField(max_length=120)
    amount = models.DecimalField(max_digits=10, decimal_places=2, help_text="incl. VAT")
    vat_rate = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal("0.25"))
    charge_date = models.DateField()

    def __str__(self) -> str:
        return self.description


class BillRunStatus(models.TextChoices):
    PENDING = "pending", _("Pending")  # created, nothing issued yet
    RUNNING = "running", _("Running")  # issuing; may be resumed if the process died
    COMPLETED = "completed", _("Completed")  # every customer in scope has an invoice
    FAILED = "failed", _("Failed")  # stopped on an error; resume to continue


class BillRun(models.Model):
    """One period's issuing for one billing group. Re-running resumes where it stopped."""

    period = models.DateField(help_text="First day of the billed month")
    billing_group = models.CharField(max_length=20, default="default")
    invoice_date = models.DateField()
    status = models.CharField(max_length=10, choices=BillRunStatus, default=BillRunStatus.PENDING)
    customers_total = models.PositiveIntegerField(default=0)
    invoices_issued = models.PositiveIntegerField(default=0)
    lines_issued = models.PositiveIntegerField(default=0)
    total_amount = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal(0))
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period", "billing_group"]
        constraints = [
            models.UniqueConstraint(
                fields=["period", "billing_group"], name="one_run_per_period_group"
            )
        ]

    def __str__(self) -> str:
        return f"{self.period:%Y-%m} {self.billing_group}"


class BillRunChunk(models.Model):
    """A slice of a bill run's customers, by id (``first_customer_id``..``last_customer_id``),
    issued by one worker task. Done when the task walked all of it; whether the run is complete
    is still decided by counting invoices against the run's scope."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        DONE = "done", _("Done")

    bill_run = models.ForeignKey(BillRun, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    first_customer_id = models.BigIntegerField()
    last_customer_id = models.BigIntegerField()
    customers = models.PositiveIntegerField()
    status = models.CharField(max_length=8, choices=Status, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["bill_run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["bill_run", "position"], name="chunk_position_unique")
        ]

    def __str__(self) -> str:
        return f"{self.bill_run_id}#{self.position}"


class PlanChangeStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")  # confirmed, takes effect on effective_date
    APPLIED = "applied", _("Applied")  # the subscription carries the new plan
    UNDONE = "undone", _("Undone")  # withdrawn within the cooling-off period: never happened


PLAN_CHANGE_TRANSITIONS: dict[str, set[str]] = {
    PlanChangeStatus.SCHEDULED: {"applied", "undone"},
    PlanChangeStatus.APPLIED: {"undone"},
    PlanChangeStatus.UNDONE: set(),
}


class PlanChange(models.Model):
    """A requested change of a subscription's plan: exactly once per idempotency key.

    Prices are monthly, incl. VAT. The bill run prices each day of a month by the plan in
    effect that day, from these rows (undone ones excluded).
    """

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="plan_changes"
    )
    from_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    to_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    from_price = models.DecimalField(max_digits=10, decimal_places=2)
    to_price = models.DecimalField(max_digits=10, decimal_places=2)
    from_binding_end = models.DateField(null=True, blank=True)
    to_binding_end = models.DateField(null=True, blank=True)
    effective_date = models.DateField()
    status = models.CharField(
        max_length=10, choices=PlanChangeStatus, default=PlanChangeStatus.SCHEDULED
    )
    requested_via = models.CharField(max_length=20, help_text="invoice_page, chat, api, admin")
    requested_by = models.CharField(max_length=150, blank=True)
    idempotency_key = models.CharField(max_length=100, unique=True)
    requested_at = models.DateTimeField()
    cooling_off_until = models.DateField(help_text="Last day the customer may undo it")
    undo_token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["subscription", "effective_date", "id"]
        indexes = [models.Index(fields=["status", "effective_date"])]
        constraints = [
            models.CheckConstraint(
                condition=~Q(from_plan=models.F("to_plan")) | ~Q(from_price=models.F("to_price")),
                name="plan_change_changes_something",
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.subscription_id}: {self.from_plan_id}→{self.to_plan_id} {self.effective_date}"
        )

    @property
    def raises_price(self) -> bool:
        return self.to_price > self.from_price

    @property
    def adds_binding(self) -> bool:
        return self.to_binding_end is not None and (
            self.from_binding_end is None or self.to_binding_end > self.from_binding_end
        )
