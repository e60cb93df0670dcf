"""Everything the invoice page and the PDF show, computed from the issued document's snapshots.

``invoice_page_context(invoice, language)`` is pure data: strings already translated and
formatted for ``language``, Decimals where a renderer may want to compute, and SVG markup
from ``invoices.charts``. It takes no request, so the PDF renderer uses it as it is.

Reads, whatever the number of lines, subscriptions or earlier invoices (a constant count,
pinned by tests/invoices/test_page.py):

1. the customer's earlier invoices, newest first, at most ``HISTORY_MONTHS - 1`` of them;
2. the lines of this invoice and of the one before it, in one query;
3. the lines of the credit notes issued against this invoice, with their notes (or, on a
   credit note, the credited invoice);
4. what payments paid and what fees and interest added, in one query, and the rows of those
   charges only when there are any (an overdue claim).

Usage comes from the subscription snapshots stored at issue, never from UsageRecord.

``invoice_page_html`` renders the page once per invoice revision, language, day, due date
and earlier invoices' revisions, and keeps it in Django's cache (locmem, or Redis in
production): an issued invoice changes only through ``status``/``revision``, so a hit costs
one small query and a cache read. The offers part is not in the cached document: it changes
with offers and consent and carries a CSRF token, so the caller renders it per request and it
is put in the slot the document leaves for it (``OFFERS_SLOT``). The chat panel likewise
(``CHAT_SLOT``), and the customer's ways out of an unpaid invoice (``WAYS_OUT_SLOT``).
"""

import functools
import hashlib
from collections import defaultdict
from dataclasses import asdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.utils import dateformat, timezone, translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from core.money import ZERO, format_amount, quantize_ore
from invoices.card_gateway import CARD_MINIMUM_AMOUNT, card_payments_enabled, to_ore
from invoices.charts import ChartBar, monthly_usage_chart_svg, usage_bar_svg
from invoices.comparison import included_allowance, invoice_difference, usage_quantities
from invoices.models import (
    OPEN_STATUSES,
    ChargeKind,
    DocumentKind,
    Invoice,
    InvoiceCharge,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentStatus,
)
from invoices.selectors import InvoiceMoney, invoice_money
from invoices.swish import swish_payment
from invoices.texts import format_value

STOCKHOLM = ZoneInfo("Europe/Stockholm")
# Months in the usage chart, this invoice's included; the earlier ones are also listed.
HISTORY_MONTHS = 6
# Bump when the page's markup or context changes, so pages cached by the previous deploy
# (in Redis) are not served with the new code.
PAGE_CACHE_VERSION = "9"
# A cached page is keyed by day anyway (days left, due in …), so it need not live longer.
PAGE_CACHE_SECONDS = 24 * 60 * 60
# Where the per-request offers part goes in the cached document (an HTML comment, so a page
# rendered without offers reads the same).
OFFERS_SLOT = "<!-- offers -->"
# Where the per-request chat panel goes (chat.panel), after the offers part.
CHAT_SLOT = "<!-- chat -->"
# Where the customer's ways out go (dunning.page: "Need more time?"), after the summary.
WAYS_OUT_SLOT = "<!-- ways out -->"

STATUS_TONE: dict[str, str] = {
    InvoiceStatus.ISSUED: "open",
    InvoiceStatus.PARTLY_PAID: "partly",
    InvoiceStatus.PAID: "paid",
    InvoiceStatus.OVERDUE: "overdue",
    InvoiceStatus.CREDITED: "credited",
    InvoiceStatus.COLLECTION: "overdue",
}


def status_label(status: str) -> str:
    """The customer's words for a status (the model's labels are for staff)."""
    labels: dict[str, str] = {
        InvoiceStatus.ISSUED: pgettext("invoice status", "Not paid yet"),
        InvoiceStatus.PARTLY_PAID: pgettext("invoice status", "Partly paid"),
        InvoiceStatus.PAID: pgettext("invoice status", "Paid"),
        InvoiceStatus.OVERDUE: pgettext("invoice status", "Overdue"),
        InvoiceStatus.CREDITED: pgettext("invoice status", "Credited"),
        InvoiceStatus.COLLECTION: pgettext("invoice status", "Handed to debt collection"),
    }
    return labels.get(status, status)


def money(amount: Decimal, language: str) -> str:
    """'1 234,50 kr' / '1,234.50 kr' (non-breaking spaces, so an amount never wraps)."""
    return f"{format_amount(amount, language)}\u00a0kr"


def signed_money(amount: Decimal, language: str) -> str:
    return ("+" if amount > 0 else "") + money(amount, language)


def long_date(day: date) -> str:
    """'1 december 2026' / '1 December 2026' in the active language."""
    return dateformat.format(day, "j F Y")


def month_label(day: date) -> str:
    return dateformat.format(day, "F Y")


def percent(value: Decimal, language: str) -> str:
    number = format_value(Decimal(value).quantize(Decimal(1)), language)
    return f"{number}\u00a0%" if language == "sv" else f"{number}%"


def today_in_stockholm() -> date:
    return timezone.localdate(timezone=STOCKHOLM)


# --- reads ------------------------------------------------------------------------------


