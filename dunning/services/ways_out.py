"""The customer's ways out before collection: a postponement of the due date (anstånd), an
instalment plan (avbetalningsplan), and a disputed line; granted by the customer on the
invoice page or by an agent in the chat, each grant confirmed by a receipt in the outbox.

Every service locks the invoice row first and then its case, as the engine's steps do, so a
grant and a reminder on the same invoice take turns: a reminder either went before the grant
(and the grant counts from the due date it gave) or finds the grant and holds back
(``dunning.selectors.invoice_dunning_hold``). The rules are ``dunning.terms``, the same the
pages use to offer them.

Repeating a grant is safe: an ``idempotency_key`` (the form's, scoped by the edge) returns
the first result with ``created=False``; so does a second tab asking for the same thing
(the same new due date, the same number of parts, the same line). Asking for something else
where one way out already stands is refused with its code.

``today`` is the legal date in Europe/Stockholm (default ``timezone.localdate()``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Sum
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext_noop

from core.errors import DomainError
from core.money import ZERO
from dunning.models import (
    Dispute,
    DisputeOutcome,
    DisputeStatus,
    DunningCase,
    DunningPolicy,
    GrantedBy,
    Instalment,
    InstalmentPlan,
    PlanStatus,
    Postponement,
)
from dunning.selectors import active_policy, invoice_debt, plan_parts
from dunning.services.messages import notice_channels
from dunning.services.steps import invoice_changed, lock_invoice
from dunning.terms import (
    Debt,
    Part,
    instalment_fee_refusal,
    instalment_first_due,
    instalment_missed,
    instalment_parts_refusal,
    instalment_refusal,
    instalment_schedule,
    postponement_date_refusal,
    postponement_refusal,
    postponement_window,
)
from dunning.texts import Money, charge_texts
from invoices.models import ChargeKind, Invoice, InvoiceCharge, InvoiceLine, OutboundMessage
from invoices.services.credit_notes import credit_note_issue
from invoices.services.delivery import RenderedMessage, invoice_deliver

KEY_MAX = 100  # InstalmentPlan.idempotency_key and the others
REASON_MAX = 500  # a dispute's reason, as the customer wrote it
RESOLUTION_MAX = 300  # Dispute.resolution

INSTALMENT_FEE_TITLE = gettext_noop("Instalment plan fee")
INSTALMENT_FEE_DETAIL = gettext_noop(
    "For splitting the invoice into {parts} parts, as agreed on {date}. The law allows at most "
    "{cap} for an instalment plan (förordning 1981:1057); the fee is in the plan's parts."
)


@dataclass(frozen=True)
class Granted[T]:
    """What a grant gave: the row, and whether this call made it (False: it stood already,
    from the same form or the same request in another tab)."""

    row: T
    created: bool


def _key(idempotency_key: str) -> str:
    key = idempotency_key.strip()
    if len(key) > KEY_MAX:
        raise DomainError(code="idempotency_key_invalid", message="Reload the page and try again.")
    return key


def _by_key[M: (Postponement, InstalmentPlan, Dispute)](
    model: type[M], key: str, invoice_id: int
) -> M | None:
    """The row a key made before; a key names a grant on one invoice only."""
    if not key:
        return None
    found = model.objects.filter(idempotency_key=key).first()
    if found is not None and found.invoice_id != invoice_id:
        raise DomainError(code="idempotency_key_invalid", message="Reload the page and try again.")
    return found


@dataclass(frozen=True)
class _Locked:
    """An invoice locked for a grant no earlier request made: the scoped key, the invoice
    and what is owed on it now."""

    key: str
    invoice: Invoice
    debt: Debt


def _earlier_or_lock[M: (Postponement, InstalmentPlan, Dispute)](
    model: type[M], idempotency_key: str, invoice_id: int
) -> M | _Locked:
    """What the same form made before, or the invoice locked for this grant. The key is
    looked for again once the lock is held: the same form sent twice at once waits for the
    first, then finds what it made."""
    key = _key(idempotency_key)
    if (earlier := _by_key(model, key, invoice_id)) is not None:
        return earlier
    invoice, debt = _lock(invoice_id)
    if (earlier := _by_key(model, key, invoice_id)) is not None:
        return earlier
    return _Locked(key=key, invoice=invoice, debt=debt)


def _lock(invoice_id: int) -> tuple[Invoice, Debt]:
    """The invoice and its case, locked in that order (the engine's), and what is owed now.
    Precondition: inside a transaction."""
    invoice = lock_invoice(invoice_id, skip_locked=False)
    if invoice is None:
        raise DomainError(code="invoice_not_found", message="No such invoice.")
    list(DunningCase.objects.select_for_update().filter(invoice=invoice).values_list("id"))
    return invoice, _debt(invoice.id)


def _debt(invoice_id: int) -> Debt:
    debt = invoice_debt(invoice_id=invoice_id)
    if debt is None:
        raise DomainError(code="invoice_not_found", message="No such invoice.")
    return debt


def _in_force(policy: DunningPolicy | None) -> DunningPolicy:
    """The policy the terms were checked against (they refuse when there is none)."""
    if policy is None:
        raise DomainError(code="ways_out_not_offered", message="No dunning policy is active.")
    return policy


def _today(today: date | None) -> date:
    return today or timezone.localdate()


def _user(granted_by: str, user: User | None) -> User | None:
    if granted_by not in GrantedBy.values:
        raise DomainError(code="granted_by_invalid", message="Granted by the customer or an agent.")
    if granted_by == GrantedBy.AGENT and user is None:
        raise DomainError(code="agent_required", message="An agent's grant names the agent.")
    return user if granted_by == GrantedBy.AGENT else None


# --- postponement --------------------------------------------------------------------------------


@transaction.atomic
def postponement_grant(
    *,
    invoice_id: int,
    new_due_date: date,
    granted_by: str,
    granted_by_user: User | None = None,
    idempotency_key: str = "",
    today: date | None = None,
) -> Granted[Postponement]:
    """Postpone the invoice's due date to ``new_due_date``, once per invoice, at most the
    policy's ``postponement_max_days`` after the current due date and not once the claim is
    with collection (``dunning.terms.postponement_refusal``). No reminder is sent before the
    new due date; the steps count from it once it has passed. The customer gets a receipt
    with the terms; the page and the PDF show the new due date."""
    today = _today(today)
    user = _user(granted_by, granted_by_user)
    locked = _earlier_or_lock(Postponement, idempotency_key, invoice_id)
    if isinstance(locked, Postponement):
        return Granted(locked, created=False)
    key, invoice, debt = locked.key, locked.invoice, locked.debt
    policy = active_policy()
    refusal = postponement_refusal(debt, policy, today, by_agent=granted_by == GrantedBy.AGENT)
    if refusal is not None:
        standing = Postponement.objects.filter(invoice=invoice).first()
        if standing is not None and standing.new_due_date == new_due_date:
            return Granted(standing, created=False)  # the same request from another tab
        raise refusal
    window = postponement_window(debt, _in_force(policy), today)
    if (refusal := postponement_date_refusal(window, new_due_date)) is not None:
        raise refusal
    postponement = Postponement.objects.create(
        invoice=invoice,
        previous_due_date=window.current,
        new_due_date=new_due_date,
        granted_by=granted_by,
        granted_by_user=user,
        granted_at=timezone.now(),
        idempotency_key=key,
    )
    if _receipt_send(invoice, "postponement", {"postponement": postponement, "debt": debt}):
        postponement.receipt_sent_at = timezone.now()
        postponement.save(update_fields=["receipt_sent_at"])
    invoice_changed(invoice)
    return Granted(postponement, created=True)


# --- instalment plans ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanQuote:
    """What a plan of ``parts`` parts made today would be: the fee, the total split (what is
    open now + the fee) and the parts."""

    parts: list[Part]
    fee: Decimal
    total: Decimal
    open: Decimal  # what is open before the fee


def instalment_plan_quote(
    *,
    debt: Debt,
    policy: DunningPolicy | None,
    parts: int,
    today: date,
    by_agent: bool,
    fee: Decimal | None = None,
) -> PlanQuote:
    """The plan the page and the agent show before the confirmation, by the same rules
    ``instalment_plan_grant`` makes it with (raises their ``DomainError``). Reads nothing."""
    refusal = instalment_refusal(debt, policy, by_agent=by_agent)
    if refusal is not None:
        raise refusal
    policy = _in_force(policy)
    if (refusal := instalment_parts_refusal(policy, parts)) is not None:
        raise refusal
    fee = policy.instalment_fee if fee is None else fee
    if (refusal := instalment_fee_refusal(fee, settings.DUNNING_INSTALMENT_FEE_CAP)) is not None:
        raise refusal
    total = debt.open + fee
    schedule = instalment_schedule(
        total=total, parts=parts, first_due=instalment_first_due(debt, policy, today)
    )
    return PlanQuote(parts=schedule, fee=fee, total=total, open=debt.open)


@transaction.atomic
def instalment_plan_grant(
    *,
    invoice_id: int,
    parts: int,
    granted_by: str,
    granted_by_user: User | None = None,
    fee: Decimal | None = None,
    expected_total: Decimal | None = None,
    idempotency_key: str = "",
    today: date | None = None,
) -> Granted[InstalmentPlan]:
    """Split what is open on the invoice, plus the plan's fee (``fee``, else the policy's;
    at most ``DUNNING_INSTALMENT_FEE_CAP``), into ``parts`` parts a month apart
    (``instalment_plan_quote``). The fee becomes a charge on the invoice
    (``InvoiceCharge`` of kind instalment_fee, ``source_key`` ``instalment-plan:<id>``).
    While the plan runs no reminder is sent; ``instalment_plans_check`` follows its parts.

    ``expected_total``: the total the customer was shown; when what is open has changed since
    (a payment came in), ``instalment_total_changed`` asks them to look again."""
    today = _today(today)
    user = _user(granted_by, granted_by_user)
    locked = _earlier_or_lock(InstalmentPlan, idempotency_key, invoice_id)
    if isinstance(locked, InstalmentPlan):
        return Granted(locked, created=False)
    key, invoice, debt = locked.key, locked.invoice, locked.debt
    if debt.plan_active:
        running = InstalmentPlan.objects.get(invoice=invoice, status=PlanStatus.ACTIVE)
        if running.parts == parts:
            return Granted(running, created=False)  # the same request from another tab
    quote = instalment_plan_quote(
        debt=debt,
        policy=active_policy(),
        parts=parts,
        today=today,
        by_agent=granted_by == GrantedBy.AGENT,
        fee=fee,
    )
    if expected_total is not None and expected_total != quote.total:
        raise DomainError(
            code="instalment_total_changed",
            message=f"What is open changed: the plan is now for {quote.total} kr.",
        )
    plan = InstalmentPlan.objects.create(
        invoice=invoice,
        parts=parts,
        amount=quote.total,
        fee=quote.fee,
        granted_by=granted_by,
        granted_by_user=user,
        granted_at=timezone.now(),
        idempotency_key=key,
    )
    Instalment.objects.bulk_create(
        Instalment(plan=plan, number=part.number, due_date=part.due_date, amount=part.amount)
        for part in quote.parts
    )
    if quote.fee:
        InvoiceCharge.objects.create(
            invoice=invoice,
            kind=ChargeKind.INSTALMENT_FEE,
            amount=quote.fee,
            texts=charge_texts(
                INSTALMENT_FEE_TITLE,
                INSTALMENT_FEE_DETAIL,
                parts=parts,
                date=today,
                cap=Money(settings.DUNNING_INSTALMENT_FEE_CAP),
            ),
            charged_on=today,
            source_key=f"instalment-plan:{plan.id}",
            created_at=timezone.now(),
        )
    context = {"plan": plan, "parts": quote.parts, "debt": debt}
    if _receipt_send(invoice, "instalment_plan", context):
        plan.receipt_sent_at = timezone.now()
        plan.save(update_fields=["receipt_sent_at"])
    invoice_changed(invoice)
    return Granted(plan, created=True)


@dataclass
class PlansCheckReport:
    broken: int = 0
    completed: int = 0


def instalment_plans_check(*, today: date) -> PlansCheckReport:
    """Every running plan, in chunks of ``DUNNING_CHUNK_SIZE``: ``instalment_plan_check``."""
    report = PlansCheckReport()
    last = 0
    while True:
        ids = list(
            InstalmentPlan.objects.filter(status=PlanStatus.ACTIVE, id__gt=last)
            .order_by("id")
            .values_list("id", flat=True)[: settings.DUNNING_CHUNK_SIZE]
        )
        if not ids:
            return report
        for plan_id in ids:
            status = instalment_plan_check(plan_id=plan_id, today=today, skip_locked=True)
            if status == PlanStatus.BROKEN:
                report.broken += 1
            elif status == PlanStatus.COMPLETED:
                report.completed += 1
        last = ids[-1]


def instalment_plan_check(*, plan_id: int, today: date, skip_locked: bool = False) -> str | None:
    """A running plan whose parts are all paid is completed; one with a part not paid
    ``instalment_grace_days`` after its day (``dunning.terms.instalment_missed``) is broken,
    and the customer is told kindly what is left and what happens next: dunning resumes from
    the current due date at the engine's next run. Returns the new status, or None when
    nothing changed (the plan runs on, ended already, or another worker holds it)."""
    invoice_id = (
        InstalmentPlan.objects.filter(id=plan_id).values_list("invoice_id", flat=True).first()
    )
    if invoice_id is None:
        return None
    with transaction.atomic():
        invoice = lock_invoice(invoice_id, skip_locked=skip_locked)
        if invoice is None:
            return None
        plan = (
            InstalmentPlan.objects.select_for_update(skip_locked=skip_locked)
            .prefetch_related("instalments")
            .filter(id=plan_id, status=PlanStatus.ACTIVE)
            .first()
        )
        if plan is None:
            return None
        debt = _debt(invoice.id)
        if debt.open <= 0:
            return _plan_end(plan, PlanStatus.COMPLETED)
        policy = active_policy()
        grace = policy.instalment_grace_days if policy else 0
        parts = plan_parts(plan)
        missed = instalment_missed(parts, asked=debt.asked, today=today, grace_days=grace)
        if missed is None:
            return None
        status = _plan_end(plan, PlanStatus.BROKEN)
        context = {"plan": plan, "parts": parts, "missed": missed, "debt": debt}
        _receipt_send(invoice, "instalment_plan_broken", context)
        invoice_changed(invoice)
        return status


def _plan_end(plan: InstalmentPlan, status: str) -> str:
    plan.status, plan.ended_at = status, timezone.now()
    plan.save(update_fields=["status", "ended_at"])
    return status


# --- disputes ------------------------------------------------------------------------------------


def dispute_reason_clean(reason: str) -> str:
    """The customer's words, trimmed; refused when empty or over ``REASON_MAX`` characters."""
    reason = (reason or "").replace("\r\n", "\n").strip()
    if not reason:
        raise DomainError(code="dispute_reason_required", message="Say what is wrong.")
    if len(reason) > REASON_MAX:
        raise DomainError(
            code="dispute_reason_too_long",
            message=f"Write at most {REASON_MAX} characters.",
        )
    return reason


