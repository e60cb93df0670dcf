"""'Why is this invoice different from last month?', from two issued invoices' lines and usage.

Every line of both invoices is counted in exactly one reason, so the reasons always add up to
the difference between the two totals (rounding included, as its own reason). Amounts are
kronor incl. VAT, this invoice minus the earlier one.

Call with the page's language active (``translation.override``): labels are translated here.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from django.utils.translation import gettext as _

from billing.rating import MB_PER_GB
from core.money import ZERO, ceil_units, format_amount
from invoices.texts import format_value

# Line kinds whose amount depends on usage, and the unit their usage is counted in.
OVERAGE_KINDS = ("data_overage", "voice_overage", "sms_overage")


class LineLike(Protocol):
    subscription_id: int | None
    kind: str
    amount: Decimal
    quantity: Decimal

    def text(self, language: str) -> dict[str, str]: ...


@dataclass(frozen=True)
class Reason:
    code: str  # stable: new_subscription, subscription_ended, proration, price_change, ...
    label: str
    detail: str
    amount: Decimal  # this invoice minus the earlier one, kronor incl. VAT
    subject: str = ""  # the subscription it concerns, "Anna (Mobil 10 GB)"; "" for the invoice


def _period_days(start: date, end: date) -> int:
    return (end - start).days + 1


def subscription_name(snapshot: dict[str, Any] | None) -> str:
    """How the customer knows a subscription: its label or number, and the plan."""
    if snapshot is None:
        return _("a subscription that is no longer listed")
    who = snapshot.get("label") or snapshot.get("identifier") or ""
    plan = snapshot.get("plan_name") or ""
    return f"{who} ({plan})" if who and plan else who or plan


def usage_quantities(snapshot: dict[str, Any] | None) -> dict[str, Decimal]:
    """A snapshot's usage in the units the customer reads: GB, started minutes, SMS."""
    used = (snapshot or {}).get("used") or {}
    return {
        "data_gb": (Decimal(used.get("data_mb") or "0") / MB_PER_GB).quantize(Decimal("0.1")),
        "voice_minutes": Decimal(
            ceil_units(Decimal(used.get("voice_seconds") or "0"), Decimal(60))
        ),
        "sms": Decimal(int(Decimal(used.get("sms") or "0"))),
    }


def included_allowance(snapshot: dict[str, Any] | None, key: str) -> Decimal | None:
    """What a subscription snapshot included of ``key`` (data_gb, voice_minutes, sms);
    None for unlimited."""
    value = ((snapshot or {}).get("included") or {}).get(key)
    return None if value is None else Decimal(str(value))


def _with_unit(value: Decimal | None, kind: str, language: str) -> str:
    if value is None:
        return _("unlimited")
    number = format_value(value, language)
    if kind == "data_overage":
        return f"{number} GB"
    if kind == "voice_overage":
        return _("%(count)s min") % {"count": number}
    return _("%(count)s SMS") % {"count": number}


_USAGE_KEYS = {
    "data_overage": ("data_gb", "data_gb"),
    "voice_overage": ("voice_minutes", "voice_minutes"),
    "sms_overage": ("sms", "sms"),
}


def _overage_reason(
    kind: str,
    amount: Decimal,
    before: Decimal,
    now: Decimal,
    snap_now: dict[str, Any] | None,
    snap_before: dict[str, Any] | None,
    language: str,
) -> Reason:
    used_key, included_key = _USAGE_KEYS[kind]
    used_now = _with_unit(usage_quantities(snap_now)[used_key], kind, language)
    used_before = _with_unit(usage_quantities(snap_before)[used_key], kind, language)
    included = _with_unit(included_allowance(snap_now or snap_before, included_key), kind, language)
    label = {
        "data_overage": _("Data beyond what is included"),
        "voice_overage": _("Calls beyond what is included"),
        "sms_overage": _("SMS beyond what is included"),
    }[kind]
    params = {"now": used_now, "before": used_before, "included": included}
    if before == 0:
        code = "overage_appeared"
        detail = _(
            "New this month: you used %(now)s, %(included)s included (last month %(before)s)."
        )
    elif now == 0:
        code = "overage_gone"
        detail = _(
            "Gone this month: you used %(now)s, within the %(included)s included "
            "(last month %(before)s)."
        )
    else:
        code = "overage_changed"
        detail = _("You used %(now)s this month and %(before)s last month; %(included)s included.")
    return Reason(code=code, label=label, detail=detail % params, amount=amount)


def _titles(lines: Iterable[LineLike], language: str) -> str:
    return "; ".join(line.text(language)["title"] for line in lines)