def _earlier_invoices(invoice: Invoice) -> QuerySet[Invoice]:
    return Invoice.objects.filter(
        customer_id=invoice.customer_id,
        kind=DocumentKind.INVOICE,
        period_start__lt=invoice.period_start,
    ).order_by("-period_start")[: HISTORY_MONTHS - 1]


# --- the context ----------------------------------------------------------------------


def invoice_page_context(
    invoice: Invoice,
    language: str,
    *,
    today: date | None = None,
    due_date: date | None = None,
    pay_now: Decimal | None = None,
) -> dict[str, Any]:
    """What the page and the PDF show about ``invoice``, in ``language``.

    ``today`` (Europe/Stockholm) decides "days left" and "due in"; the PDF may pass the
    invoice date so that a stored document does not age. ``due_date`` is the day payment is
    asked by now, when a reminder, a postponement or an instalment plan's next part moved it
    from the invoice's own; ``pay_now`` what is asked by then when it is less than all that
    is open (the plan's next part). The caller reads both from the dunning app, which sits
    above this one.
    """
    today = today or today_in_stockholm()
    with translation.override(language):
        return _context(invoice, language, today, due_date or invoice.due_date, pay_now)


def _context(
    invoice: Invoice, language: str, today: date, due_date: date, pay_now: Decimal | None
) -> dict[str, Any]:
    is_credit_note = invoice.kind == DocumentKind.CREDIT_NOTE
    earlier: list[Invoice] = []
    if not is_credit_note:
        earlier = list(_earlier_invoices(invoice).select_related("series"))
    previous = earlier[0] if earlier else None
    wanted = [invoice.id] + ([previous.id] if previous else [])
    all_lines = list(
        InvoiceLine.objects.filter(invoice_id__in=wanted).order_by("invoice_id", "position")
    )
    lines = [line for line in all_lines if line.invoice_id == invoice.id]
    previous_lines = [line for line in all_lines if line.invoice_id != invoice.id]
    credit_notes: list[Invoice] = []
    # line id -> (number of each credit note that credits it, the amount credited)
    credited_by: dict[int, list[tuple[str, Decimal]]] = {}
    credited_invoice: Invoice | None = None
    if is_credit_note and invoice.credited_invoice_id is not None:
        credited_invoice = (
            Invoice.objects.select_related("series").filter(id=invoice.credited_invoice_id).first()
        )
    else:
        # The credit notes come with their lines (a credit note always has at least one), so
        # one query says both which notes there are and which lines each of them credits.
        notes: dict[int, Invoice] = {}
        for credit_line in (
            InvoiceLine.objects.filter(invoice__credited_invoice=invoice)
            .select_related("invoice__series")
            .order_by("invoice__invoice_date", "invoice__number", "position")
        ):
            notes.setdefault(credit_line.invoice_id, credit_line.invoice)
            if credit_line.credited_line_id:
                credited_by.setdefault(credit_line.credited_line_id, []).append(
                    (credit_line.invoice.display_number, -credit_line.amount)
                )
        credit_notes = list(notes.values())
    snapshots: list[dict[str, Any]] = list(invoice.subscriptions or [])

    context: dict[str, Any] = {
        "invoice": invoice,
        "language": language,
        "lines": lines,
        "is_credit_note": is_credit_note,
        "seller": invoice.seller,
        "buyer": invoice.buyer,
        "groups": _groups(snapshots, lines, language, credited_by),
        "vat": _vat(invoice, language),
    }
    if is_credit_note:
        context["summary"] = _credit_note_summary(invoice, credited_invoice, language)
        return context
    credited_total = -sum((note.total for note in credit_notes), ZERO)
    money_in = invoice_money(invoice.id)
    paid, charged = money_in.paid, money_in.charged
    # Fees and interest are rare: their rows are read only when the claim has any.
    charges = list(InvoiceCharge.objects.filter(invoice_id=invoice.id)) if charged else []
    context.update(
        {
            "summary": _summary(
                invoice,
                credited_total,
                paid,
                charged,
                language,
                today,
                due_date,
                pay_now,
                from_credit=money_in.from_credit,
            ),
            "credit_balance": _credit_balance(money_in, language),
            "charges": _charges(charges, language),
            # reminder fees or interest: the claim grew because the due date passed (an
            # instalment plan's fee alone is one the customer agreed to)
            "charges_overdue": any(c.kind != ChargeKind.INSTALMENT_FEE for c in charges),
            "charges_total": money(charged, language) if charged else "",
            "credit_notes": [
                {
                    "number": note.display_number,
                    "date": long_date(note.invoice_date),
                    "amount": money(-note.total, language),
                    "reason": note.credit_reason,
                }
                for note in credit_notes
            ],
            "usage": _usage(snapshots, language),
            "chart": _chart(invoice, earlier, language),
            "binding": _binding(invoice, snapshots, language, today),
            "value": _value(invoice, snapshots, credited_total, language),
            "comparison": _comparison(invoice, lines, previous, previous_lines, language),
            "history": [
                {
                    "number": old.display_number,
                    "period": month_label(old.period_start),
                    "total": money(old.total, language),
                    "status": old.status,
                    "status_label": status_label(old.status),
                    "tone": STATUS_TONE.get(old.status, "open"),
                }
                for old in earlier
            ],
        }
    )
    return context


