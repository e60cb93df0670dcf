"""The bill run: rate every customer in scope for a month and issue one invoice each.

Customers are issued in chunks, one transaction per chunk. A customer in scope is one with
a subscription active in the month and no invoice for it yet, so running a period again
issues nothing twice and a run that died half-way resumes where it stopped.
"""

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cache, partial
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from billing.models import (
    BillRun,
    BillRunStatus,
    Customer,
    DeliveryMethod,
    Discount,
    OneOffCharge,
    Plan,
    PlanChange,
    PlanChangeStatus,
    RoamingZone,
    Subscription,
    UsageMonth,
    UsageRecord,
)
from billing.rating import (
    DiscountTerms,
    LineDraft,
    OneOff,
    PlanPeriod,
    PlanTerms,
    SubscriptionTerms,
    Text,
    UsageTotals,
    ZonePrices,
    invoice_totals,
    month_allowance,
    month_bounds,
    rate_subscription,
)
from billing.roaming import is_roam_like_at_home
from core.bulk import ids_reserve, insert_rows
from core.days import swedish_midnight
from core.errors import DomainError
from core.lookups import AnyOf
from core.money import ZERO
from core.ocr import ocr_build
from core.webhooks import webhook_events_emit_many
from invoices.models import DocumentKind, Invoice, InvoiceLine
from invoices.selectors import CREDIT_AT_ISSUE
from invoices.services.credit_balance import credit_balances_lock, status_at_issue
from invoices.services.numbering import INVOICE_SERIES, series_allocate
from invoices.texts import line_texts

