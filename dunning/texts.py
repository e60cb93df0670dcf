"""The words of fees and interest on a claim: rendered once, in every language the invoice
page offers, and stored with the charge (``InvoiceCharge.texts``), as invoice lines are. So a
fee reads tomorrow as it read when it was added, whatever happens to the translations.

Each says what it is, its legal basis, how it was computed and how to avoid the next one.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils import dateformat, translation
from django.utils.translation import gettext, gettext_noop

from core.money import format_amount
from invoices.texts import format_value, text_languages

REMINDER_FEE_TITLE = gettext_noop("Reminder fee")
REMINDER_FEE_DETAIL = gettext_noop(
    "For the reminder of {date}. Your terms allow a reminder fee (agreed on {agreed_on}); the "
    "law caps it at {cap} and it is charged only once per invoice (lag 1981:739 om "
    "ersättning för inkassokostnader). Pay {amount} by {due} and nothing more is added."
)
INTEREST_TITLE = gettext_noop("Late-payment interest {start} – {end}")
INTEREST_DETAIL = gettext_noop(
    "{rate} a year on what was unpaid of the invoice, for {days} days: Riksbanken's "
    "reference rate of {reference} plus {margin} percentage points, as the Interest Act "
    "allows from the due date (räntelagen § 6). Interest grows by the day until you pay: "
    "pay {amount} by {due} and no more is added."
)
INTEREST_DETAIL_AT_HANDOVER = gettext_noop(
    "{rate} a year on what was unpaid of the invoice, for {days} days: Riksbanken's "
    "reference rate of {reference} plus {margin} percentage points, as the Interest Act "
    "allows from the due date (räntelagen § 6). Charged when the claim of {amount} was "
    "handed to debt collection."
)


@dataclass(frozen=True)
class Money:
    kronor: Decimal


@dataclass(frozen=True)
class Percent:
    value: Decimal


def format_param(value: object, language: str) -> str:
    """Kronor as '60,00 kr', a percentage as '10 %' ('10%' in English), a date as
    '1 december 2026' in ``language`` (call inside ``translation.override(language)``)."""
    if isinstance(value, Money):
        return f"{format_amount(value.kronor, language)}\u00a0kr"
    if isinstance(value, Percent):
        number = format_value(value.value, language)
        return f"{number}\u00a0%" if language == "sv" else f"{number}%"
    if isinstance(value, Decimal):
        return format_value(value, language)
    if isinstance(value, date):
        return dateformat.format(value, "j F Y")
    return str(value)


def charge_texts(title: str, detail: str, **params: object) -> dict[str, dict[str, str]]:
    """``{"sv": {"title", "detail"}, "en": {…}}`` from two message ids and their parameters."""
    texts = {}
    for code in text_languages():
        with translation.override(code):
            values = {key: format_param(value, code) for key, value in params.items()}
            texts[code] = {
                "title": gettext(title).format(**values),
                "detail": gettext(detail).format(**values),
            }
    return texts