def _summary(
    invoice: Invoice,
    credited: Decimal,
    paid: Decimal,
    charged: Decimal,
    language: str,
    today: date,
    due_date: date,
    pay_now: Decimal | None = None,
    *,
    from_credit: Decimal = ZERO,
) -> dict[str, Any]:
    """``credited``: by credit notes; ``paid``: by booked payments (their surplus not),
    ``from_credit`` of it by the customer's credit balance;
    ``charged``: fees and interest added to the claim after issue; ``due_date``: the day
    payment is asked by now (the invoice's own, or later when a reminder moved it);
    ``pay_now``: what is asked by then, when less than all that is open (a plan's part)."""
    remaining = max(invoice.total + charged - credited - paid, ZERO)
    amount_due: Decimal | None = remaining if invoice.status in OPEN_STATUSES else None
    # what "How to pay" and Swish ask for: all that is open, or a plan's next part
    asked = min(pay_now, amount_due) if pay_now is not None and amount_due else amount_due
    nothing_to_pay = invoice.status in {InvoiceStatus.PAID, InvoiceStatus.CREDITED} or (
        amount_due is not None and amount_due == 0
    )
    days = (due_date - today).days
    moved = due_date != invoice.due_date
    if nothing_to_pay:
        due_note = _("Nothing to pay. Thank you!")
    elif invoice.status == InvoiceStatus.COLLECTION:
        due_note = _("This invoice has been handed to debt collection.")
    elif days < 0 or (invoice.status == InvoiceStatus.OVERDUE and not moved):
        due_note = _("The due date has passed. Please pay as soon as you can.")
    elif days == 0:
        due_note = _("Due today.")
    else:
        due_note = ngettext("Due tomorrow.", "Due in %(days)s days.", days) % {"days": days}
    seller = invoice.seller or {}
    payment = None
    if not nothing_to_pay:
        swish = swish_payment(
            swish_number=str(seller.get("swish", "")),
            amount=asked or ZERO,
            ocr=invoice.ocr or "",
        )
        payment = {
            "bankgiro": seller.get("bankgiro", ""),
            "ocr": invoice.ocr or "",
            "amount": money(asked, language) if asked is not None else "",
            "part": asked is not None and asked != amount_due,
            "due_date": long_date(due_date),
            # (segno's SVG of the code, with our own words as its title)
            "swish_qr": mark_safe(
                swish.qr_svg(title=_("Swish QR code: scan it in the Swish app to pay"))
            )
            if swish
            else "",
            "swish_url": swish.app_url if swish else "",
            "card": _card_payment(invoice, amount_due, language),
        }
    return {
        "title": _("Invoice %(number)s") % {"number": invoice.display_number},
        "number": invoice.display_number,
        "period": month_label(invoice.period_start),
        "period_range": f"{long_date(invoice.period_start)} – {long_date(invoice.period_end)}",
        "invoice_date": long_date(invoice.invoice_date),
        "due_date": long_date(due_date),
        "due_note": due_note,
        "original_due_date": long_date(invoice.due_date) if moved else "",
        "status": invoice.status,
        "status_label": status_label(invoice.status),
        "tone": STATUS_TONE.get(invoice.status, "open"),
        "total": money(invoice.total, language),
        "credited": money(credited, language) if credited else "",
        # money received (the credit balance's part is said on its own)
        "paid": money(paid - from_credit, language) if paid - from_credit and amount_due else "",
        "charged": money(charged, language) if charged else "",
        "credited_value": credited,
        "paid_value": paid,
        "amount_due_value": amount_due,
        "amount_due": money(amount_due, language) if amount_due is not None else "",
        "nothing_to_pay": nothing_to_pay,
        "payment": payment,
        # money is open: the page listens on its socket for a payment being booked, and then
        # reads this summary again (static/payment.js)
        "live": {
            "summaryUrl": f"summary/?lang={language}",
            "updated": _("Your invoice was updated: a payment was booked."),
        }
        if amount_due
        else None,
    }


def _card_payment(invoice: Invoice, amount_due: Decimal | None, language: str) -> dict[str, Any]:
    """The card form's words and settings (``static/payment.js``), when card payment is
    configured and Stripe takes the amount; else empty. All of it may be in the cached page:
    nothing here is per request (the script reads the CSRF token from its cookie)."""
    if (
        not card_payments_enabled()
        or amount_due is None
        or amount_due < CARD_MINIMUM_AMOUNT
        or invoice.currency != "SEK"
    ):
        return {}
    return {
        "amount": money(amount_due, language),
        "config": {
            "startUrl": "pay/card/",
            "amountOre": to_ore(amount_due),
            "currency": invoice.currency.lower(),
            "key": settings.STRIPE_PUBLISHABLE_KEY,
            "js": settings.STRIPE_JS_URL,
            "locale": language,
            "texts": {
                "working": _("Paying…"),
                "received": _(
                    "Thank you! Your payment went through. The invoice updates in a moment."
                ),
                "declined": _(
                    "The card payment did not go through. Try again or use another card."
                ),
                "unavailable": _(
                    "Card payment is not available right now. Please try again in a moment."
                ),
                "card_invalid": _("Check the card details and try again."),
            },
        },
    }


