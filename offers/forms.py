"""What the customer posts from the plan pages; the templates write the fields themselves."""

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from billing.services import ChangeTiming

CODE_DIGITS = 6


class PlanChangeConfirmForm(forms.Form):
    """The confirmation of one change: ``send_code`` asks for a one-time code, ``confirm``
    makes the change (with the code where the change needs one).

    ``idempotency_key`` is generated when the page is rendered and posted back unchanged, so
    a double click or a retry of the same page asks for the same change; ``binding_months``
    is the binding period the page showed, so the change (and the code) is for that one.
    """

    ACTIONS = (("confirm", "confirm"), ("send_code", "send_code"))

    action = forms.ChoiceField(choices=ACTIONS)
    idempotency_key = forms.CharField(max_length=64)
    timing = forms.ChoiceField(choices=[(t.value, t.value) for t in ChangeTiming], required=False)
    # The binding period the page was rendered with, in months (0: none); a page rendered
    # before the choice existed posts none, and the view takes the plan's default. Whether the
    # plan is sold with it is the rules' to say (``binding_not_offered``).
    binding_months = forms.IntegerField(
        min_value=0,
        required=False,
        error_messages={
            "invalid": _("Choose one of the binding periods shown."),
            "min_value": _("Choose one of the binding periods shown."),
        },
    )
    code = forms.CharField(max_length=20, required=False, strip=True)

    def clean_idempotency_key(self) -> str:
        try:
            return uuid.UUID(self.cleaned_data["idempotency_key"]).hex
        except ValueError:
            raise forms.ValidationError(
                _("The page was out of date. Check the change and confirm again."),
                code="idempotency_key",
            ) from None

    def clean_timing(self) -> ChangeTiming:
        return ChangeTiming(self.cleaned_data.get("timing") or ChangeTiming.NEXT_PERIOD)

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data.get("code", "").split())
        if code and (not code.isdigit() or len(code) != CODE_DIGITS):
            raise forms.ValidationError(
                _("Enter the 6 digits of the code we sent you."), code="code_format"
            )
        return code


def new_idempotency_key() -> str:
    """A fresh key for one rendering of a confirmation page."""
    return uuid.uuid4().hex
