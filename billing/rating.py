"""Rating: what one subscription costs for one month, as lines that explain themselves.

Pure functions over plain data, so the bill run can rate thousands of subscriptions from a
handful of queries. Every price includes VAT; the VAT inside each line is extracted with
``core.money.vat_included``. Units and their rounding rules:

- data in MB; overage per started GB (1 GB = 1024 MB) beyond what is included;
- calls in seconds; a month's calls are summed and billed per started minute;
- SMS per message;
- abroad outside the EU/EEA: data per started MB, calls per started minute, SMS each, by zone.
"""

import calendar
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from core.money import ZERO, ceil_units, quantize_ore, round_to_krona, vat_included

MB_PER_GB = Decimal(1024)
SECONDS_PER_MINUTE = Decimal(60)


@dataclass(frozen=True)
class Text:
    """A message id and its parameters; rendered per language at issue (see line_texts)."""

    msgid: str
    params: dict[str, object] = field(default_factory=dict)


@dataclass
class LineDraft:
    kind: str
    title: Text
    detail: Text
    amount: Decimal  # incl. VAT, in kronor, two places
    vat_rate: Decimal
    quantity: Decimal = Decimal(1)
    unit: str = ""
    unit_price: Decimal = ZERO
    subscription_id: int | None = None
    service_from: date | None = None
    service_to: date | None = None

    @property
    def vat_amount(self) -> Decimal:
        return vat_included(self.amount, self.vat_rate)


@dataclass(frozen=True)
class PlanTerms:
    code: str
    name: str
    monthly_fee: Decimal
    data_included_gb: Decimal | None
    voice_included_minutes: int | None
    sms_included: int | None
    data_overage_per_gb: Decimal
    voice_overage_per_minute: Decimal
    sms_overage_each: Decimal
    vat_rate: Decimal


@dataclass(frozen=True)
class ZonePrices:
    code: str
    name: str
    data_per_mb: Decimal
    voice_per_minute: Decimal
    sms_each: Decimal


@dataclass(frozen=True)
class DiscountTerms:
    description: str
    monthly_amount: Decimal
    valid_from: date
    valid_until: date | None


@dataclass(frozen=True)
class OneOff:
    description: str
    amount: Decimal
    vat_rate: Decimal
    charge_date: date


@dataclass
class UsageTotals:
    """A month's usage of one subscription. Home includes EU/EEA roaming."""

    data_mb: Decimal = ZERO
    voice_seconds: Decimal = ZERO
    sms: Decimal = ZERO
    eu_roaming_data_mb: Decimal = ZERO
    # zone code -> {"data": MB, "voice": seconds, "sms": count}
    abroad: dict[str, dict[str, Decimal]] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanPeriod:
    """From ``starts`` on, the subscription has ``plan`` at ``price`` a month."""

    starts: date
    plan: PlanTerms
    price: Decimal


@dataclass(frozen=True)
class SubscriptionTerms:
    """A subscription as the month sees it: ``plan`` and ``agreed_monthly_price`` on its first
    day, ``later_plans`` for plan changes that take effect within the month (in date order)."""

    id: int
    identifier: str
    plan: PlanTerms
    agreed_monthly_price: Decimal
    start_date: date
    end_date: date | None
    discounts: tuple[DiscountTerms, ...] = ()
    one_offs: tuple[OneOff, ...] = ()
    later_plans: tuple[PlanPeriod, ...] = ()

    def periods(self, first: date, last: date) -> list[tuple[date, date, PlanTerms, Decimal]]:
        """Spans of the month (first..last) with the plan and price in effect on each."""
        starts = [PlanPeriod(first, self.plan, self.agreed_monthly_price)]
        starts += [p for p in self.later_plans if first < p.starts <= last]
        spans = []
        for index, period in enumerate(starts):
            end = starts[index + 1].starts - timedelta(days=1) if index + 1 < len(starts) else last
            spans.append((period.starts, end, period.plan, period.price))
        return spans


def month_bounds(period: date) -> tuple[date, date]:
    """First and last day of the month that ``period`` falls in."""
    first = period.replace(day=1)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return first, last