def _credit_balance(money_in: InvoiceMoney, language: str) -> dict[str, Any] | None:
    """What the customer's credit balance did for this invoice and what is left of it; None
    when the invoice has nothing to do with one and the customer has none."""
    if not (money_in.from_credit or money_in.surplus or money_in.credit_left):
        return None
    return {
        "used_value": money_in.from_credit,
        "used": money(money_in.from_credit, language) if money_in.from_credit else "",
        "surplus": money(money_in.surplus, language) if money_in.surplus else "",
        "left_value": money_in.credit_left,
        "left": money(money_in.credit_left, language),
    }


def _charges(charges: list[InvoiceCharge], language: str) -> list[dict[str, Any]]:
    """Fees and interest added after issue, each with the words stored when it was added:
    what it is, its legal basis, how it was computed and how to avoid the next one."""
    result = []
    for charge in charges:
        text = charge.text(language)
        result.append(
            {
                "kind": charge.kind,
                "title": text.get("title", ""),
                "detail": text.get("detail", ""),
                "date": long_date(charge.charged_on),
                "charged_on": charge.charged_on,
                "amount_value": charge.amount,
                "amount": money(charge.amount, language),
            }
        )
    return result


def _credit_note_summary(
    note: Invoice, credited_invoice: Invoice | None, language: str
) -> dict[str, Any]:
    return {
        "title": _("Credit note %(number)s") % {"number": note.display_number},
        "number": note.display_number,
        "period": month_label(note.period_start),
        "invoice_date": long_date(note.invoice_date),
        "credited_number": credited_invoice.display_number if credited_invoice else "",
        "reason": note.credit_reason,
        "amount": money(-note.total, language),
        "status_label": pgettext("invoice status", "Credit note"),
        "tone": "credited",
    }


# --- what you pay and why ------------------------------------------------------------------


def _credited_text(line: InvoiceLine, credits: list[tuple[str, Decimal]], language: str) -> str:
    """ "Credited by credit note K…", or how much when a note credited part of the line."""
    if not credits:
        return ""
    numbers = ", ".join(dict.fromkeys(number for number, _amount in credits))
    credited = sum((amount for _number, amount in credits), Decimal(0))
    if credited == line.amount:
        return _("Credited by credit note %(number)s") % {"number": numbers}
    return _("%(amount)s credited by credit note %(number)s") % {
        "amount": money(credited, language),
        "number": numbers,
    }


def _line(
    line: InvoiceLine, language: str, credited_by: dict[int, list[tuple[str, Decimal]]]
) -> dict[str, Any]:
    text = line.text(language)
    return {
        # the line's identity, for "ask about this line" and the agent console's credit note
        "id": line.id,
        "position": line.position,
        "credited_by": _credited_text(line, credited_by.get(line.id, []), language),
        "kind": line.kind,
        "title": text.get("title", ""),
        "detail": text.get("detail", ""),
        "amount_value": line.amount,
        "amount": money(line.amount, language),
        "negative": line.amount < 0,
    }


def subscription_heading(snapshot: dict[str, Any]) -> tuple[str, str]:
    """Heading and sub-heading of a subscription: 'Anna' and '+4670… · Mobil 10 GB'."""
    label = snapshot.get("label") or ""
    identifier = snapshot.get("identifier") or ""
    plan = snapshot.get("plan_name") or ""
    if label:
        return label, " · ".join(x for x in (identifier, plan) if x)
    return identifier or plan, plan if identifier else ""


def _groups(
    snapshots: list[dict[str, Any]],
    lines: list[InvoiceLine],
    language: str,
    credited_by: dict[int, list[tuple[str, Decimal]]],
) -> list[dict[str, Any]]:
    """Lines per subscription in the snapshot's order; lines of no subscription come last."""
    by_sub: dict[int | None, list[InvoiceLine]] = defaultdict(list)
    for line in lines:
        by_sub[line.subscription_id].append(line)
    groups = []
    for snapshot in snapshots:
        sub_lines = by_sub.pop(snapshot["id"], [])
        if not sub_lines:
            continue
        heading, subheading = subscription_heading(snapshot)
        subtotal = sum((line.amount for line in sub_lines), ZERO)
        groups.append(
            {
                "id": snapshot["id"],
                "heading": heading,
                "subheading": subheading,
                "lines": [_line(line, language, credited_by) for line in sub_lines],
                "subtotal_value": subtotal,
                "subtotal": money(subtotal, language),
            }
        )
    rest = sorted((line for group in by_sub.values() for line in group), key=lambda x: x.position)
    if rest:
        subtotal = sum((line.amount for line in rest), ZERO)
        groups.append(
            {
                "id": None,
                "heading": _("Other"),
                "subheading": "",
                "lines": [_line(line, language, credited_by) for line in rest],
                "subtotal_value": subtotal,
                "subtotal": money(subtotal, language),
            }
        )
    return groups


