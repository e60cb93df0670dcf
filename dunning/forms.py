"""What the customer posts from the ways-out pages; the templates write the fields themselves.

Each confirmation carries the ``idempotency_key`` its page was rendered with
(``offers.forms.new_idempotency_key``), so a double click or a retry asks for the same thing
once.
"""

import uuid
from datetime import date
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from dunning.services.ways_out import REASON_MAX


class ConfirmationForm(forms.Form):
    idempotency_key = forms.CharField(max_length=64)

    def clean_idempotency_key(self) -> str:
        try:
            return uuid.UUID(self.cleaned_data["idempotency_key"]).hex
        except ValueError:
            raise forms.ValidationError(
                _("The page was out of date. Check what is shown and confirm again."),
                code="idempotency_key",
            ) from None


class PostponeForm(ConfirmationForm):
    new_due_date = forms.DateField(
        input_formats=["%Y-%m-%d"],
        error_messages={
            "required": _("Choose the new due date."),
            "invalid": _("Write the date as year-month-day, for example 2026-12-24."),
        },
    )

    def due_date(self) -> date:
        return self.cleaned_data["new_due_date"]


class InstalmentsForm(ConfirmationForm):
    parts = forms.IntegerField(min_value=2, max_value=6)
    # the total the page showed, so a changed amount is shown again before it is confirmed
    total = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))


class DisputeForm(ConfirmationForm):
    reason = forms.CharField(
        max_length=REASON_MAX,
        strip=True,
        error_messages={
            "required": _("Tell us in a few words what is wrong."),
            "max_length": _("Write at most 500 characters here. You can tell us more in the chat."),
        },
    )
