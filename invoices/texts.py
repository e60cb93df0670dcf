"""Render line texts (``billing.rating.Text``) in every language an invoice page offers.

Texts are rendered once, at issue, and stored with the line: an issued invoice reads the
same tomorrow even if a translation is improved today.
"""

from datetime import date
from decimal import Decimal
from functools import lru_cache

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
    return _render(language, text.msgid, tuple(text.params.items()))


# A bill run renders the same few texts with the same parameters (a plan's fee for the
# month) for thousands of customers: remember the recent ones.
@lru_cache(maxsize=8192)
def _render(language: str, msgid: str, params: tuple[tuple[str, object], ...]) -> str:
    catalog = trans_real.translation(language)
    values = {key: format_value(value, language) for key, value in params}
    return catalog.gettext(msgid).format(**values)


def text_languages() -> list[str]:
    """Every language an invoice page offers; stored texts exist in each."""
    return [code for code, _name in settings.LANGUAGES]


def line_texts(draft: LineDraft) -> dict[str, dict[str, str]]:
    """The line's title and detail in every language. The same texts give the same object
    (a bill run's lines repeat a few texts thousands of times, and each object is encoded
    once per batch, ``core.bulk``): read it, never change it."""
    return _line_texts(_key(draft.title), _key(draft.detail))


def _key(text: Text) -> tuple[str, tuple[tuple[str, object], ...]]:
    return text.msgid, tuple(text.params.items())


@lru_cache(maxsize=8192)
def _line_texts(
    title: tuple[str, tuple[tuple[str, object], ...]],
    detail: tuple[str, tuple[tuple[str, object], ...]],
) -> dict[str, dict[str, str]]:
    return {
        code: {"title": _render(code, *title), "detail": _render(code, *detail)}
        for code in text_languages()
    }