def overlap(a_from: date, a_to: date | None, b_from: date, b_to: date) -> tuple[date, date] | None:
    start = max(a_from, b_from)
    end = min(a_to or b_to, b_to)
    return (start, end) if start <= end else None


def prorate(monthly: Decimal, days: int, days_in_month: int) -> Decimal:
    """A monthly amount for ``days`` of a month, by day, rounded half-up to öre."""
    if days == days_in_month:
        return quantize_ore(monthly)
    return quantize_ore(monthly * days / days_in_month)


def rate_subscription(
    sub: SubscriptionTerms, period: date, usage: UsageTotals, zones: dict[str, ZonePrices]
) -> list[LineDraft]:
    """The lines of one subscription for the month ``period`` falls in (may be empty)."""
    first, last = month_bounds(period)
    active = overlap(sub.start_date, sub.end_date, first, last)
    lines: list[LineDraft] = [
        _one_off_line(sub, charge) for charge in sub.one_offs if first <= charge.charge_date <= last
    ]
    if active is None:
        return lines
    days_in_month = (last - first).days + 1
    fee_lines = []
    for span_from, span_to, plan, price in sub.periods(first, last):
        span = overlap(span_from, span_to, active[0], active[1])
        if span is None:
            continue
        days = (span[1] - span[0]).days + 1
        if days == days_in_month:
            detail = Text("Monthly fee for {plan}, {from_date}–{to_date}.", _period(plan, span))
        else:
            detail = Text(
                "{days} of {month_days} days, {from_date}–{to_date}, of {price} kr a month.",
                {**_period(plan, span), "days": days, "month_days": days_in_month, "price": price},
            )
        fee_lines.append(
            LineDraft(
                kind="fee",
                title=Text("{plan}, monthly fee", {"plan": plan.name}),
                detail=detail,
                amount=prorate(price, days, days_in_month),
                vat_rate=plan.vat_rate,
                quantity=Decimal(days),
                unit="day",
                unit_price=price / days_in_month,
                subscription_id=sub.id,
                service_from=span[0],
                service_to=span[1],
            )
        )
    lines[:0] = fee_lines
    fee = sum((line.amount for line in fee_lines), ZERO)
    sub = dataclasses.replace(sub, plan=_allowance(sub, first, last, active))
    fee_left = fee
    for discount in sub.discounts:
        span = overlap(discount.valid_from, discount.valid_until, active[0], active[1])
        if span is None:
            continue
        days = (span[1] - span[0]).days + 1
        # Discounts together never take more than the fee: a subscription never pays the
        # customer to have it.
        amount = -min(prorate(discount.monthly_amount, days, days_in_month), fee_left)
        fee_left += amount
        until = discount.valid_until
        lines.append(
            LineDraft(
                kind="discount",
                title=Text("Discount: {name}", {"name": discount.description}),
                detail=Text(
                    "{amount} kr a month until {until}." if until else "{amount} kr a month.",
                    {"amount": discount.monthly_amount, "until": until},
                )
                if days == days_in_month
                else Text(
                    "{days} of {month_days} days of {amount} kr a month.",
                    {"days": days, "month_days": days_in_month, "amount": discount.monthly_amount},
                ),
                amount=amount,
                vat_rate=sub.plan.vat_rate,
                quantity=Decimal(days),
                unit="day",
                subscription_id=sub.id,
                service_from=span[0],
                service_to=span[1],
            )
        )
    lines.extend(_overage_lines(sub, usage, active))
    lines.extend(_abroad_lines(sub, usage, zones, active))
    return lines


def month_allowance(sub: SubscriptionTerms, period: date) -> PlanTerms | None:
    """The plan that prices the month's usage (None if the subscription was not active in it).

    Overage is priced by the plan held at the end of the month's service; when the plan
    changed within the month, what is included is each plan's allowance for its days. The
    invoice page shows usage against this, the same figure the overage lines used.
    """
    first, last = month_bounds(period)
    active = overlap(sub.start_date, sub.end_date, first, last)
    return None if active is None else _allowance(sub, first, last, active)


