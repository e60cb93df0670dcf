"""Reads the dunning engine, the page and the admin share."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import TruncMonth

from core.days import swedish_midnight
from core.errors import DomainError
from core.money import ZERO, quantize_ore
from dunning.models import (
    ActionKind,
    CaseStage,
    Dispute,
    DisputeStatus,
    DunningAction,
    DunningCase,
    DunningPolicy,
    Instalment,
    InstalmentPlan,
    PlanStatus,
    Postponement,
    ReferenceRate,
)
from dunning.rules import Claim, claim_split
from dunning.terms import (
    Debt,
    Part,
    PostponementWindow,
    instalment_parts_choices,
    instalment_refusal,
    postponement_refusal,
    postponement_window,
)
from invoices.models import (
    ChargeKind,
    DocumentKind,
    Invoice,
    InvoiceCharge,
    InvoiceStatus,
    Payment,
    PaymentStatus,
)
from invoices.selectors import invoice_paid
from invoices.services.payments import InvoiceBalance


@dataclass(frozen=True)
class DunningHold:
    """What holds an invoice's dunning back on a day.

    ``postponed_to``: the new due date of the invoice's postponement (anstånd), if it has one,
    whether or not it has passed: the steps count from it once it has. ``plan_active``: an
    instalment plan is being paid. ``disputed``: kronor under open dispute, left out of what a
    reminder asks, of interest and of a collection claim.
    """

    today: date
    postponed_to: date | None = None
    plan_active: bool = False
    disputed: Decimal = ZERO

    @property
    def holds_reminders(self) -> bool:
        """No reminder, final notice or handover while this is true."""
        postponed = self.postponed_to is not None and self.today <= self.postponed_to
        return postponed or self.plan_active

    def due_date(self, current: date) -> date:
        """The due date the next step counts from: the later of the case's and the
        postponement's."""
        if self.postponed_to is not None and self.postponed_to > current:
            return self.postponed_to
        return current


def invoices_dunning_holds(*, invoice_ids: Iterable[int], today: date) -> dict[int, DunningHold]:
    """Holds for a chunk of invoices in three queries; every id gets an entry."""
    ids = list(invoice_ids)
    postponed = dict(
        Postponement.objects.filter(invoice_id__in=ids).values_list("invoice_id", "new_due_date")
    )
    planned = set(
        InstalmentPlan.objects.filter(invoice_id__in=ids, status=PlanStatus.ACTIVE).values_list(
            "invoice_id", flat=True
        )
    )
    disputed = {
        row["invoice_id"]: row["total"]
        for row in Dispute.objects.filter(invoice_id__in=ids, status=DisputeStatus.OPEN)
        .values("invoice_id")
        .annotate(total=Sum("amount"))
    }
    return {
        invoice_id: DunningHold(
            today=today,
            postponed_to=postponed.get(invoice_id),
            plan_active=invoice_id in planned,
            disputed=disputed.get(invoice_id) or ZERO,
        )
        for invoice_id in ids
    }


def invoice_dunning_hold(*, invoice_id: int, today: date) -> DunningHold:
    """What holds one invoice's dunning back on ``today`` (Europe/Stockholm)."""
    return invoices_dunning_holds(invoice_ids=[invoice_id], today=today)[invoice_id]


def invoice_due_date_now(*, invoice_id: int) -> date | None:
    """The day payment is asked by now, when a reminder (the case's due date) or a
    postponement moved it from the invoice's own; None when nothing did. One query."""
    row = (
        Invoice.objects.filter(id=invoice_id)
        .values_list("due_date", "dunning_case__due_date", "postponement__new_due_date")
        .first()
    )
    if row is None:
        return None
    own, moved_by_reminder, postponed_to = row
    moved = [day for day in (moved_by_reminder, postponed_to) if day is not None]
    latest = max(moved, default=None)
    return latest if latest is not None and latest > own else None


def reference_rate_on(day: date) -> ReferenceRate:
    """Riksbanken's reference rate in force on ``day``: the latest row valid from it or
    earlier. Raises ``DomainError`` (``reference_rate_missing``) when the table has none."""
    rate = ReferenceRate.objects.filter(valid_from__lte=day).order_by("-valid_from").first()
    if rate is None:
        raise DomainError(
            code="reference_rate_missing",
            message=f"No reference rate is in force on {day}: add one in the admin.",
        )
    return rate


