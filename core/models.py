"""Rows that serve every app: one-time codes for confirming what a link alone may not do."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class OneTimeCode(models.Model):
    """A short code sent to a customer's registered phone or e-mail, for one purpose.

    Only a salted hash of the code is stored. Single use, valid a few minutes, a few attempts.
    """

    purpose = models.CharField(max_length=100, db_index=True, help_text="what it confirms")
    channel = models.CharField(max_length=5, choices=[("sms", "SMS"), ("email", "E-mail")])
    destination = models.CharField(max_length=254)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.purpose} via {self.channel}"


class ApiScope(models.TextChoices):
    READ = "read", "read"  # every GET of the API
    USAGE_WRITE = "usage:write", "usage:write"  # usage records in
    BILLING_WRITE = "billing:write", "billing:write"  # customers, subscriptions, bill runs, credits
    PAYMENTS_WRITE = "payments:write", "payments:write"  # payments, BgMax files


class ApiKey(models.Model):
    """A source system's key to the API: one per system, shown once when made, stored as its
    SHA-256 only, with the scopes it may use, revocable. Its requests run as ``user`` (an
    account made with the key, never staff, without a password) so what it does is recorded
    like anyone's work."""

    name = models.CharField(max_length=80, unique=True, help_text="The source system")
    prefix = models.CharField(max_length=12, unique=True, help_text="Shown to tell keys apart")
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    rate_per_minute = models.PositiveIntegerField(default=600)
    user = models.OneToOneField(
        "auth.User", on_delete=models.PROTECT, related_name="api_key", editable=False
    )
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None


class IdempotentRequest(models.Model):
    """A POST to the API sent with an ``Idempotency-Key``: the first answer, kept for a day,
    is the answer to every repeat of the same request by the same caller; the same key with
    other content is refused. A row without ``status`` is a request still being answered."""

    caller = models.CharField(max_length=40, help_text="key:<id> or user:<id>")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of what was sent")
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.BinaryField(blank=True, default=b"")
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["caller", "key"], name="idempotency_key_once_per_caller"
            )
        ]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.caller} {self.key}"


class WebhookEventType(models.TextChoices):
    INVOICE_ISSUED = "invoice.issued", "invoice.issued"
    INVOICE_PAID = "invoice.paid", "invoice.paid"
    INVOICE_OVERDUE = "invoice.overdue", "invoice.overdue"
    SUBSCRIPTION_CHANGED = "subscription.changed", "subscription.changed"
    OFFER_ACCEPTED = "offer.accepted", "offer.accepted"
    CONVERSATION_OPENED = "conversation.opened", "conversation.opened"


class WebhookEndpoint(models.Model):
    """Where the operator's systems want to hear what happened: a URL, the event types it
    takes, and the secret each delivery is signed with (HMAC-SHA256; kept, as signing needs
    it, and shown to staff to set up the receiver)."""

    name = models.CharField(max_length=80)
    url = models.URLField(max_length=500)
    event_types = models.JSONField(default=list, help_text="Empty: every type")
    secret = models.CharField(max_length=80, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self) -> str:
        return self.name

    def takes(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookEvent(models.Model):
    """Something that happened, as the operator's systems are told it: its type and data
    (ids and figures as strings), once; each endpoint gets its own delivery of it."""

    type = models.CharField(max_length=40, choices=WebhookEventType)
    data = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")

    def __str__(self) -> str:
        return f"{self.type} #{self.id}"


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")  # next_attempt_at says when
    DELIVERED = "delivered", _("Delivered")  # answered 2xx
    FAILED = "failed", _("Given up")  # no 2xx within the retry window


class WebhookDelivery(models.Model):
    """One event to one endpoint: tried until it is answered 2xx, with backoff, for a day;
    every attempt is logged on the row (``attempts``, the last answer); staff may send it
    again from the admin."""

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(
        max_length=10, choices=WebhookDeliveryStatus, default=WebhookDeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    log = models.JSONField(default=list, help_text="[{at, status_code, error, ms}] per attempt")
    delivered_at = models.DateTimeField(null=True, blank=True)
    # tried again until then (a day from when it was made, or from a resend by staff)
    retry_until = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="webhook_delivery_due",
            )
        ]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="one_delivery_per_endpoint")
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"