def _allowance(
    sub: SubscriptionTerms, first: date, last: date, active: tuple[date, date]
) -> PlanTerms:
    days_in_month = (last - first).days + 1
    spans = []
    for span_from, span_to, plan, _price in sub.periods(first, last):
        span = overlap(span_from, span_to, active[0], active[1])
        if span is not None:
            spans.append((plan, (Decimal((span[1] - span[0]).days + 1), days_in_month)))
    plan = spans[-1][0] if spans else sub.plan
    return _prorated_allowances(plan, spans) if len(spans) > 1 else plan


def _prorated_allowances(
    plan: PlanTerms, spans: list[tuple[PlanTerms, tuple[Decimal, int]]]
) -> PlanTerms:
    """``plan`` with each allowance the sum of every period's plan's allowance for its days
    (rounded half-up: data to 0.1 GB, minutes and SMS to whole ones); unlimited if any
    period's plan was unlimited."""

    def share(values: list[tuple[Decimal | int | None, Decimal, int]]) -> Decimal | None:
        if any(value is None for value, _d, _m in values):
            return None
        return sum((Decimal(value) * days / month for value, days, month in values), ZERO)  # type: ignore[arg-type]

    data = share([(p.data_included_gb, d, m) for p, (d, m) in spans])
    voice = share([(p.voice_included_minutes, d, m) for p, (d, m) in spans])
    sms = share([(p.sms_included, d, m) for p, (d, m) in spans])
    return dataclasses.replace(
        plan,
        data_included_gb=None if data is None else data.quantize(Decimal("0.1"), ROUND_HALF_UP),
        voice_included_minutes=None if voice is None else int(voice.quantize(1, ROUND_HALF_UP)),
        sms_included=None if sms is None else int(sms.quantize(1, ROUND_HALF_UP)),
    )


def _period(plan: PlanTerms, span: tuple[date, date]) -> dict[str, object]:
    return {"plan": plan.name, "from_date": span[0], "to_date": span[1]}


def _overage_lines(
    sub: SubscriptionTerms, usage: UsageTotals, span: tuple[date, date]
) -> Iterable[LineDraft]:
    plan = sub.plan
    common: dict[str, Any] = {
        "vat_rate": plan.vat_rate,
        "subscription_id": sub.id,
        "service_from": span[0],
        "service_to": span[1],
    }
    if plan.data_included_gb is not None and plan.data_overage_per_gb > 0:
        used_gb = usage.data_mb / MB_PER_GB
        started = ceil_units(used_gb - plan.data_included_gb, Decimal(1))
        if started:
            yield LineDraft(
                kind="data_overage",
                title=Text("Data beyond your {included} GB", {"included": plan.data_included_gb}),
                detail=Text(
                    "{used} GB used, {included} GB included, {started} GB started beyond at "
                    "{price} kr per GB.",
                    {
                        "used": used_gb.quantize(Decimal("0.1")),
                        "included": plan.data_included_gb,
                        "started": started,
                        "price": plan.data_overage_per_gb,
                    },
                ),
                amount=quantize_ore(started * plan.data_overage_per_gb),
                quantity=Decimal(started),
                unit="GB",
                unit_price=plan.data_overage_per_gb,
                **common,
            )
    if plan.voice_included_minutes is not None and plan.voice_overage_per_minute > 0:
        minutes = ceil_units(usage.voice_seconds, SECONDS_PER_MINUTE)
        beyond = minutes - plan.voice_included_minutes
        if beyond > 0:
            yield LineDraft(
                kind="voice_overage",
                title=Text(
                    "Calls beyond your {included} minutes",
                    {"included": plan.voice_included_minutes},
                ),
                detail=Text(
                    "{used} minutes called (the month's seconds rounded up to whole minutes), "
                    "{included} included, {beyond} beyond at {price} kr per minute.",
                    {
                        "used": minutes,
                        "included": plan.voice_included_minutes,
                        "beyond": beyond,
                        "price": plan.voice_overage_per_minute,
                    },
                ),
                amount=quantize_ore(beyond * plan.voice_overage_per_minute),
                quantity=Decimal(beyond),
                unit="min",
                unit_price=plan.voice_overage_per_minute,
                **common,
            )
    if plan.sms_included is not None and plan.sms_overage_each > 0:
        beyond = int(usage.sms) - plan.sms_included
        if beyond > 0:
            yield LineDraft(
                kind="sms_overage",
                title=Text("SMS beyond your {included} included", {"included": plan.sms_included}),
                detail=Text(
                    "{used} SMS sent, {included} included, {beyond} beyond at {price} kr each.",
                    {
                        "used": int(usage.sms),
                        "included": plan.sms_included,
                        "beyond": beyond,
                        "price": plan.sms_overage_each,
                    },
                ),
                amount=quantize_ore(beyond * plan.sms_overage_each),
                quantity=Decimal(beyond),
                unit="sms",
                unit_price=plan.sms_overage_each,
                **common,
            )