def active_policy() -> DunningPolicy | None:
    """The policy new cases follow (one at most is active); None stops new dunning."""
    return DunningPolicy.objects.filter(is_active=True).first()


FEE_KINDS = (ChargeKind.REMINDER_FEE, ChargeKind.INSTALMENT_FEE)


def _sum(queryset: QuerySet[Any], expression: Any, *, by: str = "invoice_id") -> Subquery:
    """A correlated ``SUM`` per invoice: ``queryset`` is filtered on the outer invoice by
    its column ``by``."""
    return Subquery(
        queryset.values(by).annotate(s=Sum(expression)).values("s")[:1],
        output_field=DecimalField(max_digits=14, decimal_places=2),
    )


def kronor(value: Decimal | None) -> Decimal:
    """A sum read from the database as kronor (None: nothing): SQLite sums decimals as
    floats, so it is brought back to öre, which every summand was."""
    return quantize_ore(value or ZERO)


def with_claim_sums(cases: QuerySet[DunningCase]) -> QuerySet[DunningCase]:
    """Cases annotated with their invoice's credited, paid, fees and interest (kronor, None
    for none), in the one query that lists them: see ``claim_of``."""
    invoice = OuterRef("invoice_id")
    return cases.annotate(
        credited_sum=_sum(
            Invoice.objects.filter(credited_invoice_id=invoice), "total", by="credited_invoice_id"
        ),
        paid_sum=_sum(
            Payment.objects.filter(invoice_id=invoice, status=PaymentStatus.BOOKED),
            F("amount") - F("surplus"),
        ),
        fees_sum=_sum(
            InvoiceCharge.objects.filter(invoice_id=invoice, kind__in=FEE_KINDS), "amount"
        ),
        interest_sum=_sum(
            InvoiceCharge.objects.filter(invoice_id=invoice, kind=ChargeKind.INTEREST), "amount"
        ),
    )


def claim_of(case: DunningCase) -> Claim:
    """The claim of a case read through ``with_claim_sums`` (its invoice loaded too)."""
    annotated: Any = case
    return claim_split(
        total=case.invoice.total,
        credited=-kronor(annotated.credited_sum),
        paid=kronor(annotated.paid_sum),
        fees=kronor(annotated.fees_sum),
        interest=kronor(annotated.interest_sum),
    )


def invoice_claim(invoice: Invoice) -> Claim:
    """What is owed on one invoice as capital, fees and interest. Three queries."""
    credited = -(
        Invoice.objects.filter(credited_invoice=invoice).aggregate(s=Sum("total"))["s"] or ZERO
    )
    charges = dict(
        InvoiceCharge.objects.filter(invoice=invoice)
        .values("kind")
        .annotate(s=Sum("amount"))
        .values_list("kind", "s")
    )
    return claim_split(
        total=invoice.total,
        credited=credited,
        paid=invoice_paid(invoice.id),
        fees=sum((charges.get(kind) or ZERO for kind in FEE_KINDS), ZERO),
        interest=charges.get(ChargeKind.INTEREST) or ZERO,
    )


def collection_claims(
    *,
    customer_number: str | None = None,
    handed_over_from: date | None = None,
    handed_over_to: date | None = None,
) -> QuerySet[DunningCase]:
    """The claims handed to collection whose invoice is still with collection (a claim paid
    since is not listed), oldest handover first, with what the export shows: the invoice, its
    customer and the sums of ``with_claim_sums``. Optionally one customer's, or those handed
    over from and to a day (both included, Swedish days)."""
    cases = DunningCase.objects.filter(
        stage=CaseStage.HANDED_OVER, invoice__status=InvoiceStatus.COLLECTION
    )
    if customer_number is not None:
        cases = cases.filter(invoice__customer__customer_number=customer_number)
    if handed_over_from is not None:
        cases = cases.filter(handed_over_at__gte=swedish_midnight(handed_over_from))
    if handed_over_to is not None:
        cases = cases.filter(handed_over_at__lt=swedish_midnight(handed_over_to + timedelta(1)))
    return with_claim_sums(
        cases.select_related("invoice__series", "invoice__customer").order_by(
            "handed_over_at", "id"
        )
    )


@dataclass(frozen=True)
class ClaimRow:
    """One claim handed to collection, as the CSV and the API give it (kronor)."""

    case_id: int
    invoice_number: str
    ocr: str
    invoice_date: date
    original_due_date: date
    handed_over_at: str  # ISO 8601
    customer_number: str
    name: str
    address: str
    postal_code: str
    city: str
    email: str
    phone: str
    currency: str
    capital: Decimal
    fees: Decimal
    interest: Decimal
    total: Decimal
    interest_rate: Decimal  # percent a year, on the capital
    interest_from: date  # the first day not charged yet