def _vat(invoice: Invoice, language: str) -> dict[str, Any]:
    rates = []
    for row in invoice.vat_summary or []:
        rate = Decimal(row["rate"])
        rates.append(
            {
                "rate": percent(rate * 100, language),
                "base": money(Decimal(row["base"]), language),
                "vat": money(Decimal(row["vat"]), language),
            }
        )
    return {
        "rates": rates,
        "net_total": money(invoice.net_total, language),
        "vat_total": money(invoice.vat_total, language),
        "rounding": money(invoice.rounding, language) if invoice.rounding else "",
        "total": money(invoice.total, language),
    }


# --- usage, the chart and the value summary ----------------------------------------------


def _meter(kind: str, used: Decimal, included: Decimal | None, language: str) -> dict[str, Any]:
    names = {"data": _("Data"), "voice": _("Calls"), "sms": _("SMS")}
    units = {
        "data": lambda n: f"{n}\u00a0GB",
        "voice": lambda n: _("%(count)s min") % {"count": n},
        "sms": lambda n: _("%(count)s SMS") % {"count": n},
    }
    unit = units[kind]
    used_text = unit(format_value(used, language))
    over = included is not None and used > included
    share: Decimal | None = None
    if included is None:
        text = _("%(used)s used, unlimited included") % {"used": used_text}
    elif included == 0:
        text = _("%(used)s used, none included") % {"used": used_text}
    else:
        share = used * 100 / included
        text = _("%(used)s of %(included)s used (%(percent)s)") % {
            "used": used_text,
            "included": unit(format_value(included, language)),
            "percent": percent(share, language),
        }
    over_text = ""
    if over and included is not None:
        over_text = _("%(beyond)s beyond what is included") % {
            "beyond": unit(format_value(used - included, language))
        }
    label = f"{names[kind]}: {text}" + (f". {over_text}" if over_text else "")
    return {
        "kind": kind,
        "name": names[kind],
        "text": text,
        "over": over,
        "over_text": over_text,
        "unlimited": included is None,
        "share": share,
        "used": used,
        "included": included,
        # Unlimited has no scale to draw against: the words say it all.
        "svg": mark_safe(usage_bar_svg(used=used, included=included, label=label))
        if included is not None
        else "",
    }


def _usage(snapshots: list[dict[str, Any]], language: str) -> list[dict[str, Any]]:
    result = []
    for snapshot in snapshots:
        quantities = usage_quantities(snapshot)
        meters = [
            _meter("data", quantities["data_gb"], included_allowance(snapshot, "data_gb"), language)
        ]
        if snapshot.get("plan_kind", "mobile") == "mobile":
            meters.append(
                _meter(
                    "voice",
                    quantities["voice_minutes"],
                    included_allowance(snapshot, "voice_minutes"),
                    language,
                )
            )
            meters.append(
                _meter("sms", quantities["sms"], included_allowance(snapshot, "sms"), language)
            )
        eu_mb = Decimal((snapshot.get("used") or {}).get("eu_roaming_data_mb") or "0")
        eu_gb = (eu_mb / 1024).quantize(Decimal("0.1"))
        heading, subheading = subscription_heading(snapshot)
        result.append(
            {
                "id": snapshot["id"],
                "heading": heading,
                "subheading": subheading,
                "meters": meters,
                "included_shared": (
                    _(
                        "Your plan changed during the month, so what is included is each "
                        "plan's share for the days you had it."
                    )
                    if snapshot.get("included_shared")
                    else ""
                ),
                "eu_roaming": (
                    _(
                        "%(amount)s GB of the data was used in other EU/EEA countries, "
                        "at home prices."
                    )
                    % {"amount": format_value(eu_gb, language)}
                    if eu_gb > 0
                    else ""
                ),
            }
        )
    return result


def _month_totals(snapshots: list[dict[str, Any]]) -> dict[str, Decimal]:
    totals = {"data_gb": Decimal(0), "voice_minutes": Decimal(0), "sms": Decimal(0)}
    for snapshot in snapshots:
        for key, value in usage_quantities(snapshot).items():
            totals[key] += value
    return totals


def _data_allowance(snapshots: list[dict[str, Any]]) -> Decimal | None:
    """The data all subscriptions include together; None when any of them is unlimited."""
    total = Decimal(0)
    for snapshot in snapshots:
        included = included_allowance(snapshot, "data_gb")
        if included is None:
            return None
        total += included
    return total


