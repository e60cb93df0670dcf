"""Corrections of issued invoices that a later event calls for.

An undone plan change is undone as if it had never been made (ångerrätt). When a month was
invoiced with the change in it, that month is rated again with and without the change, from
the usage the invoice recorded, so that usage arriving later or a staff edit since plays no
part: the difference is only the change's. The customer who paid too much gets a credit note on
that invoice at once; one who paid too little (an immediate move to a cheaper plan) pays
the difference on the next invoice, as a one-off charge that names the invoice.
"""

import copy
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from billing.models import OneOffCharge, PlanChange, PlanChangeStatus, Subscription
from billing.rating import LineDraft, Text
from billing.services import plan_change_get_by_undo_token, plan_change_undo
from core.money import ZERO
from invoices.models import DocumentKind, Invoice, InvoiceLine
from invoices.services.bill_run import snapshot_usage, subscription_rate_month
from invoices.services.credit_notes import credit_note_issue_correction, invoice_lines_creditable
from invoices.texts import format_value

# The lines whose amounts depend on the plan; roaming and one-off charges do not.
PLAN_LINE_KINDS = frozenset({"fee", "discount", "data_overage", "voice_overage", "sms_overage"})


@dataclass(frozen=True)
class Correction:
    invoice: Invoice  # the invoice whose month was re-rated
    amount: Decimal  # incl. VAT: negative is credited now, positive is on the next invoice
    credit_note: Invoice | None


@dataclass(frozen=True)
class PlanChangeUndone:
    change: PlanChange
    corrections: list[Correction]


@transaction.atomic
def plan_change_undo_and_correct(
    *, change_id: int | None = None, undo_token: str | None = None, via: str
) -> PlanChangeUndone:
    """``plan_change_undo``, and the correction of every month already invoiced with the
    change in it. Undoing twice corrects once."""
    target = None
    if undo_token is not None:
        target = plan_change_get_by_undo_token(undo_token)
    elif change_id is not None:
        target = PlanChange.objects.filter(id=change_id).first()
    if target is None:  # the undo's own refusal says so
        return PlanChangeUndone(
            change=plan_change_undo(change_id=change_id, undo_token=undo_token, via=via),
            corrections=[],
        )
    # Lock the invoices a correction may credit before the change and its subscription: the
    # order a customer's chat post and an agent's action take (invoice first), so an undo and
    # a chat action on the same customer never wait on each other in a circle.
    customer_id = Subscription.objects.values_list("customer_id", flat=True).get(
        id=target.subscription_id
    )
    list(
        Invoice.objects.select_for_update()
        .filter(
            kind=DocumentKind.INVOICE,
            customer_id=customer_id,
            period_end__gte=target.effective_date,
        )
        .order_by("id")
        .values_list("id", flat=True)
    )
    status_before = (
        PlanChange.objects.select_for_update().values_list("status", flat=True).get(id=target.id)
    )
    change = plan_change_undo(change_id=target.id, via=via)
    if status_before == PlanChangeStatus.UNDONE:
        return PlanChangeUndone(change=change, corrections=[])
    return PlanChangeUndone(change=change, corrections=_correct(change, status_before))


def _correct(change: PlanChange, status_before: str) -> list[Correction]:
    """Precondition: ``change`` was undone in this transaction, its subscription is locked."""
    subscription = Subscription.objects.select_related("plan", "customer").get(
        id=change.subscription_id
    )
    # The subscription as it stood with the change: its plan and price if it was applied.
    as_changed = copy.deepcopy(subscription)
    counted = copy.copy(change)
    counted.status = status_before
    if status_before == PlanChangeStatus.APPLIED:
        as_changed.plan = change.to_plan
        as_changed.agreed_monthly_price = change.to_price
    invoiced = Invoice.objects.filter(
        kind=DocumentKind.INVOICE,
        customer_id=subscription.customer_id,
        period_end__gte=change.effective_date,
        id__in=InvoiceLine.objects.filter(subscription_id=subscription.id).values("invoice_id"),
    ).order_by("period_start")
    corrections = []
    for invoice in invoiced:
        snapshots: list[dict[str, Any]] = invoice.subscriptions
        snapshot = next((s for s in snapshots if s.get("id") == subscription.id), {})
        usage = snapshot_usage(snapshot)  # as invoiced: usage that came later plays no part
        with_change = subscription_rate_month(
            subscription=as_changed,
            period=invoice.period_start,
            extra_change=counted,
            usage=usage,
        )
        without = subscription_rate_month(
            subscription=subscription, period=invoice.period_start, usage=usage
        )
        difference = _plan_part(without) - _plan_part(with_change)
        correction = (
            _settle(invoice, change, subscription, difference, without) if difference else None
        )
        if correction is not None:
            corrections.append(correction)
    return corrections