def claim_row(case: DunningCase) -> ClaimRow:
    """A case of ``collection_claims()`` as an export row."""
    invoice = case.invoice
    customer = invoice.customer
    claim = claim_of(case)
    charged_until = case.interest_charged_until or case.original_due_date
    return ClaimRow(
        case_id=case.id,
        invoice_number=invoice.display_number,
        ocr=invoice.ocr or "",
        invoice_date=invoice.invoice_date,
        original_due_date=case.original_due_date,
        handed_over_at=case.handed_over_at.isoformat() if case.handed_over_at else "",
        customer_number=customer.customer_number,
        name=customer.name,
        address=customer.address,
        postal_code=customer.postal_code,
        city=customer.city,
        email=customer.email,
        phone=customer.phone,
        currency=invoice.currency,
        capital=claim.capital,
        fees=claim.fees,
        interest=claim.interest,
        total=claim.open,
        interest_rate=case.interest_rate,
        interest_from=charged_until + timedelta(days=1),
    )


@dataclass(frozen=True)
class StepFigures:
    """What one policy step did in one month: how many it acted on and sent, and what it
    earned (fees and interest charged, kronor), and how many of those invoices are paid now."""

    month: date
    kind: str
    key: str
    actions: int
    sent: int
    fees: Decimal
    interest: Decimal
    paid_since: int

    @property
    def earned(self) -> Decimal:
        return self.fees + self.interest


def step_figures(*, since: date | None = None) -> list[StepFigures]:
    """Per month (of the step's date) and step, newest month first, in one query."""
    actions = DunningAction.objects.all()
    if since is not None:
        actions = actions.filter(acted_on__gte=since)
    rows = (
        actions.annotate(month=TruncMonth("acted_on"))
        .values("month", "kind", "key")
        .annotate(
            actions=Count("id"),
            sent=Count("id", filter=Q(sent_at__isnull=False)),
            fees=Sum("fee"),
            interest=Sum("interest"),
            paid_since=Count("id", filter=Q(invoice__status=InvoiceStatus.PAID)),
        )
        .order_by("-month", "kind", "key")
    )
    order = {kind: index for index, kind in enumerate(ActionKind.values)}
    figures = [
        StepFigures(
            month=row["month"],
            kind=row["kind"],
            key=row["key"],
            actions=row["actions"],
            sent=row["sent"],
            fees=quantize_ore(row["fees"] or ZERO),
            interest=quantize_ore(row["interest"] or ZERO),
            paid_since=row["paid_since"],
        )
        for row in rows
    ]
    # within a month: the steps in the order they come (friendly notice … collection)
    return sorted(figures, key=lambda f: (-f.month.toordinal(), order[f.kind], f.key))


# --- the customer's ways out ----------------------------------------------------------------


def _invoice_sum(queryset: QuerySet[Any], expression: Any) -> Subquery:
    """A correlated ``SUM`` per invoice (``invoice_id`` of the rows = the outer invoice's id)."""
    return _sum(queryset.filter(invoice_id=OuterRef("id")), expression)


def invoice_debt(*, invoice_id: int) -> Debt | None:
    """What ``dunning.terms`` needs to know about an invoice now, in one query: its status
    and dates, its case's stage and due date, a postponement's new due date, what is open and
    what of it is disputed, and whether a plan runs or ran on it. None for no such invoice."""
    row = (
        Invoice.objects.filter(id=invoice_id)
        .annotate(
            paid_sum=_invoice_sum(
                Payment.objects.filter(status=PaymentStatus.BOOKED), F("amount") - F("surplus")
            ),
            charged_sum=_invoice_sum(InvoiceCharge.objects.all(), "amount"),
            credited_sum=_sum(
                Invoice.objects.filter(credited_invoice_id=OuterRef("id")),
                "total",
                by="credited_invoice_id",
            ),
            disputed_sum=_invoice_sum(Dispute.objects.filter(status=DisputeStatus.OPEN), "amount"),
            plan_active=Exists(
                InstalmentPlan.objects.filter(invoice_id=OuterRef("id"), status=PlanStatus.ACTIVE)
            ),
            plan_before=Exists(
                InstalmentPlan.objects.filter(invoice_id=OuterRef("id")).exclude(
                    status=PlanStatus.ACTIVE
                )
            ),
        )
        .values(
            "kind",
            "status",
            "due_date",
            "total",
            "dunning_case__stage",
            "dunning_case__due_date",
            "postponement__new_due_date",
            "paid_sum",
            "charged_sum",
            "credited_sum",
            "disputed_sum",
            "plan_active",
            "plan_before",
        )
        .first()
    )
    if row is None:
        return None
    balance = InvoiceBalance(
        total=row["total"],
        credited=-kronor(row["credited_sum"]),
        paid=kronor(row["paid_sum"]),
        charged=kronor(row["charged_sum"]),
    )
    return Debt(
        invoice_id=invoice_id,
        is_invoice=row["kind"] == DocumentKind.INVOICE,
        status=row["status"],
        due_date=row["due_date"],
        case_stage=row["dunning_case__stage"],
        case_due_date=row["dunning_case__due_date"],
        postponed_to=row["postponement__new_due_date"],
        open=balance.open,
        disputed=kronor(row["disputed_sum"]),
        plan_active=row["plan_active"],
        plan_before=row["plan_before"],
    )