def _chart(invoice: Invoice, earlier: list[Invoice], language: str) -> dict[str, Any]:
    months = [*reversed(earlier), invoice]
    rows = []
    bars = []
    for document in months:
        snapshots = list(document.subscriptions or [])
        totals = _month_totals(snapshots)
        allowance = _data_allowance(snapshots)
        current = document.id == invoice.id
        short = dateformat.format(document.period_start, "b")
        bars.append(
            ChartBar(
                label=short if language == "sv" else short.capitalize(),
                value=totals["data_gb"],
                value_label=format_value(totals["data_gb"], language),
                current=current,
                allowance=allowance,
            )
        )
        rows.append(
            {
                "month": month_label(document.period_start),
                "current": current,
                "data": f"{format_value(totals['data_gb'], language)}\u00a0GB",
                "included": f"{format_value(allowance, language)}\u00a0GB"
                if allowance is not None
                else _("unlimited"),
                "voice": _("%(count)s min")
                % {"count": format_value(totals["voice_minutes"], language)},
                "sms": format_value(totals["sms"], language),
            }
        )
    allowances = {bar.allowance for bar in bars}
    if allowances == {None}:
        allowance_label = ""
    elif len(allowances) == 1:
        allowance_label = _("Included each month: %(amount)s GB") % {
            "amount": format_value(bars[-1].allowance, language)
        }
    else:
        allowance_label = _("Included that month")
    for row, bar in zip(rows, bars, strict=True):
        row["data_of_included"] = (
            _("%(used)s of %(included)s") % {"used": row["data"], "included": row["included"]}
            if bar.allowance is not None
            else row["data"]
        )
    described = "; ".join(f"{row['month']}: {row['data_of_included']}" for row in rows)
    label = _("Data used per month. %(months)s.") % {"months": described}
    return {
        "title": _("Data per month, in GB"),
        "svg": mark_safe(
            monthly_usage_chart_svg(bars=bars, label=label, allowance_label=allowance_label)
        ),
        "rows": rows,
        "months": len(rows),
    }


def _value(
    invoice: Invoice, snapshots: list[dict[str, Any]], credited: Decimal, language: str
) -> dict[str, Any]:
    cost = max(invoice.total - credited, ZERO)
    days = (invoice.period_end - invoice.period_start).days + 1
    totals = _month_totals(snapshots)
    data_gb = totals["data_gb"]
    allowance = _data_allowance(snapshots)
    items = [
        {"label": _("Cost this month"), "value": money(cost, language), "note": ""},
        {
            "label": _("Per day"),
            "value": money(quantize_ore(cost / days), language),
            "note": ngettext("%(days)s day in the period", "%(days)s days in the period", days)
            % {"days": days},
        },
    ]
    data_note = _("unlimited data included")
    if allowance:
        data_note = _("%(percent)s of the %(included)s GB included") % {
            "percent": percent(data_gb * 100 / allowance, language),
            "included": format_value(allowance, language),
        }
    items.append(
        {
            "label": _("Data used"),
            "value": f"{format_value(data_gb, language)}\u00a0GB",
            "note": data_note,
        }
    )
    if data_gb >= 1 and cost > 0:
        items.append(
            {
                "label": _("Per GB used"),
                "value": money(quantize_ore(cost / data_gb), language),
                "note": "",
            }
        )
    mobile = [s for s in snapshots if s.get("plan_kind", "mobile") == "mobile"]
    if mobile:
        items.append(
            {
                "label": _("Calls"),
                "value": _("%(count)s min")
                % {"count": format_value(totals["voice_minutes"], language)},
                "note": "",
            }
        )
        items.append(
            {"label": _("SMS"), "value": format_value(totals["sms"], language), "note": ""}
        )
    count = len(snapshots)
    sentence = ngettext(
        "For %(cost)s you had %(count)s subscription and used %(data)s GB of data.",
        "For %(cost)s you had %(count)s subscriptions and used %(data)s GB of data.",
        count,
    ) % {"cost": money(cost, language), "count": count, "data": format_value(data_gb, language)}
    return {"items": items, "sentence": sentence}


# --- binding period -------------------------------------------------------------------------


def _binding(
    invoice: Invoice, snapshots: list[dict[str, Any]], language: str, today: date
) -> list[dict[str, Any]]:
    result = []
    for snapshot in snapshots:
        heading, subheading = subscription_heading(snapshot)
        price = money(Decimal(snapshot.get("agreed_price") or "0"), language)
        notice_months = int(snapshot.get("notice_months") or 0)
        notice = (
            _("you can change or cancel it with one month's notice")
            if notice_months
            else _("you can change or cancel it at any time")
        )
        notice_period = (
            ngettext("%(months)s month", "%(months)s months", notice_months)
            % {"months": notice_months}
            if notice_months
            else _("none")
        )
        item: dict[str, Any] = {
            "id": snapshot["id"],
            "heading": heading,
            "subheading": subheading,
            "notice_period": notice_period,
            "binding_end": "",
            "binding_end_date": None,
            "days_left": None,
            "days_left_text": "",
        }
        end_date = snapshot.get("end_date")
        binding_end = snapshot.get("binding_end")
        if end_date and date.fromisoformat(end_date) <= invoice.period_end:
            item.update(
                state="subscription_ended",
                headline=_("This subscription ended on %(date)s.")
                % {"date": long_date(date.fromisoformat(end_date))},
                after="",
            )
        elif binding_end is None:
            item.update(
                state="none",
                headline=_("No binding period."),
                after=_("Your plan runs month to month at %(price)s a month; %(notice)s.")
                % {"price": price, "notice": notice},
            )
        else:
            ends = date.fromisoformat(binding_end)
            days_left = (ends - today).days
            item.update(binding_end=long_date(ends), binding_end_date=ends)
            if days_left >= 0:
                item.update(
                    state="active",
                    days_left=days_left,
                    days_left_text=ngettext("%(days)s day left", "%(days)s days left", days_left)
                    % {"days": days_left},
                    headline=_("Your binding period ends on %(date)s.") % {"date": long_date(ends)},
                    after=_(
                        "After that your plan continues month to month at %(price)s a month; "
                        "%(notice)s."
                    )
                    % {"price": price, "notice": notice},
                )
            else:
                item.update(
                    state="ended",
                    headline=_("Your binding period ended on %(date)s.")
                    % {"date": long_date(ends)},
                    after=_("Your plan continues month to month at %(price)s a month; %(notice)s.")
                    % {"price": price, "notice": notice},
                )
        result.append(item)
    return result