def line_left_to_credit(line: InvoiceLine) -> Decimal:
    """What credit notes have left of the line (its amount, less what they credited)."""
    credited = line.credits.aggregate(s=Sum("amount"))["s"] or ZERO
    return line.amount + credited


@transaction.atomic
def dispute_open(
    *,
    invoice_id: int,
    line_id: int,
    reason: str,
    opened_by: str,
    opened_by_user: User | None = None,
    amount: Decimal | None = None,
    conversation_id: int | None = None,
    idempotency_key: str = "",
) -> Granted[Dispute]:
    """The customer disputes one line ("I don't recognise this"): ``amount`` of it (default:
    what credit notes have left of it), with their ``reason``. While the dispute is open that
    amount is left out of what a reminder asks, of interest and of a collection claim; the
    rest of the invoice goes on. One open dispute per line: disputing it again returns it.
    ``conversation_id`` is the chat it is discussed in (chat opens it; dunning keeps the id).
    """
    user = _user(opened_by, opened_by_user)
    locked = _earlier_or_lock(Dispute, idempotency_key, invoice_id)
    if isinstance(locked, Dispute):
        return Granted(locked, created=False)
    key, invoice, debt = locked.key, locked.invoice, locked.debt
    line = (
        InvoiceLine.objects.filter(id=line_id, invoice_id=invoice.id)
        .exclude(kind="rounding")
        .first()
    )
    if line is None:
        raise DomainError(code="line_not_found", message="That line is not on this invoice.")
    standing = Dispute.objects.filter(line=line, status=DisputeStatus.OPEN).first()
    if standing is not None:
        return Granted(standing, created=False)
    if debt.handed_over:
        raise DomainError(
            code="handed_to_collection",
            message="The claim is with debt collection: contact the collection agency.",
        )
    if not debt.is_invoice or debt.open <= 0:
        raise DomainError(code="nothing_to_pay", message="Nothing is left to pay.")
    reason = dispute_reason_clean(reason)
    left = line_left_to_credit(line)
    if left <= 0:
        raise DomainError(code="line_already_credited", message="That line is credited already.")
    amount = left if amount is None else amount
    if not ZERO < amount <= left:
        raise DomainError(
            code="dispute_amount_invalid", message=f"Dispute more than 0 and at most {left} kr."
        )
    dispute = Dispute.objects.create(
        invoice=invoice,
        line=line,
        amount=amount,
        reason=reason,
        conversation_id=conversation_id,
        opened_by=opened_by,
        opened_by_user=user,
        opened_at=timezone.now(),
        idempotency_key=key,
    )
    return Granted(dispute, created=True)