STOCKHOLM = ZoneInfo("Europe/Stockholm")
UNIT_PRICE_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class BillRunProgress:
    done: int  # customers with an invoice for the period in this run's scope
    total: int
    issued_now: int  # issued by this call
    elapsed_seconds: float

    @property
    def rate(self) -> float:
        return self.issued_now / self.elapsed_seconds if self.elapsed_seconds else 0.0

    @property
    def seconds_left(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate else None


def bill_run_start(
    *, period: date, billing_group: str = "default", invoice_date: date | None = None
) -> BillRun:
    """The bill run of a month and group, created on first call (a second call returns it)."""
    first, _last = month_bounds(period)
    invoice_date = invoice_date or timezone.localdate()
    bill_run_validate(period=first, invoice_date=invoice_date)
    run, _created = BillRun.objects.get_or_create(
        period=first, billing_group=billing_group, defaults={"invoice_date": invoice_date}
    )
    return run


def bill_run_validate(*, period: date, invoice_date: date) -> None:
    """A month is billed once it has ended: its invoice date falls after its last day.

    Billing a month in progress would freeze an invoice (one per customer and month) before
    the rest of the month's fees and usage exist.
    """
    _first, last = month_bounds(period)
    if invoice_date <= last:
        raise DomainError(
            code="period_not_ended",
            message=f"{period:%Y-%m} can be billed from {last + timedelta(days=1)}: "
            "a month is billed once it has ended.",
        )


def _billable_in(first: date, last: date) -> Q:
    """Subscriptions with something to bill in the month: active on a day of it, or with a
    one-off charge in it (a return fee after the subscription ended)."""
    active = Q(start_date__lte=last) & (Q(end_date__isnull=True) | Q(end_date__gte=first))
    charged = Exists(
        OneOffCharge.objects.filter(subscription=OuterRef("pk"), charge_date__range=(first, last))
    )
    return active | Q(charged)


def bill_run_scope(run: BillRun) -> QuerySet[Customer]:
    """Customers of the run's group with something to bill in the month."""
    first, last = month_bounds(run.period)
    billable = Subscription.objects.filter(customer=OuterRef("pk")).filter(
        _billable_in(first, last)
    )
    return Customer.objects.filter(billing_group=run.billing_group).filter(Exists(billable))


def _issued(run: BillRun) -> QuerySet[Invoice]:
    return Invoice.objects.filter(kind=DocumentKind.INVOICE, period_start=run.period)


def _issued_in_scope(run: BillRun, scope: QuerySet[Customer]) -> int:
    # A semi-join driven by the invoices: cheap even while the planner's statistics still
    # think the freshly filled invoice table is empty.
    return _issued(run).filter(customer_id__in=scope.values("id")).count()


def _analyze(model: type[Invoice]) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


# Namespace of the PostgreSQL advisory locks that keep one execution per bill run.
_RUN_LOCK_NAMESPACE = 0x7470  # "tp"


@contextmanager
def _one_execution(run_id: int) -> Iterator[None]:
    """Refuse a second execution of the same run while one is under way (PostgreSQL).

    On SQLite, writers are serialised by the database lock and each chunk re-reads who is
    invoiced inside its transaction, so a second execution issues nothing twice either.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_RUN_LOCK_NAMESPACE, run_id])
        if not cursor.fetchone()[0]:
            raise DomainError(
                code="bill_run_in_progress", message="This bill run is already being executed."
            )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_RUN_LOCK_NAMESPACE, run_id])


def bill_run_execute(
    *,
    bill_run_id: int,
    chunk_size: int | None = None,
    on_progress: Callable[[BillRunProgress], None] | None = None,
) -> BillRun:
    """Issue the invoices of a bill run that are not issued yet. Safe to call again; a call
    while another execution of the same run is under way is refused (bill_run_in_progress)."""
    with _one_execution(bill_run_id):
        return _execute(bill_run_id, chunk_size or settings.BILL_RUN_CHUNK_SIZE, on_progress)


def _execute(
    bill_run_id: int, chunk_size: int, on_progress: Callable[[BillRunProgress], None] | None
) -> BillRun:
    run = BillRun.objects.get(id=bill_run_id)
    scope = bill_run_scope(run).order_by()
    total = scope.count()
    done = _issued_in_scope(run, scope)
    BillRun.objects.filter(id=run.id).update(
        status=BillRunStatus.RUNNING,
        customers_total=total,
        error="",
        started_at=run.started_at or timezone.now(),
    )
    zones = _zones()
    started = time.monotonic()
    issued_now = 0
    last_id = 0
    try:
        # Walk the scope by id (keyset), skipping customers already invoiced for the month:
        # robust whatever the planner knows about freshly inserted invoices.
        while ids := list(
            scope.filter(id__gt=last_id).order_by("id").values_list("id", flat=True)[:chunk_size]
        ):
            last_id = ids[-1]
            issued = _issue_chunk(run, ids, zones)
            issued_now += issued
            if on_progress and issued:
                on_progress(
                    BillRunProgress(
                        done=done + issued_now,
                        total=total,
                        issued_now=issued_now,
                        elapsed_seconds=time.monotonic() - started,
                    )
                )
    except Exception as exc:
        BillRun.objects.filter(id=run.id).update(
            status=BillRunStatus.FAILED, error=f"{exc.__class__.__name__}: {exc}"[:2000]
        )
        raise
    # Completeness is decided by the database, not by the loop having ended. The run has
    # just added many invoices: refresh the planner's statistics first, as after any bulk
    # load, or it plans the check as if the invoice table were still empty.
    _analyze(Invoice)
    complete = _issued_in_scope(run, scope) == scope.count()
    _deliver_missing(run)
    BillRun.objects.filter(id=run.id).update(
        status=BillRunStatus.COMPLETED if complete else BillRunStatus.RUNNING,
        finished_at=timezone.now() if complete else None,
    )
    run.refresh_from_db()
    return run


# --- one chunk -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Zones:
    by_country: dict[str, str]
    catch_all: str | None
    prices: dict[str, ZonePrices]

    def zone_for(self, country: str) -> str:
        code = self.by_country.get(country.upper(), self.catch_all)
        if code is None:
            raise DomainError(
                code="roaming_zone_missing", message=f"No roaming zone prices usage in {country}."
            )
        return code


def _zones() -> _Zones:
    by_country: dict[str, str] = {}
    catch_all = None
    prices = {}
    for zone in RoamingZone.objects.all():
        prices[zone.code] = ZonePrices(
            code=zone.code,
            name=zone.name,
            data_per_mb=zone.data_per_mb,
            voice_per_minute=zone.voice_per_minute,
            sms_each=zone.sms_each,
        )
        for country in zone.country_codes():
            if country == "*":
                catch_all = zone.code
            else:
                by_country[country] = zone.code
    return _Zones(by_country=by_country, catch_all=catch_all, prices=prices)


# (subscription id, kind, country, summed quantity) of one month
_UsageRow = tuple[int, str, str, Decimal]


def _usage_rows(sub_ids: list[int], first: date, last: date) -> list[_UsageRow]:
    """The month's usage summed by subscription, kind and country: one ``GROUP BY``."""
    return list(
        UsageRecord.objects.filter(
            AnyOf(F("subscription_id"), sub_ids),
            occurred_at__gte=swedish_midnight(first),
            occurred_at__lt=swedish_midnight(last + timedelta(days=1)),
        )
        .values_list("subscription_id", "kind", "country")
        .annotate(quantity=Sum("quantity"))
        .order_by()
    )


def _usage_totals(
    sub_ids: list[int], first: date, last: date, zones: _Zones
) -> dict[int, UsageTotals]:
    return _totals_of(_usage_rows(sub_ids, first, last), zones)


def _totals_of(rows: list[_UsageRow], zones: _Zones) -> dict[int, UsageTotals]:
    totals: dict[int, UsageTotals] = defaultdict(UsageTotals)
    for sub_id, kind, country, quantity in rows:
        usage = totals[sub_id]
        if is_roam_like_at_home(country):
            if kind == "data":
                usage.data_mb += quantity
                if country and country.upper() != "SE":
                    usage.eu_roaming_data_mb += quantity
            elif kind == "voice":
                usage.voice_seconds += quantity
            else:
                usage.sms += quantity
        else:
            zone = usage.abroad.setdefault(zones.zone_for(country), {})
            zone[kind] = zone.get(kind, ZERO) + quantity
    return totals


@dataclass(frozen=True)
class _Rated:
    sub: Subscription
    lines: list[LineDraft]
    usage: UsageTotals
    plan: Plan  # held at the end of the month
    price: Decimal
    included: PlanTerms  # what the month included: the plan's allowance, or each plan's share


def _issue_chunk(run: BillRun, candidate_ids: list[int], zones: _Zones) -> int:
    """Issue the invoices of the candidates not invoiced for the month yet; returns how many."""
    first, last = month_bounds(run.period)
    with transaction.atomic():
        # Read inside the transaction that inserts: the authority on who is invoiced.
        invoiced = set(
            _issued(run)
            .filter(AnyOf(F("customer_id"), candidate_ids))
            .values_list("customer_id", flat=True)
        )
        customer_ids = [i for i in candidate_ids if i not in invoiced]
        if not customer_ids:
            return 0
        customers = {c.id: c for c in Customer.objects.filter(AnyOf(F("id"), customer_ids))}
        subs = list(
            Subscription.objects.filter(AnyOf(F("customer_id"), customer_ids))
            .filter(_billable_in(first, last))
            # the handful of plans once, each shared by its subscriptions: not an instance
            # of a plan per subscription
            .prefetch_related("plan")
            .order_by("customer_id", "id")
        )
        sub_ids = [s.id for s in subs]
        discounts, one_offs, changes = _rating_inputs(sub_ids, first, last)
        usage_rows = _usage_rows(sub_ids, first, last)
        usage = _totals_of(usage_rows, zones)

        by_customer: dict[int, list[_Rated]] = defaultdict(list)
        for sub in subs:
            sub_changes = changes[sub.id]
            terms = _terms(sub, discounts[sub.id], one_offs[sub.id], sub_changes, first, last)
            sub_usage = usage.get(sub.id, UsageTotals())
            lines = rate_subscription(terms, run.period, sub_usage, zones.prices)
            plan, price = _plan_on(sub, sub_changes, last)
            included = month_allowance(terms, run.period) or _plan_terms(plan)
            by_customer[sub.customer_id].append(
                _Rated(sub, lines, sub_usage, plan, price, included)
            )

        issued_ids = [cid for cid in customer_ids if cid in by_customer]
        if not issued_ids:
            return 0
        # Everything but the invoices' numbers is written first: the series' row lock, which
        # every chunk of every worker queues on, is held from taking the numbers to commit,
        # so only the invoices themselves are written under it. Their ids are reserved now
        # and the rows that refer to them go in first (foreign keys are checked at commit).
        invoice_ids = ids_reserve(Invoice, len(issued_ids))
        # what customers paid beyond earlier invoices pays the new one (one statement here,
        # four more below when anyone in the chunk has a credit balance)
        credit = credit_balances_lock(customer_ids=issued_ids)
        due_date = run.invoice_date + timedelta(days=settings.PAYMENT_TERMS_DAYS)
        now = timezone.now()
        seller = dict(settings.SELLER)
        invoices: list[dict[str, Any]] = []
        line_rows: list[dict[str, Any]] = []
        for invoice_id, customer_id in zip(invoice_ids, issued_ids, strict=True):
            customer = customers[customer_id]
            rated = by_customer[customer_id]
            lines = [line for r in rated for line in r.lines]
            totals = invoice_totals(lines)
            from_credit = credit.spend(customer_id=customer_id, amount=totals.total)
            invoices.append(
                {
                    "kind": DocumentKind.INVOICE,
                    "customer_id": customer_id,
                    "bill_run_id": run.id,
                    "period_start": first,
                    "period_end": last,
                    "invoice_date": run.invoice_date,
                    "due_date": due_date,
                    "language": _page_language(customer.language),
                    "buyer": buyer_snapshot(customer),
                    "seller": seller,
                    "subscriptions": [
                        _subscription_snapshot(r.sub, r.usage, r.plan, r.price, r.included)
                        for r in rated
                    ],
                    "vat_summary": totals.vat_summary,
                    "net_total": totals.net_total,
                    "vat_total": totals.vat_total,
                    "rounding": totals.rounding,
                    "total": totals.total,
                    "status": status_at_issue(total=totals.total, from_credit=from_credit),
                    "issued_at": now,
                }
            )
            line_rows.extend(invoice_lines_build(invoice_id, lines, totals.rounding))
        insert_rows(InvoiceLine, line_rows, returning_ids=False)
        insert_rows(
            UsageMonth, usage_months_build(sub_ids, first, usage, usage_rows), returning_ids=False
        )
        credit.book(
            invoice_ids=dict(zip(issued_ids, invoice_ids, strict=True)),
            paid_on=run.invoice_date,
            key=CREDIT_AT_ISSUE,
        )
        series, number = series_allocate(code=INVOICE_SERIES, count=len(issued_ids))
        for offset, invoice in enumerate(invoices):
            invoice["series_id"] = series.id
            invoice["number"] = number + offset
            invoice["ocr"] = ocr_build(str(number + offset))
        insert_rows(Invoice, invoices, ids=invoice_ids)
        webhook_events_emit_many(
            type="invoice.issued",
            items=[
                {
                    "invoice": invoice_id,
                    "number": f"{series.prefix}{invoice['number']}",
                    "customer": customers[invoice["customer_id"]].customer_number,
                    "period": f"{first:%Y-%m}",
                    "invoice_date": invoice["invoice_date"].isoformat(),
                    "due_date": invoice["due_date"].isoformat(),
                    "total": str(invoice["total"]),
                    "currency": "SEK",
                    "ocr": invoice["ocr"],
                }
                for invoice_id, invoice in zip(invoice_ids, invoices, strict=True)
            ],
        )
        BillRun.objects.filter(id=run.id).update(
            invoices_issued=F("invoices_issued") + len(invoices),
            lines_issued=F("lines_issued") + len(line_rows),
            total_amount=F("total_amount") + sum((i["total"] for i in invoices), ZERO),
        )
        pdf_ids = [
            invoice_id
            for invoice_id, invoice in zip(invoice_ids, invoices, strict=True)
            if customers[invoice["customer_id"]].wants_pdf
        ]
        # robust: a broker or carrier failure must not fail the run; _deliver_missing and
        # re-running the bill run deliver what was not delivered.
        transaction.on_commit(lambda: _after_issue(invoice_ids, pdf_ids), robust=True)
    return len(invoice_ids)


def usage_months_build(
    sub_ids: list[int], month: date, usage: dict[int, UsageTotals], rows: list[_UsageRow]
) -> list[dict[str, Any]]:
    """The roll-up of a billed month (``billing.models.UsageMonth``): one row per rated
    subscription, with or without usage, from the usage it was billed for: at home and in
    the EU/EEA, in exact thousandths of the summed quantities."""
    at_home = {sub_id for sub_id, _kind, country, _sum in rows if is_roam_like_at_home(country)}
    none = UsageTotals()
    months = []
    for sub_id in sub_ids:
        totals = usage.get(sub_id, none)
        months.append(
            {
                "subscription_id": sub_id,
                "month": month,
                "has_usage": sub_id in at_home,
                "data_milli_mb": _thousandths(totals.data_mb),
                "voice_milli_seconds": _thousandths(totals.voice_seconds),
                "sms_milli": _thousandths(totals.sms),
            }
        )
    return months


def _thousandths(quantity: Decimal) -> int:
    """Exact, no float: usage quantities carry three decimals, and so do their sums (SQLite
    sums them as floats, but Django quantizes the sum to the column's three places)."""
    return int(quantity.scaleb(3))


def _rating_inputs(
    sub_ids: list[int], first: date, last: date
) -> tuple[dict[int, list[DiscountTerms]], dict[int, list[OneOff]], dict[int, list[PlanChange]]]:
    """The discounts, one-off charges and plan changes (undone ones excluded, in
    effective-date order) that rate the subscriptions' month, by subscription id."""
    discounts: dict[int, list[DiscountTerms]] = defaultdict(list)
    for d in Discount.objects.filter(
        AnyOf(F("subscription_id"), sub_ids), valid_from__lte=last
    ).filter(Q(valid_until__isnull=True) | Q(valid_until__gte=first)):
        discounts[d.subscription_id].append(
            DiscountTerms(d.description, d.monthly_amount, d.valid_from, d.valid_until)
        )
    one_offs: dict[int, list[OneOff]] = defaultdict(list)
    for c in OneOffCharge.objects.filter(
        AnyOf(F("subscription_id"), sub_ids), charge_date__range=(first, last)
    ):
        one_offs[c.subscription_id].append(
            OneOff(c.description, c.amount, c.vat_rate, c.charge_date)
        )
    changes: dict[int, list[PlanChange]] = defaultdict(list)
    for change in (
        PlanChange.objects.filter(AnyOf(F("subscription_id"), sub_ids))
        .exclude(status=PlanChangeStatus.UNDONE)
        .select_related("from_plan", "to_plan")
        .order_by("effective_date", "id")
    ):
        changes[change.subscription_id].append(change)
    return discounts, one_offs, changes


def subscription_rate_month(
    *,
    subscription: Subscription,
    period: date,
    extra_change: PlanChange | None = None,
    usage: UsageTotals | None = None,
) -> list[LineDraft]:
    """The lines the bill run gives ``subscription`` for the month ``period`` falls in, from
    what is stored now; with ``extra_change`` counted among its plan changes, and ``usage``
    instead of the stored usage records when given.

    ``subscription`` stands for the terms as they are (or were) with every counted change:
    pass a copy carrying the change's plan and price to rate a month as it was before the
    change was undone.
    """
    first, last = month_bounds(period)
    discounts, one_offs, changes = _rating_inputs([subscription.id], first, last)
    sub_changes = changes[subscription.id]
    if extra_change is not None:
        sub_changes = sorted(
            [*sub_changes, extra_change], key=lambda c: (c.effective_date, c.id or 0)
        )
    zones = _zones()
    terms = _terms(
        subscription,
        discounts[subscription.id],
        one_offs[subscription.id],
        sub_changes,
        first,
        last,
    )
    if usage is None:
        usage = _usage_totals([subscription.id], first, last, zones).get(
            subscription.id, UsageTotals()
        )
    return rate_subscription(terms, period, usage, zones.prices)


def _deliver_missing(run: BillRun) -> None:
    """Enqueue delivery of the run's invoices that have no delivery yet (a lost task, a
    broker that was down at commit). Paper customers get theirs by post."""
    from invoices.models import PageEvent, PageEventKind
    from invoices.tasks import invoice_deliver_task

    delivered = PageEvent.objects.filter(invoice=OuterRef("pk"), kind=PageEventKind.DELIVERED)
    missing = list(
        Invoice.objects.filter(bill_run=run)
        .exclude(customer__delivery_method=DeliveryMethod.PAPER)
        .filter(~Exists(delivered))
        .values_list("id", flat=True)
    )
    size = settings.BILL_RUN_CHUNK_SIZE
    for start in range(0, len(missing), size):
        batch = missing[start : start + size]
        transaction.on_commit(partial(invoice_deliver_task.delay, invoice_ids=batch), robust=True)


def _after_issue(invoice_ids: list[int], pdf_ids: list[int]) -> None:
    from invoices.tasks import invoice_deliver_task, invoice_render_pdfs_task

    invoice_deliver_task.delay(invoice_ids=invoice_ids)
    if pdf_ids and settings.INVOICE_PDF_PRERENDER:
        invoice_render_pdfs_task.delay(invoice_ids=pdf_ids)


def invoice_lines_build(
    invoice_id: int,
    lines: list[LineDraft],
    rounding: Decimal,
    texts: list[dict[str, dict[str, str]]] | None = None,
) -> list[dict[str, Any]]:
    """Line rows of a document, with the öresavrundning as a last line of its own.

    The words of each line are rendered from its draft, unless ``texts`` gives them.
    """
    rows = [
        {
            "invoice_id": invoice_id,
            "position": position,
            "kind": draft.kind,
            "subscription_id": draft.subscription_id,
            "texts": texts[position - 1] if texts else line_texts(draft),
            "quantity": draft.quantity,
            "unit": draft.unit,
            "unit_price": draft.unit_price.quantize(UNIT_PRICE_PLACES),
            "amount": draft.amount,
            "vat_rate": draft.vat_rate,
            "vat_amount": draft.vat_amount,
            "service_from": draft.service_from,
            "service_to": draft.service_to,
        }
        for position, draft in enumerate(lines, start=1)
    ]
    if rounding:
        rows.append(
            {
                "invoice_id": invoice_id,
                "position": len(rows) + 1,
                "kind": "rounding",
                "texts": _rounding_texts(),
                "amount": rounding,
                "vat_rate": ZERO,
                "vat_amount": ZERO,
            }
        )
    return rows


@cache
def _rounding_texts() -> dict[str, dict[str, str]]:
    return line_texts(
        LineDraft(
            kind="rounding",
            title=Text("Rounding to whole kronor"),
            detail=Text("The amount to pay is rounded to whole kronor (öresavrundning)."),
            amount=ZERO,
            vat_rate=ZERO,
        )
    )


def _plan_terms(plan: Plan) -> PlanTerms:
    return PlanTerms(
        code=plan.code,
        name=plan.name,
        monthly_fee=plan.monthly_fee,
        data_included_gb=plan.data_included_gb,
        voice_included_minutes=plan.voice_included_minutes,
        sms_included=plan.sms_included,
        data_overage_per_gb=plan.data_overage_per_gb,
        voice_overage_per_minute=plan.voice_overage_per_minute,
        sms_overage_each=plan.sms_overage_each,
        vat_rate=plan.vat_rate,
    )


def _plan_on(sub: Subscription, changes: list[PlanChange], day: date) -> tuple[Plan, Decimal]:
    """The plan and price in effect on ``day``.

    The subscription's own plan and price are the baseline (staff may have edited them since
    any change); a change applied but taking effect after ``day`` means the day still had
    what the change replaced, and a change scheduled for ``day`` or earlier but not yet
    applied already holds. ``changes`` excludes undone ones, in effective-date order.
    """
    later_applied = [
        c for c in changes if c.status == PlanChangeStatus.APPLIED and c.effective_date > day
    ]
    if later_applied:
        return later_applied[0].from_plan, later_applied[0].from_price
    due_scheduled = [
        c for c in changes if c.status == PlanChangeStatus.SCHEDULED and c.effective_date <= day
    ]
    if due_scheduled:
        return due_scheduled[-1].to_plan, due_scheduled[-1].to_price
    return sub.plan, sub.agreed_monthly_price


def _terms(
    sub: Subscription,
    discounts: list[DiscountTerms],
    one_offs: list[OneOff],
    changes: list[PlanChange],
    first: date,
    last: date,
) -> SubscriptionTerms:
    plan, price = _plan_on(sub, changes, first)
    return SubscriptionTerms(
        id=sub.id,
        identifier=sub.identifier,
        plan=_plan_terms(plan),
        agreed_monthly_price=price,
        start_date=sub.start_date,
        end_date=sub.end_date,
        discounts=tuple(discounts),
        one_offs=tuple(one_offs),
        later_plans=tuple(
            PlanPeriod(change.effective_date, _plan_terms(change.to_plan), change.to_price)
            for change in changes
            if first < change.effective_date <= last
        ),
    )


def _page_language(language: str) -> str:
    codes = {code for code, _ in settings.LANGUAGES}
    return language if language in codes else "en"


def buyer_snapshot(customer: Customer) -> dict[str, str]:
    return {
        "name": customer.name,
        "customer_number": customer.customer_number,
        "address": customer.address,
        "postal_code": customer.postal_code,
        "city": customer.city,
        "email": customer.email,
        "phone": customer.phone,
    }


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _subscription_snapshot(
    sub: Subscription, usage: UsageTotals, plan: Plan, price: Decimal, included: PlanTerms
) -> dict[str, object]:
    """What the page shows about one subscription (``snapshot_usage`` reads its usage back):
    the plan and price it had at the end of
    the billed month, what the month included (each plan's share of its allowance when the
    plan changed within it), and the month's usage."""
    return {
        "id": sub.id,
        "identifier": sub.identifier,
        "label": sub.label,
        "plan_code": plan.code,
        "plan_name": plan.name,
        "plan_kind": plan.kind,
        "agreed_price": str(price),
        "list_price": str(plan.monthly_fee),
        "start_date": sub.start_date.isoformat(),
        "end_date": _opt(sub.end_date and sub.end_date.isoformat()),
        "binding_end": _opt(sub.binding_end and sub.binding_end.isoformat()),
        "notice_months": sub.notice_period_months,
        # the plan changed within the month: what is included is each plan's share
        "included_shared": included != _plan_terms(plan),
        "included": {
            "data_gb": _opt(included.data_included_gb),
            "voice_minutes": included.voice_included_minutes,
            "sms": included.sms_included,
        },
        "used": {
            "data_mb": str(usage.data_mb),
            "voice_seconds": str(usage.voice_seconds),
            "sms": str(usage.sms),
            "eu_roaming_data_mb": str(usage.eu_roaming_data_mb),
            "abroad": {z: {k: str(v) for k, v in q.items()} for z, q in usage.abroad.items()},
        },
    }


def snapshot_usage(snapshot: dict[str, Any]) -> UsageTotals:
    """The month's usage as an invoice recorded it for one subscription."""
    used = snapshot.get("used") or {}
    return UsageTotals(
        data_mb=Decimal(used.get("data_mb") or 0),
        voice_seconds=Decimal(used.get("voice_seconds") or 0),
        sms=Decimal(used.get("sms") or 0),
        eu_roaming_data_mb=Decimal(used.get("eu_roaming_data_mb") or 0),
        abroad={
            zone: {kind: Decimal(quantity) for kind, quantity in kinds.items()}
            for zone, kinds in (used.get("abroad") or {}).items()
        },
    )
