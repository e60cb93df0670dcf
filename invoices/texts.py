"""Render line texts (``billing.rating.Text``) in every language an invoice page offers.

Texts are rendered once, at issue, and stored with the line: an issued invoice reads the
same tomorrow even if a translation is improved today.
"""

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.utils.translation import trans_real

from billing.rating import LineDraft, Text
from core.money import format_amount


def format_value(value: object, language: str) -> str:
    """A parameter as a reader of ``language`` expects it: 14,2 in Swedish, 14.2 in English."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return format_amount(value, language).rsplit("," if language == "sv" else ".", 1)[0]
        text = f"{value.normalize():f}"
        return text.replace(".", ",") if language == "sv" else text
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def render_text(text: Text, language: str) -> str:
    catalog = trans_real.translation(language)
    params = {key: format_value(value, language) for key, value in text.params.items()}
    return catalog.gettext(text.msgid).format(**params)


def line_texts(draft: LineDraft) -> dict[str, dict[str, str]]:
    return {
        code: {"title": render_text(draft.title, code), "detail": render_text(draft.detail, code)}
        for code, _name in settings.LANGUAGES
    }