@transaction.atomic
def dispute_resolve(
    *, dispute_id: int, upheld: bool, resolution: str, by: User
) -> Granted[Dispute]:
    """An agent settles a dispute. Upheld: the disputed amount is credited with a credit note
    (``invoices.services.credit_notes``: the whole line when all of what is left of it was
    disputed, else that part of it) whose reason is ``resolution``. Rejected: the amount is
    owed again and dunning resumes on it at the next run; ``resolution`` says why. Resolving a
    resolved dispute returns it (``created=False``)."""
    invoice_id = Dispute.objects.filter(id=dispute_id).values_list("invoice_id", flat=True).first()
    if invoice_id is None:
        raise DomainError(code="dispute_not_found", message="No such dispute.")
    _lock(invoice_id)
    dispute = (
        Dispute.objects.select_for_update(of=("self",)).select_related("line").get(id=dispute_id)
    )
    if dispute.status == DisputeStatus.RESOLVED:
        return Granted(dispute, created=False)
    resolution = (resolution or "").strip()
    if not resolution:
        raise DomainError(code="resolution_required", message="Say what was found.")
    if len(resolution) > RESOLUTION_MAX:
        raise DomainError(
            code="resolution_too_long", message=f"Write at most {RESOLUTION_MAX} characters."
        )
    if upheld:
        dispute.credit_note = _credit(dispute, resolution)
    dispute.status = DisputeStatus.RESOLVED
    dispute.outcome = DisputeOutcome.UPHELD if upheld else DisputeOutcome.REJECTED
    dispute.resolution = resolution
    dispute.resolved_at, dispute.resolved_by = timezone.now(), by
    dispute.save(
        update_fields=[
            "status",
            "outcome",
            "resolution",
            "credit_note",
            "resolved_at",
            "resolved_by",
        ]
    )
    invoice_changed(dispute.invoice)
    return Granted(dispute, created=True)