# --- why is this invoice different from last month -----------------------------------------


def _is_month_before(earlier: date, later: date) -> bool:
    return (later.replace(day=1) - timedelta(days=1)).replace(day=1) == earlier.replace(day=1)


def _comparison(
    invoice: Invoice,
    lines: list[InvoiceLine],
    previous: Invoice | None,
    previous_lines: list[InvoiceLine],
    language: str,
) -> dict[str, Any]:
    if previous is None:
        return {
            "first": True,
            "headline": _("This is your first invoice, so there is nothing to compare with yet."),
            "reasons": [],
        }
    reasons = invoice_difference(
        current_period=(invoice.period_start, invoice.period_end),
        current_subscriptions=list(invoice.subscriptions or []),
        current_lines=lines,
        previous_period=(previous.period_start, previous.period_end),
        previous_subscriptions=list(previous.subscriptions or []),
        previous_lines=previous_lines,
        language=language,
    )
    difference = invoice.total - previous.total
    last_month = _is_month_before(previous.period_start, invoice.period_start)
    amount = money(abs(difference), language)
    if difference > 0:
        headline = (
            _("%(amount)s more than last month")
            if last_month
            else _("%(amount)s more than your previous invoice")
        ) % {"amount": amount}
        direction = "up"
    elif difference < 0:
        headline = (
            _("%(amount)s less than last month")
            if last_month
            else _("%(amount)s less than your previous invoice")
        ) % {"amount": amount}
        direction = "down"
    else:
        headline = (
            _("The same amount as last month")
            if last_month
            else _("The same amount as your previous invoice")
        )
        direction = "same"
    subscriptions = {s["id"] for s in [*invoice.subscriptions, *previous.subscriptions]}
    return {
        "first": False,
        # With one subscription, naming it on every reason is noise.
        "several": len(subscriptions) > 1,
        "direction": direction,
        "headline": headline,
        "difference_value": difference,
        "difference": signed_money(difference, language),
        "previous": _("Your invoice %(number)s for %(period)s was %(total)s.")
        % {
            "number": previous.display_number,
            "period": month_label(previous.period_start),
            "total": money(previous.total, language),
        },
        "reasons": [
            {
                **asdict(reason),
                "amount_value": reason.amount,
                "amount": signed_money(reason.amount, language),
                "up": reason.amount > 0,
            }
            for reason in reasons
        ],
    }


# --- the cached page -------------------------------------------------------------------------


@functools.cache
def _page_stamp_sql(vendor: str) -> str:
    """The SQL of ``_earlier_invoices(...).values_list("id", "revision", "period_start")``,
    and, as a row of id 0, the customer's credit balance (``customer_credit_balance``): built
    once.

    Identifiers come from the models' metadata, quoted by the backend; values are parameters.
    """
    quote = connection.ops.quote_name

    def columns(model: type[Invoice] | type[Payment]) -> dict[str, str]:
        meta = model._meta
        return {f.name: quote(f.column) for f in meta.concrete_fields if f.column}

    invoice, payment = columns(Invoice), columns(Payment)
    invoices, payments = quote(Invoice._meta.db_table), quote(Payment._meta.db_table)
    earlier = (
        f"SELECT {invoice['id']}, {invoice['revision']}, {invoice['period_start']} "  # noqa: S608
        f"FROM {invoices} WHERE {invoice['customer']} = %s AND {invoice['kind']} = %s "
        f"AND {invoice['period_start']} < %s ORDER BY {invoice['period_start']} DESC LIMIT %s"
    )
    credit = (
        f"SELECT 0, SUM(p.{payment['surplus']} - p.{payment['surplus_used']}), NULL "  # noqa: S608
        f"FROM {payments} p INNER JOIN {invoices} i ON i.{invoice['id']} = p.{payment['invoice']} "
        f"WHERE i.{invoice['customer']} = %s AND p.{payment['status']} = %s "
        f"AND p.{payment['surplus']} > p.{payment['surplus_used']}"
    )
    return f"SELECT * FROM ({earlier}) AS earlier UNION ALL {credit}"  # noqa: S608