def instalment_plan_latest(*, invoice_id: int) -> InstalmentPlan | None:
    """The invoice's running plan, else its latest (completed or broken), with its parts in
    ``parts`` (a list, by number). Two queries; one when it never had a plan."""
    plan = (
        InstalmentPlan.objects.filter(invoice_id=invoice_id)
        .order_by(
            Case(When(status=PlanStatus.ACTIVE, then=0), default=1),
            "-granted_at",
            "-id",
        )
        .prefetch_related(Prefetch("instalments", queryset=Instalment.objects.order_by("number")))
        .first()
    )
    return plan


def disputes_open(*, invoice_id: int) -> list[Dispute]:
    """The invoice's open disputes, oldest first, with their lines. One query."""
    return list(
        Dispute.objects.filter(invoice_id=invoice_id, status=DisputeStatus.OPEN)
        .select_related("line")
        .order_by("opened_at", "id")
    )


def plan_parts(plan: InstalmentPlan) -> list[Part]:
    """A plan's parts as ``dunning.terms`` reads them (from its prefetched instalments)."""
    return [
        Part(number=part.number, due_date=part.due_date, amount=part.amount)
        for part in plan.instalments.all()
    ]


@dataclass(frozen=True)
class WaysOut:
    """An invoice's ways out as a page or the console shows them on ``today``: what stands
    (a postponement, the latest plan, open disputes) and what may still be chosen, with the
    refusal of what may not (``dunning.terms``; ``by_agent`` decides whose rules)."""

    debt: Debt
    policy: DunningPolicy | None
    today: date
    postponement: Postponement | None
    plan: InstalmentPlan | None  # the running plan, else the latest one
    disputes: list[Dispute]
    postpone_refusal: DomainError | None
    plan_refusal: DomainError | None

    @property
    def window(self) -> PostponementWindow | None:
        """The days a postponement may give, when one may be granted."""
        if self.postpone_refusal is not None or self.policy is None:
            return None
        return postponement_window(self.debt, self.policy, self.today)

    @property
    def parts_choices(self) -> list[int]:
        if self.plan_refusal is not None or self.policy is None:
            return []
        return instalment_parts_choices(self.policy)

    @property
    def plan_active(self) -> bool:
        return self.plan is not None and self.plan.status == PlanStatus.ACTIVE


def ways_out_read(*, debt: Debt, today: date, by_agent: bool) -> WaysOut:
    """``WaysOut`` of the invoice ``debt`` describes: the active policy (one query), and only
    where they exist the postponement, the plan with its parts and the open disputes with
    their lines (one or two queries each)."""
    policy = active_policy()
    postponement = None
    if debt.postponed_to is not None:
        postponement = Postponement.objects.filter(invoice_id=debt.invoice_id).first()
    plan = None
    if debt.plan_active or debt.plan_before:
        plan = instalment_plan_latest(invoice_id=debt.invoice_id)
    disputes = disputes_open(invoice_id=debt.invoice_id) if debt.disputed > 0 else []
    return WaysOut(
        debt=debt,
        policy=policy,
        today=today,
        postponement=postponement,
        plan=plan,
        disputes=disputes,
        postpone_refusal=postponement_refusal(debt, policy, today, by_agent=by_agent),
        plan_refusal=instalment_refusal(debt, policy, by_agent=by_agent),
    )
