"""Rows that serve every app: one-time codes for confirming what a link alone may not do."""

from django.db import models


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