def _page_stamp(invoice: Invoice) -> tuple[list[tuple[int, int]], str]:
    """(id, revision) of the earlier invoices the page lists, newest first, and the
    customer's credit balance as text.

    This runs on every page view, cache hit or not, so it is one raw query: the ORM spends
    about ten times longer compiling this query than SQLite or PostgreSQL spend answering it
    (0.6 ms against 0.06 ms, measured on SQLite). Same filter, order and limit as
    ``_earlier_invoices``, and the same sum as ``customer_credit_balance``;
    tests/invoices/test_page.py pins that they agree.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _page_stamp_sql(connection.vendor),
            [
                invoice.customer_id,
                DocumentKind.INVOICE.value,
                invoice.period_start,
                HISTORY_MONTHS - 1,
                invoice.customer_id,
                PaymentStatus.BOOKED.value,
            ],
        )
        rows = cursor.fetchall()
    credit = next((str(value or 0) for pk, value, _start in rows if pk == 0), "0")
    earlier = sorted((row for row in rows if row[0] != 0), key=lambda row: row[2], reverse=True)
    return [(int(pk), int(revision)) for pk, revision, _start in earlier], credit


def _earlier_revisions(invoice: Invoice) -> list[tuple[int, int]]:
    return _page_stamp(invoice)[0]


def invoice_page_cache_key(
    invoice: Invoice,
    language: str,
    today: date,
    due_date: date | None = None,
    pay_now: Decimal | None = None,
) -> str:
    """Everything the page depends on: this invoice's revision, the language, the day (days
    left, due in), the revisions of the earlier invoices it lists, whose status can change
    (``invoice_set_status`` bumps the revision), and the customer's credit balance, which
    payments and spendings on other invoices change. One query."""
    stamp = ""
    if invoice.kind == DocumentKind.INVOICE:
        earlier, credit = _page_stamp(invoice)
        stamp = ".".join(f"{pk}r{revision}" for pk, revision in earlier) + f":c{credit}"
    return (
        f"invoice-page:{PAGE_CACHE_VERSION}:{invoice.id}:{invoice.revision}:{language}:"
        f"{today:%Y%m%d}:{due_date or invoice.due_date:%Y%m%d}:{pay_now or ''}:{stamp}:"
        f"{_card_stamp()}"
    )


def _card_stamp() -> str:
    """The card form's settings (whether it is offered, its keys) as they are now, so a page
    cached before they changed is not served after."""
    if not card_payments_enabled():
        return "nocard"
    settings_now = f"{settings.STRIPE_PUBLISHABLE_KEY}|{settings.STRIPE_JS_URL}"
    return hashlib.sha256(settings_now.encode()).hexdigest()[:12]


def invoice_page_html(
    invoice: Invoice,
    language: str,
    *,
    today: date | None = None,
    offers_html: str = "",
    chat_html: str = "",
    ways_out_html: str = "",
    due_date: date | None = None,
    pay_now: Decimal | None = None,
) -> str:
    """The whole invoice page as HTML, the document rendered once per cache key (see the
    module doc) and ``ways_out_html``, ``offers_html`` and ``chat_html`` (rendered per request
    by the caller) in their slots.

    The cached document holds no token and nothing per request (links in it are relative),
    so every link to the invoice shares it. Anything with a CSRF token or per-customer state
    that changes without a new revision goes in one of the slots. It is cached as the parts
    around the slots (a credit note has none: its whole document is the first part), so a hit
    joins a handful of strings.
    """
    today = today or today_in_stockholm()
    key = invoice_page_cache_key(invoice, language, today, due_date, pay_now)
    parts = cache.get(key)
    if parts is None:
        with translation.override(language):
            html: str = render_to_string(
                "invoices/page.html",
                {
                    **invoice_page_context(
                        invoice, language, today=today, due_date=due_date, pay_now=pay_now
                    ),
                    "ways_out_slot": mark_safe(WAYS_OUT_SLOT),
                    "offers_slot": mark_safe(OFFERS_SLOT),
                    "chat_slot": mark_safe(CHAT_SLOT),
                },
            )
        parts = []
        for slot in (WAYS_OUT_SLOT, OFFERS_SLOT, CHAT_SLOT):
            part, _slot, html = html.partition(slot)
            parts.append(part)
        parts.append(html)
        cache.set(key, parts, PAGE_CACHE_SECONDS)
    return "".join(
        part + filling
        for part, filling in zip(parts, (ways_out_html, offers_html, chat_html, ""), strict=True)
    )


def invoice_summary_html(
    invoice: Invoice,
    language: str,
    *,
    today: date | None = None,
    due_date: date | None = None,
    pay_now: Decimal | None = None,
) -> str:
    """The page's summary section alone (status, what is paid and open, how to pay), as the
    page shows it: what an open page reads again when a payment is booked. One query.
    ``due_date``/``pay_now``: as for ``invoice_page_html`` (a moved due date, a plan's part)."""
    today = today or today_in_stockholm()
    money_in = invoice_money(invoice.id)
    with translation.override(language):
        return render_to_string(
            "invoices/page/summary.html",
            {
                "summary": _summary(
                    invoice,
                    money_in.credited,
                    money_in.paid,
                    money_in.charged,
                    language,
                    today,
                    due_date or invoice.due_date,
                    pay_now,
                    from_credit=money_in.from_credit,
                ),
                "credit_balance": _credit_balance(money_in, language),
                "seller": invoice.seller,
            },
        )