def _abroad_lines(
    sub: SubscriptionTerms,
    usage: UsageTotals,
    zones: dict[str, ZonePrices],
    span: tuple[date, date],
) -> Iterable[LineDraft]:
    for zone_code in sorted(usage.abroad):
        zone = zones[zone_code]
        used = usage.abroad[zone_code]
        parts = [
            (
                "data",
                ceil_units(used.get("data", ZERO), Decimal(1)),
                zone.data_per_mb,
                "MB",
                "{qty} MB of data in {zone} (per started MB) at {price} kr per MB.",
            ),
            (
                "voice",
                ceil_units(used.get("voice", ZERO), SECONDS_PER_MINUTE),
                zone.voice_per_minute,
                "min",
                "{qty} minutes of calls in {zone} (per started minute) at {price} kr per minute.",
            ),
            (
                "sms",
                int(used.get("sms", ZERO)),
                zone.sms_each,
                "sms",
                "{qty} SMS from {zone} at {price} kr each.",
            ),
        ]
        for _kind, quantity, price, unit, msgid in parts:
            if quantity <= 0:
                continue
            yield LineDraft(
                kind="roaming",
                title=Text("Roaming in {zone}", {"zone": zone.name}),
                detail=Text(msgid, {"qty": quantity, "zone": zone.name, "price": price}),
                amount=quantize_ore(quantity * price),
                vat_rate=sub.plan.vat_rate,
                quantity=Decimal(quantity),
                unit=unit,
                unit_price=price,
                subscription_id=sub.id,
                service_from=span[0],
                service_to=span[1],
            )


def _one_off_line(sub: SubscriptionTerms, charge: OneOff) -> LineDraft:
    return LineDraft(
        kind="one_off",
        title=Text("{name}", {"name": charge.description}),
        detail=Text("One-off charge on {day}.", {"day": charge.charge_date}),
        amount=quantize_ore(charge.amount),
        vat_rate=charge.vat_rate,
        subscription_id=sub.id,
        service_from=charge.charge_date,
        service_to=charge.charge_date,
    )


@dataclass(frozen=True)
class Totals:
    net_total: Decimal
    vat_total: Decimal
    rounding: Decimal
    total: Decimal
    vat_summary: list[dict[str, str]]


def invoice_totals(lines: list[LineDraft]) -> Totals:
    """Totals of an invoice's lines. VAT per rate is the sum of the lines' VAT at that rate;
    the payable amount is rounded to whole kronor and the difference is the rounding line."""
    gross = sum((line.amount for line in lines), ZERO)
    by_rate: dict[Decimal, list[Decimal]] = {}
    for line in lines:
        base_vat = by_rate.setdefault(line.vat_rate, [ZERO, ZERO])
        vat = line.vat_amount
        base_vat[0] += line.amount - vat
        base_vat[1] += vat
    vat_total = sum((v for _, v in by_rate.values()), ZERO)
    total = round_to_krona(gross)
    summary = [
        {"rate": str(rate), "base": str(base), "vat": str(vat)}
        for rate, (base, vat) in sorted(by_rate.items())
    ]
    return Totals(
        net_total=gross - vat_total,
        vat_total=vat_total,
        rounding=total - gross,
        total=total,
        vat_summary=summary,
    )