def _plan_part(lines: list[LineDraft]) -> Decimal:
    return sum((line.amount for line in lines if line.kind in PLAN_LINE_KINDS), ZERO)


def _settle(
    invoice: Invoice,
    change: PlanChange,
    subscription: Subscription,
    difference: Decimal,
    without: list[LineDraft],
) -> Correction | None:
    service = [line for line in without if line.kind == "fee"]
    service_from = max(change.effective_date, invoice.period_start)
    service_to = service[-1].service_to if service else invoice.period_end
    params = {
        "to_plan": change.to_plan.name,
        "from_plan": change.from_plan.name,
        "from_date": service_from,
        "to_date": service_to,
        "number": invoice.display_number,
    }
    title = Text("Plan change undone")
    detail = Text(
        "You undid the change to {to_plan}, so {from_date}–{to_date} is charged for "
        "{from_plan} as before (invoice {number}).",
        params,
    )
    if difference < 0:
        return _credit(invoice, change, subscription, -difference, title, detail)
    # A one-off charge has one description: written in the customer's language.
    language = invoice.language
    with translation.override(language):
        words = {key: format_value(value, language) for key, value in params.items()}
        description = f"{gettext(title.msgid)}: " + gettext(
            "{from_plan} for {from_date}–{to_date}, as before (invoice {number})"
        ).format(**words)
    OneOffCharge.objects.create(
        subscription=subscription,
        description=description[:120],
        amount=difference,
        vat_rate=change.from_plan.vat_rate,
        charge_date=timezone.localdate(),
    )
    return Correction(invoice=invoice, amount=difference, credit_note=None)


def _credit(
    invoice: Invoice,
    change: PlanChange,
    subscription: Subscription,
    amount: Decimal,
    title: Text,
    detail: Text,
) -> Correction | None:
    """Credit ``amount`` (kronor, positive) of the subscription's plan lines on ``invoice``:
    the lines of the change's own days first, each no further than earlier credit notes left
    of it. None when a credit note already took everything (nothing is left to refund)."""
    lines = [
        line
        for line in invoice_lines_creditable(invoice)
        if line.subscription_id == subscription.id
        and line.kind in PLAN_LINE_KINDS
        and line.remaining > 0
    ]
    lines.sort(
        key=lambda line: (
            not (line.service_from and line.service_from >= change.effective_date),
            line.position,
        )
    )
    drafts: list[LineDraft] = []
    credited_line_ids: list[int] = []
    left = amount
    for line in lines:
        if left <= 0:
            break
        take = min(left, line.remaining)
        drafts.append(
            LineDraft(
                kind="correction",
                title=title,
                detail=detail,
                amount=-take,
                vat_rate=line.vat_rate,
                subscription_id=subscription.id,
                service_from=line.service_from,
                service_to=line.service_to,
            )
        )
        credited_line_ids.append(line.id)
        left -= take
    if not drafts:
        return None
    note = credit_note_issue_correction(
        invoice_id=invoice.id,
        drafts=drafts,
        credited_line_ids=credited_line_ids,
        reason=f"Plan change {change.id} undone within the cooling-off period",
    )
    return Correction(invoice=invoice, amount=-(amount - left), credit_note=note)