def _credit(dispute: Dispute, reason: str) -> Invoice:
    """The credit note of a dispute upheld: the disputed amount of its line. Precondition:
    the invoice is locked."""
    return credit_note_issue(
        invoice_id=dispute.invoice_id,
        reason=reason,
        line_ids=[dispute.line_id],
        amounts={dispute.line_id: min(dispute.amount, line_left_to_credit(dispute.line))},
    )


# --- receipts ------------------------------------------------------------------------------------


# Each receipt's template pair, and the reason its fresh link is recorded with (at most 20).
RECEIPT_REASONS = {
    "postponement": "postponement",
    "instalment_plan": "instalment_plan",
    "instalment_plan_broken": "plan_broken",
}


def _receipt_send(invoice: Invoice, kind: str, context: dict[str, object]) -> bool:
    """Write the receipt of ``kind`` (a template pair under dunning/receipts/) to the
    outbox with a fresh link to the invoice, on the customer's channels (a paper customer by
    e-mail, else SMS, when we have an address); the carriers send it after commit. Returns
    whether anything was written. Precondition: inside the grant's transaction."""
    channels = notice_channels(invoice.customer)
    if not channels:
        return False
    sent = invoice_deliver(
        invoice=invoice,
        reason=RECEIPT_REASONS[kind],
        render=_renderer(kind, context),
        channels=channels,
    )
    return bool(sent)


def _renderer(
    kind: str, extra: dict[str, object]
) -> Callable[[str, dict[str, object]], RenderedMessage]:
    def render(channel: str, context: dict[str, object]) -> RenderedMessage:
        full = {**context, **extra, "cap": settings.DUNNING_INSTALMENT_FEE_CAP}
        if channel == OutboundMessage.Channel.EMAIL:
            subject = render_to_string(f"dunning/receipts/{kind}_subject.txt", full)
            return RenderedMessage(
                subject=" ".join(subject.split()),
                text=render_to_string(f"dunning/receipts/{kind}_email.txt", full),
                html="",
            )
        text = render_to_string(f"dunning/receipts/{kind}_sms.txt", full)
        return RenderedMessage(subject="", text=text.strip(), html="")

    return render