def invoice_difference(
    *,
    current_period: tuple[date, date],
    current_subscriptions: Sequence[dict[str, Any]],
    current_lines: Sequence[LineLike],
    previous_period: tuple[date, date],
    previous_subscriptions: Sequence[dict[str, Any]],
    previous_lines: Sequence[LineLike],
    language: str,
) -> list[Reason]:
    """The reasons, largest first (rounding last), that add up to the change in total."""
    snaps_now = {s["id"]: s for s in current_subscriptions}
    snaps_before = {s["id"]: s for s in previous_subscriptions}
    now_by: dict[int | None, list[LineLike]] = defaultdict(list)
    before_by: dict[int | None, list[LineLike]] = defaultdict(list)
    for line in current_lines:
        now_by[line.subscription_id].append(line)
    for line in previous_lines:
        before_by[line.subscription_id].append(line)

    reasons: list[Reason] = []
    sub_ids = sorted(sub_id for sub_id in {*now_by, *before_by} if sub_id is not None)
    for sub_id in sub_ids:
        now_lines, before_lines = now_by.get(sub_id, []), before_by.get(sub_id, [])
        snap_now, snap_before = snaps_now.get(sub_id), snaps_before.get(sub_id)
        name = subscription_name(snap_now or snap_before)
        found: list[Reason] = []
        if not before_lines:
            found.append(
                Reason(
                    code="new_subscription",
                    label=_("New subscription"),
                    detail=_("Not on last month's invoice: %(lines)s.")
                    % {"lines": _titles(now_lines, language)},
                    amount=sum((line.amount for line in now_lines), ZERO),
                )
            )
        elif not now_lines:
            found.append(
                Reason(
                    code="subscription_ended",
                    label=_("Subscription ended"),
                    detail=_("On last month's invoice, not on this one: %(lines)s.")
                    % {"lines": _titles(before_lines, language)},
                    amount=-sum((line.amount for line in before_lines), ZERO),
                )
            )
        else:
            found.extend(
                _same_subscription_reasons(
                    now_lines,
                    before_lines,
                    snap_now,
                    snap_before,
                    current_period,
                    previous_period,
                    language,
                )
            )
        reasons.extend(replace(reason, subject=name) for reason in found)

    rest_now, rest_before = now_by.get(None, []), before_by.get(None, [])
    for kind in sorted({line.kind for line in [*rest_now, *rest_before]}):
        amount = sum((x.amount for x in rest_now if x.kind == kind), ZERO) - sum(
            (x.amount for x in rest_before if x.kind == kind), ZERO
        )
        if amount == 0:
            continue
        if kind == "rounding":
            reasons.append(
                Reason(
                    code="rounding",
                    label=_("Rounding to whole kronor"),
                    detail=_("The amount to pay is rounded to whole kronor each month."),
                    amount=amount,
                )
            )
        else:
            reasons.append(Reason(code="other", label=_("Other changes"), detail="", amount=amount))
    return sorted(reasons, key=lambda r: (r.code == "rounding", -abs(r.amount), r.label))


def _same_subscription_reasons(
    now_lines: list[LineLike],
    before_lines: list[LineLike],
    snap_now: dict[str, Any] | None,
    snap_before: dict[str, Any] | None,
    current_period: tuple[date, date],
    previous_period: tuple[date, date],
    language: str,
) -> Iterable[Reason]:
    kinds = sorted({line.kind for line in [*now_lines, *before_lines]})
    for kind in kinds:
        now_k = [x for x in now_lines if x.kind == kind]
        before_k = [x for x in before_lines if x.kind == kind]
        now = sum((x.amount for x in now_k), ZERO)
        before = sum((x.amount for x in before_k), ZERO)
        amount = now - before
        if amount == 0:
            continue
        if kind == "fee":
            yield _fee_reason(amount, now_k, before_k, current_period, previous_period, language)
        elif kind == "discount":
            if not now_k:
                code, label = "discount_ended", _("Discount ended")
                detail = _("Last month: %(lines)s.") % {"lines": _titles(before_k, language)}
            elif not before_k:
                code, label = "discount_started", _("New discount")
                detail = _titles(now_k, language)
            else:
                code, label = "discount_changed", _("Discount changed")
                detail = _titles(now_k, language)
            yield Reason(code=code, label=label, detail=detail, amount=amount)
        elif kind in OVERAGE_KINDS:
            yield _overage_reason(kind, amount, before, now, snap_now, snap_before, language)
        elif kind == "roaming":
            detail = (
                _titles(now_k, language)
                if now_k
                else _("No roaming outside the EU/EEA this month.")
            )
            yield Reason(
                code="roaming",
                label=_("Roaming outside the EU/EEA"),
                detail=detail,
                amount=amount,
            )
        elif kind == "one_off":
            detail = (
                _titles(now_k, language)
                if now_k
                else _("Last month: %(lines)s.") % {"lines": _titles(before_k, language)}
            )
            yield Reason(
                code="one_off",
                label=_("One-off charges"),
                detail=detail,
                amount=amount,
            )
        else:
            yield Reason(
                code="other",
                label=_("Other changes"),
                detail=_titles(now_k or before_k, language),
                amount=amount,
            )


def _fee_reason(
    amount: Decimal,
    now_k: list[LineLike],
    before_k: list[LineLike],
    current_period: tuple[date, date],
    previous_period: tuple[date, date],
    language: str,
) -> Reason:
    days_now = int(sum((x.quantity for x in now_k), Decimal(0)))
    days_before = int(sum((x.quantity for x in before_k), Decimal(0)))
    month_now = _period_days(*current_period)
    month_before = _period_days(*previous_period)
    if days_now != month_now or days_before != month_before:
        return Reason(
            code="proration",
            label=_("Part of a month"),
            detail=_(
                "The monthly fee is charged per day: %(days)s of %(month_days)s days this "
                "month, %(prev_days)s of %(prev_month_days)s days last month."
            )
            % {
                "days": days_now,
                "month_days": month_now,
                "prev_days": days_before,
                "prev_month_days": month_before,
            },
            amount=amount,
        )
    now = sum((x.amount for x in now_k), ZERO)
    before = sum((x.amount for x in before_k), ZERO)
    return Reason(
        code="price_change",
        label=_("New monthly price"),
        detail=_("%(before)s kr a month last month, %(now)s kr now.")
        % {"before": format_amount(before, language), "now": format_amount(now, language)},
        amount=amount,
    )
