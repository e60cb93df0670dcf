"""The customer's ways out on the invoice page: the "Need more time?" part (``id="more-time"``)
and the words of the pages it leads to (``dunning.views``).

The part is rendered for each request into the cached document's slot
(``invoices.page.WAYS_OUT_SLOT``), like the offers part: what it says changes with the policy
and the day, not only with the invoice's revision. It shows when the invoice has money open
and is not with debt collection, and only what applies: a postponement or a plan that stands,
the lines the customer disputes, and the ways still open to them (``dunning.terms``), each a
link to its own page, where the terms are read before anything is confirmed.

Reads, besides the invoice's debt (one query, which the caller shares with the page's due
date): the active policy, and only where they exist the postponement, the plan with its parts
and the open disputes (``dunning.selectors.ways_out_read``).
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import DomainError, refusal_words
from core.money import ZERO
from dunning.models import InstalmentPlan, PlanStatus
from dunning.selectors import WaysOut, plan_parts
from dunning.terms import Part, postponement_window
from invoices.page import long_date, money

SECTION_ID = "more-time"

# The customer's words for each refusal, by the DomainError's stable code; parameters come
# from ``error_text``'s caller.
ERROR_TEXTS: dict[str, Promise] = {
    "handed_to_collection": gettext_lazy(
        "The invoice has been handed to debt collection, so it can no longer be changed "
        "here. Contact the collection agency."
    ),
    "nothing_to_pay": gettext_lazy("There is nothing left to pay on this invoice."),
    "not_an_invoice": gettext_lazy("There is nothing left to pay on this invoice."),
    "ways_out_not_offered": gettext_lazy(
        "This is not offered on this invoice. Write to us in the chat and we will help you."
    ),
    "postponement_not_offered": gettext_lazy(
        "This is not offered on this invoice. Write to us in the chat and we will help you."
    ),
    "instalments_not_offered": gettext_lazy(
        "This is not offered on this invoice. Write to us in the chat and we will help you."
    ),
    "already_postponed": gettext_lazy(
        "The invoice is already postponed. An invoice can be postponed once: write to us in "
        "the chat if you need more time."
    ),
    "instalment_plan_active": gettext_lazy("You already pay this invoice in parts."),
    "postponement_too_late": gettext_lazy(
        "The last day a postponement could give has passed. Write to us in the chat and we "
        "will find a way together."
    ),
    "postponement_date_invalid": gettext_lazy("Choose a day from %(earliest)s to %(latest)s."),
    "instalment_plan_before": gettext_lazy(
        "This invoice had an instalment plan before. Write to us in the chat and we will find "
        "a way together."
    ),
    "instalment_amount_too_small": gettext_lazy(
        "Payment in parts is offered from %(amount)s. Write to us in the chat if you need help."
    ),
    "instalment_parts_invalid": gettext_lazy("Choose one of the numbers of parts shown."),
    "instalment_total_changed": gettext_lazy(
        "What is left to pay has changed since you opened the page. Check the new plan and "
        "confirm again."
    ),
    "idempotency_key_invalid": gettext_lazy(
        "The page was out of date. Check what is shown and confirm again."
    ),
    "dispute_reason_required": gettext_lazy("Tell us in a few words what is wrong."),
    "dispute_reason_too_long": gettext_lazy(
        "Write at most 500 characters here. You can tell us more in the chat."
    ),
    "line_already_credited": gettext_lazy("This line is credited already."),
    "chat_rate_limited": gettext_lazy(
        "You are sending messages very quickly. Wait a minute and try again."
    ),
}


def error_text(error: DomainError, **params: str) -> str:
    """The customer's words for ``error`` in the active language."""
    fallback = _("We could not do that. Try again, or write to us in the chat.")
    return refusal_words(ERROR_TEXTS, error, fallback=fallback, **params)


def refusal_text(error: DomainError, ways: WaysOut, language: str) -> str:
    """``error_text`` with the parameters a refusal on ``ways`` needs."""
    params: dict[str, str] = {}
    if error.code == "instalment_amount_too_small" and ways.policy is not None:
        params["amount"] = money(ways.policy.instalment_min_amount, language)
    if error.code == "postponement_date_invalid" and ways.policy is not None:
        window = postponement_window(ways.debt, ways.policy, ways.today)
        params.update(earliest=long_date(window.earliest), latest=long_date(window.latest))
    return error_text(error, **params)


# --- what the parts look like ----------------------------------------------------------------


@dataclass(frozen=True)
class PartRow:
    """One part as the page lists it."""

    number: int
    due_date: str
    amount: str
    state: str  # "paid", "next", "late" or "later"
    state_text: str


