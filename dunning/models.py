"""Reminders and dunning: the policy finance staff configure, each overdue invoice's case,
what each step sent and earned, and the customer's ways out (postponement, instalment plan,
a disputed line) that hold the steps back.

Layering: ``core ← billing ← invoices ← dunning``. Dunning reads invoices and adds to them
only through ``InvoiceCharge`` rows and ``invoice_set_status``; nothing below reaches up here.
The legal figures (caps, the interest margin) are settings with their sources
(``config/settings.py``, "Dunning"); the reference rate is a table with valid-from dates.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from invoices.models import Invoice, InvoiceLine


class ReferenceRate(models.Model):
    """Riksbanken's reference rate (referensränta), in force from ``valid_from`` until the next
    row. Late-payment interest is this plus ``DUNNING_INTEREST_MARGIN`` (räntelagen § 9 with
    § 6); the rate in force on the invoice's due date is fixed on its case."""

    valid_from = models.DateField(_("valid from"), unique=True)
    rate = models.DecimalField(_("rate (percent)"), max_digits=5, decimal_places=2)
    source = models.CharField(_("source"), max_length=200, blank=True)

    class Meta:
        ordering = ["-valid_from"]
        verbose_name = _("reference rate")
        verbose_name_plural = _("reference rates")
        constraints = [
            models.CheckConstraint(
                condition=Q(rate__gte=-20) & Q(rate__lte=50), name="reference_rate_sane"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rate} % from {self.valid_from}"


class DunningPolicy(models.Model):
    """What happens around and after the due date. Exactly one policy is active; a case keeps
    the policy it was opened under.

    The friendly notice goes ``friendly_notice_days_before`` days before the due date. After
    the due date the policy's steps run in order (``DunningStep``). Handing a claim to
    collection is a confirmed action of finance staff, allowed from
    ``collection_after_days`` days after the final notice's due date, never before.

    Before collection the customer has ways out on the invoice page (``dunning.terms``): one
    postponement of at most ``postponement_max_days`` after the current due date, and an
    instalment plan of 2 to ``instalment_max_parts`` parts, a month apart, for ``instalment_fee``
    (at most ``DUNNING_INSTALMENT_FEE_CAP``), when at least ``instalment_min_amount`` is open.
    A part not paid ``instalment_grace_days`` after its day breaks the plan.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    is_active = models.BooleanField(_("active"), default=False)
    friendly_notice_enabled = models.BooleanField(
        _("friendly notice before due date"), default=True
    )
    friendly_notice_days_before = models.PositiveSmallIntegerField(
        _("days before due date"), default=3
    )
    charge_interest = models.BooleanField(_("charge late-payment interest"), default=True)
    collection_after_days = models.PositiveSmallIntegerField(
        _("collection earliest, days after the final notice's due date"), default=1
    )
    # --- the customer's ways out, offered on the invoice page until collection ---------------
    postponement_enabled = models.BooleanField(
        _("customers may postpone the due date"), default=True
    )
    postponement_max_days = models.PositiveSmallIntegerField(
        _("postponement at most, days after the current due date"), default=30
    )
    instalments_enabled = models.BooleanField(_("customers may pay in instalments"), default=True)
    instalment_min_amount = models.DecimalField(
        _("instalments from (kr open)"), max_digits=10, decimal_places=2, default=Decimal("200.00")
    )
    instalment_max_parts = models.PositiveSmallIntegerField(_("instalments at most"), default=6)
    instalment_fee = models.DecimalField(
        _("instalment plan fee (kr)"), max_digits=8, decimal_places=2, default=Decimal("0.00")
    )
    instalment_first_due_days = models.PositiveSmallIntegerField(
        _("first instalment at the earliest, days after the plan is made"), default=14
    )
    instalment_grace_days = models.PositiveSmallIntegerField(
        _("days a late instalment is waited for"), default=5
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-is_active", "name"]
        verbose_name = _("dunning policy")
        verbose_name_plural = _("dunning policies")
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="one_active_dunning_policy"
            ),
            models.CheckConstraint(
                condition=Q(instalment_max_parts__gte=2) & Q(instalment_max_parts__lte=6),
                name="policy_instalments_2_to_6",
            ),
            models.CheckConstraint(
                condition=Q(instalment_fee__gte=0), name="policy_instalment_fee_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(instalment_min_amount__gte=0), name="policy_instalment_min_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class StepKind(models.TextChoices):
    REMINDER = "reminder", _("Reminder")  # påminnelse: may carry a fee, moves the due date
    FINAL_NOTICE = "final_notice", _("Final notice")  # the last letter before collection


class DunningStep(models.Model):
    """One step after the due date: sent ``days_after_due`` days after the current due date
    (the one the previous step set), it sets a new due date ``due_date_shift_days`` later.

    Reminders come first, the final notice (at most one) last; the admin checks the order,
    that a fee is at most ``DUNNING_REMINDER_FEE_CAP`` and that a fee is taken once per claim.
    """

    policy = models.ForeignKey(DunningPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(_("order"))
    kind = models.CharField(_("kind"), max_length=12, choices=StepKind, default=StepKind.REMINDER)
    days_after_due = models.PositiveSmallIntegerField(_("days after due date"), default=5)
    charge_fee = models.BooleanField(_("reminder fee"), default=False)
    fee = models.DecimalField(
        _("fee (kr)"), max_digits=8, decimal_places=2, default=Decimal("0.00")
    )
    due_date_shift_days = models.PositiveSmallIntegerField(
        _("new due date after (days)"), default=14
    )

    class Meta:
        ordering = ["policy", "position"]
        verbose_name = _("dunning step")
        verbose_name_plural = _("dunning steps")
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"], name="dunning_step_position"),
            models.CheckConstraint(condition=Q(fee__gte=0), name="dunning_step_fee_not_negative"),
            models.CheckConstraint(
                condition=Q(charge_fee=True) | Q(fee=0), name="dunning_step_fee_only_if_charged"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy} {self.position}. {self.get_kind_display()}"


class CaseStage(models.TextChoices):
    OVERDUE = "overdue", _("Overdue")  # past due with money open, no reminder yet
    REMINDED = "reminded", _("Reminded")  # one or more reminders sent
    FINAL_NOTICE = "final_notice", _("Final notice sent")
    COLLECTION_READY = "collection_ready", _("May be handed to collection")
    HANDED_OVER = "handed_over", _("Handed to collection")
    CLOSED = "closed", _("Closed")  # paid or credited: nothing more happens


class DunningCase(models.Model):
    """One overdue invoice's way through the policy, opened when it goes overdue.

    ``due_date`` is the current due date: the invoice's, moved by each reminder (a
    postponement's new due date is read from ``Postponement``, not copied here).
    ``interest_rate`` is the yearly late-payment rate in force on the original due date
    (reference rate + margin, percent), stored so a later change of the reference rate does
    not change this claim. Interest has been charged up to and including
    ``interest_charged_until``.
    """

    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="dunning_case")
    policy = models.ForeignKey(DunningPolicy, on_delete=models.PROTECT, related_name="cases")
    stage = models.CharField(
        _("stage"), max_length=16, choices=CaseStage, default=CaseStage.OVERDUE
    )
    original_due_date = models.DateField(_("original due date"))
    due_date = models.DateField(_("current due date"))
    steps_done = models.PositiveSmallIntegerField(_("steps done"), default=0)
    reference_rate = models.DecimalField(_("reference rate"), max_digits=5, decimal_places=2)
    interest_rate = models.DecimalField(_("interest rate"), max_digits=5, decimal_places=2)
    interest_charged_until = models.DateField(_("interest charged until"), null=True, blank=True)
    # the day the next thing may happen (a step, the collection day): what the task scans
    next_action_on = models.DateField(_("next action on"), null=True, blank=True)
    opened_at = models.DateTimeField(_("opened"))
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    handed_over_at = models.DateTimeField(_("handed to collection"), null=True, blank=True)
    handed_over_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-opened_at"]
        verbose_name = _("dunning case")
        verbose_name_plural = _("dunning cases")
        indexes = [models.Index(fields=["stage", "next_action_on"])]

    def __str__(self) -> str:
        return f"case {self.invoice_id} ({self.stage})"


class ActionKind(models.TextChoices):
    FRIENDLY_NOTICE = "friendly_notice", _("Friendly notice")
    REMINDER = "reminder", _("Reminder")
    FINAL_NOTICE = "final_notice", _("Final notice")
    COLLECTION = "collection", _("Handed to collection")


class DunningAction(models.Model):
    """What one policy step did on one invoice: what it asked, the due date it gave, what it
    added (``fee``, ``interest``, kronor) and by which channels it was sent.

    ``key`` names the step within the invoice's claim ("friendly_notice", "reminder:1",
    "reminder:2", "final_notice", "collection"); (invoice, key) is unique, so a task run twice
    acts once. The row is written under the case's lock; the messages go after commit and
    ``sent_at`` is set when they went.
    """

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="dunning_actions")
    case = models.ForeignKey(
        DunningCase, on_delete=models.PROTECT, null=True, blank=True, related_name="actions"
    )
    step = models.ForeignKey(
        DunningStep, on_delete=models.SET_NULL, null=True, blank=True, related_name="actions"
    )
    kind = models.CharField(_("kind"), max_length=16, choices=ActionKind)
    key = models.CharField(max_length=40)
    acted_on = models.DateField(_("date"))  # Europe/Stockholm
    due_date = models.DateField(_("due date given"), null=True, blank=True)
    amount_asked = models.DecimalField(_("amount asked"), max_digits=14, decimal_places=2)
    fee = models.DecimalField(_("fee"), max_digits=10, decimal_places=2, default=Decimal("0.00"))
    interest = models.DecimalField(
        _("interest"), max_digits=12, decimal_places=2, default=Decimal("0.00")
    )
    channels = models.CharField(_("channels"), max_length=20, blank=True)  # "email,sms"
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    acted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["invoice", "acted_on", "id"]
        verbose_name = _("dunning action")
        verbose_name_plural = _("dunning actions")
        constraints = [
            models.UniqueConstraint(fields=["invoice", "key"], name="dunning_action_once"),
        ]
        indexes = [models.Index(fields=["kind", "acted_on"])]

    def __str__(self) -> str:
        return f"{self.invoice_id} {self.key}"


# --- the customer's ways out (granted by their own services) -----------------------------


class GrantedBy(models.TextChoices):
    CUSTOMER = "customer", _("The customer on the invoice page")
    AGENT = "agent", _("An agent")


class Postponement(models.Model):
    """Anstånd: a new due date, granted once per invoice before collection. No step runs
    before ``new_due_date`` has passed; after it the steps count from ``new_due_date``."""

    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="postponement")
    previous_due_date = models.DateField(_("due date before"))
    new_due_date = models.DateField(_("new due date"))
    granted_by = models.CharField(_("granted by"), max_length=8, choices=GrantedBy)
    granted_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    granted_at = models.DateTimeField(_("granted"))
    receipt_sent_at = models.DateTimeField(_("receipt sent"), null=True, blank=True)
    # the form's key (scoped by where it came from: "page:<invoice>:…", "chat:<conversation>:…"),
    # so a repeated click returns the first result; "" when none was given
    idempotency_key = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["-granted_at"]
        verbose_name = _("postponement")
        verbose_name_plural = _("postponements")
        constraints = [
            models.CheckConstraint(
                condition=Q(new_due_date__gt=models.F("previous_due_date")),
                name="postponement_moves_due_date_later",
            ),
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="postponement_key_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id} until {self.new_due_date}"


class PlanStatus(models.TextChoices):
    ACTIVE = "active", _("Active")  # parts being paid: no reminder is sent
    COMPLETED = "completed", _("Completed")  # every part paid
    BROKEN = "broken", _("Broken")  # a part was not paid in time: dunning resumes


class InstalmentPlan(models.Model):
    """Avbetalningsplan: what was open split into 2–6 parts, with a fee of at most
    ``DUNNING_INSTALMENT_FEE_CAP`` (charged as an ``InvoiceCharge`` of kind instalment_fee).
    While it is active no reminder is sent; one active plan per invoice."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="instalment_plans")
    status = models.CharField(
        _("status"), max_length=10, choices=PlanStatus, default=PlanStatus.ACTIVE
    )
    parts = models.PositiveSmallIntegerField(_("parts"))
    amount = models.DecimalField(_("amount split"), max_digits=14, decimal_places=2)  # incl. fee
    fee = models.DecimalField(_("fee"), max_digits=8, decimal_places=2, default=Decimal("0.00"))
    granted_by = models.CharField(_("granted by"), max_length=8, choices=GrantedBy)
    granted_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    granted_at = models.DateTimeField(_("granted"))
    receipt_sent_at = models.DateTimeField(_("receipt sent"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)  # completed or broken
    # the form's key (scoped by where it came from: "page:<invoice>:…", "chat:<conversation>:…"),
    # so a repeated click returns the first result; "" when none was given
    idempotency_key = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["-granted_at"]
        verbose_name = _("instalment plan")
        verbose_name_plural = _("instalment plans")
        constraints = [
            models.CheckConstraint(
                condition=Q(parts__gte=2) & Q(parts__lte=6), name="instalment_plan_2_to_6_parts"
            ),
            models.CheckConstraint(condition=Q(fee__gte=0), name="instalment_fee_not_negative"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="instalment_amount_positive"),
            models.UniqueConstraint(
                fields=["invoice"], condition=Q(status="active"), name="one_active_plan_per_invoice"
            ),
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="instalment_plan_key_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id} in {self.parts} parts ({self.status})"


class Instalment(models.Model):
    """One part of a plan: its number (1…parts), due date and amount (kronor)."""

    plan = models.ForeignKey(InstalmentPlan, on_delete=models.CASCADE, related_name="instalments")
    number = models.PositiveSmallIntegerField(_("number"))
    due_date = models.DateField(_("due date"))
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)

    class Meta:
        ordering = ["plan", "number"]
        verbose_name = _("instalment")
        verbose_name_plural = _("instalments")
        constraints = [
            models.UniqueConstraint(fields=["plan", "number"], name="instalment_number_unique"),
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="instalment_amount_positive_part"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan_id}/{self.number} {self.amount} by {self.due_date}"


class DisputeStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("dispute status", "Open")  # dunning pauses on the amount
    # credited, or explained and owed again
    RESOLVED = "resolved", pgettext_lazy("dispute status", "Resolved")


class DisputeOutcome(models.TextChoices):
    UPHELD = "upheld", _("Upheld: credited")  # the customer was right: a credit note
    REJECTED = "rejected", _("Rejected: owed")  # explained: the amount is owed, dunning resumes


class Dispute(models.Model):
    """One invoice line the customer disputes: while open, ``amount`` is left out of what a
    reminder asks, of interest and of a collection claim; the rest of the invoice goes on.
    ``conversation_id`` is the chat conversation it is discussed in (a plain id: dunning does
    not depend on chat)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="disputes")
    line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, related_name="disputes")
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    reason = models.TextField(_("reason"))
    status = models.CharField(
        _("status"), max_length=10, choices=DisputeStatus, default=DisputeStatus.OPEN
    )
    resolution = models.CharField(_("resolution"), max_length=300, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=DisputeOutcome, blank=True)
    credit_note = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("credit note"),
    )
    conversation_id = models.PositiveBigIntegerField(_("conversation"), null=True, blank=True)
    opened_by = models.CharField(_("opened by"), max_length=8, choices=GrantedBy)
    opened_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    opened_at = models.DateTimeField(_("opened"))
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # the form's key (scoped by where it came from: "page:<invoice>:…", "chat:<conversation>:…"),
    # so a repeated click returns the first result; "" when none was given
    idempotency_key = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["-opened_at"]
        verbose_name = _("dispute")
        verbose_name_plural = _("disputes")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="dispute_amount_positive"),
            models.UniqueConstraint(
                fields=["line"], condition=Q(status="open"), name="one_open_dispute_per_line"
            ),
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="dispute_key_once",
            ),
            models.CheckConstraint(
                condition=Q(status="open", outcome="") | (Q(status="resolved") & ~Q(outcome="")),
                name="dispute_resolved_with_outcome",
            ),
        ]
        indexes = [models.Index(fields=["invoice", "status"])]

    def __str__(self) -> str:
        return f"{self.invoice_id} line {self.line_id} ({self.status})"
