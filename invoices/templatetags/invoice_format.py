"""Template filters for customer-facing texts: money and dates in the active language."""

from datetime import date
from decimal import Decimal

from django import template
from django.utils import translation

from invoices.page import long_date, money

register = template.Library()


@register.filter(name="money")
def money_filter(amount: Decimal | None) -> str:
    """``{{ invoice.total|money }}`` → '1 234,50 kr' in Swedish, '1,234.50 kr' in English."""
    if amount is None or amount == "":
        return ""
    return money(Decimal(amount), translation.get_language() or "sv")


@register.filter(name="longdate")
def longdate_filter(day: date | None) -> str:
    """``{{ invoice.due_date|longdate }}`` → '1 december 2026' / '1 December 2026'."""
    return long_date(day) if day else ""


@register.filter(name="plain_spaces")
def plain_spaces_filter(text: str) -> str:
    """No-break spaces as plain ones: an SMS with a character outside the GSM 03.38 alphabet
    is sent as UCS-2, 70 characters a part instead of 160."""
    return str(text).replace("\u00a0", " ")