def part_rows(parts: list[Part], *, paid: Decimal, today: date, language: str) -> list[PartRow]:
    """The parts in order, each paid when the payments so far (``paid``, kronor, counted in
    order) cover it and every part before it; the first one that is not is the next (late
    when its day has passed)."""
    rows = []
    covered = ZERO
    next_found = False
    for part in parts:
        covered += part.amount
        if covered <= paid:
            state, text = "paid", _("Paid")
        elif not next_found:
            next_found = True
            late = part.due_date < today
            state, text = ("late", _("Not paid yet")) if late else ("next", _("Next"))
        else:
            state, text = "later", ""
        rows.append(
            PartRow(
                number=part.number,
                due_date=long_date(part.due_date),
                amount=money(part.amount, language),
                state=state,
                state_text=text,
            )
        )
    return rows


def plan_paid(plan: InstalmentPlan, ways: WaysOut) -> Decimal:
    """What of the plan is paid: its amount less what is still asked (all of it once the plan
    is completed)."""
    if plan.status == PlanStatus.COMPLETED:
        return plan.amount
    return max(plan.amount - ways.debt.asked, ZERO)


@dataclass(frozen=True)
class NextPayment:
    """What a running plan asks next: what is left of its next part (kronor) and its day."""

    due_date: date
    amount: Decimal


def plan_next_payment(ways: WaysOut) -> NextPayment | None:
    """The running plan's next part, less what payments already paid of it; None without a
    running plan (or once every part is paid)."""
    plan = ways.plan
    if plan is None or not ways.plan_active:
        return None
    paid = plan_paid(plan, ways)
    covered = ZERO
    for part in plan_parts(plan):
        covered += part.amount
        if covered > paid:
            return NextPayment(due_date=part.due_date, amount=covered - paid)
    return None


def fee_text(fee: Decimal, language: str) -> str:
    if not fee:
        return _("The plan is free: no fee, no interest while you pay the parts on time.")
    return _(
        "A fee of %(fee)s for the plan is included in the parts (the law allows at most %(cap)s)."
    ) % {"fee": money(fee, language), "cap": money(settings.DUNNING_INSTALMENT_FEE_CAP, language)}


# --- the part of the invoice page ------------------------------------------------------------


def ways_out_section_context(ways: WaysOut, language: str) -> dict[str, Any] | None:
    """What "Need more time?" says, or None when it has nothing to say."""
    debt = ways.debt
    if not debt.is_invoice or debt.open <= 0 or debt.handed_over:
        return None
    postponement = ways.postponement
    plan = ways.plan
    window = ways.window
    choices = ways.parts_choices
    if not (postponement or plan or ways.disputes or window or choices):
        return None
    context: dict[str, Any] = {
        "section_id": SECTION_ID,
        "language": language,
        "open": money(debt.open, language),
        "postponement": None,
        "plan": None,
        "disputes": [
            {
                "title": dispute.line.text(language).get("title", ""),
                "amount": money(dispute.amount, language),
                "since": long_date(dispute.opened_at.date()),
            }
            for dispute in ways.disputes
        ],
        "postpone": None,
        "split": None,
    }
    if postponement is not None:
        context["postponement"] = {
            "date": long_date(postponement.new_due_date),
            "passed": postponement.new_due_date < ways.today,
            "url": f"postpone/done/?lang={language}",
        }
    if plan is not None:
        context["plan"] = {
            "status": plan.status,
            "parts": plan.parts,
            "total": money(plan.amount, language),
            "rows": part_rows(
                plan_parts(plan), paid=plan_paid(plan, ways), today=ways.today, language=language
            ),
            "ended": long_date(plan.ended_at.date()) if plan.ended_at else "",
            "url": f"instalments/{plan.id}/?lang={language}",
        }
    if window is not None:
        context["postpone"] = {
            "latest": long_date(window.latest),
            "url": f"postpone/?lang={language}",
        }
    if choices and ways.policy is not None:
        context["split"] = {
            "fewest": choices[0],
            "most": choices[-1],
            "fee": fee_text(ways.policy.instalment_fee, language),
            "url": f"instalments/?lang={language}",
        }
    return context


def ways_out_section_html(request: HttpRequest, ways: WaysOut, language: str) -> str:
    """The "Need more time?" part for this request, in the active language; "" when it has
    nothing to say."""
    context = ways_out_section_context(ways, language)
    if context is None:
        return ""
    return render_to_string("dunning/section.html", context, request=request)
