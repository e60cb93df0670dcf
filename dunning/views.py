"""The customer's ways out under the invoice link (``/i/<token>/...``, config/urls.py):
postpone the due date, pay in parts, dispute a line. Each is a page that says the terms, a
confirmation posted with the key the page was rendered with, and a receipt.

Every page resolves its token like the invoice page (``invoices.views.with_invoice``): the
same friendly 404 for an unknown, expired or revoked link, a line or plan of another invoice,
or a credit note; the same private headers. Every POST is CSRF-protected and safe to repeat
(``idempotency_key``). A refusal of the rules (``DomainError``) is said on the page in the
customer's language (``dunning.page.error_text``), never as a server error. Links are
relative (no token in any page) and carry the page language.
"""

from decimal import Decimal
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_http_methods, require_safe

from chat.services import chat_dispute_open_customer
from core.errors import DomainError
from dunning.forms import DisputeForm, InstalmentsForm, PostponeForm
from dunning.models import Dispute, DisputeStatus, GrantedBy, InstalmentPlan, Postponement
from dunning.page import SECTION_ID, error_text, fee_text, part_rows, plan_paid, refusal_text
from dunning.selectors import WaysOut, invoice_debt, plan_parts, ways_out_read
from dunning.services.ways_out import (
    REASON_MAX,
    instalment_plan_grant,
    instalment_plan_quote,
    line_left_to_credit,
    postponement_grant,
)
from invoices.models import Invoice, InvoiceLine
from invoices.page import long_date, money, today_in_stockholm
from invoices.views import invoice_url, link_page, with_invoice
from offers.forms import new_idempotency_key


def _ways(invoice: Invoice) -> WaysOut:
    if invoice.is_credit_note:
        raise Http404
    debt = invoice_debt(invoice_id=invoice.id)
    if debt is None:
        raise Http404
    return ways_out_read(debt=debt, today=today_in_stockholm(), by_agent=False)


def _page(
    request: HttpRequest,
    invoice: Invoice,
    language: str,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> HttpResponse:
    context = {"number": invoice.display_number, **context}
    return link_page(
        request, invoice, language, template, context, back_to=SECTION_ID, status=status
    )


def _invalid(
    form: PostponeForm | InstalmentsForm | DisputeForm, context: dict[str, Any], **kept: str
) -> dict[str, Any]:
    """``context`` with what is wrong with the form and what the customer typed (``kept``),
    and the key it was posted with, so the retry is the same request."""
    error = " ".join(str(error) for errors in form.errors.values() for error in errors)
    context.update(error=error, **kept)
    if "idempotency_key" not in form.errors:
        context["idempotency_key"] = form.cleaned_data["idempotency_key"]
    return context


def _scoped(invoice: Invoice, key: str) -> str:
    """A page's key only ever names a grant on this invoice, whatever a client posts."""
    return f"page:{invoice.id}:{key}"


# --- postpone -------------------------------------------------------------------------------


@with_invoice
@require_http_methods(["GET", "HEAD", "POST"])
def postpone(request: HttpRequest, invoice: Invoice, language: str) -> HttpResponseBase:
    """Choose a new due date up to the last day allowed, read the terms, confirm."""
    ways = _ways(invoice)
    receipt = invoice_url(request, language, "dunning:postponement")
    if ways.postponement is not None and request.method != "POST":
        return HttpResponseRedirect(receipt)
    window = ways.window
    context: dict[str, Any] = {
        "amount": money(ways.debt.open, language),
        "current": long_date(ways.debt.current_due_date),
        "refusal": refusal_text(ways.postpone_refusal, ways, language)
        if ways.postpone_refusal
        else "",
        "window": {
            "earliest": window.earliest.isoformat(),
            "latest": window.latest.isoformat(),
            "latest_text": long_date(window.latest),
            "earliest_text": long_date(window.earliest),
        }
        if window
        else None,
        "value": window.latest.isoformat() if window else "",
        "idempotency_key": new_idempotency_key(),
        "error": "",
    }
    if request.method != "POST":
        return _page(request, invoice, language, "dunning/postpone.html", context)
    form = PostponeForm(request.POST)
    if not form.is_valid():
        _invalid(form, context, value=request.POST.get("new_due_date", "")[:10])
        return _page(request, invoice, language, "dunning/postpone.html", context, status=400)
    try:
        postponement_grant(
            invoice_id=invoice.id,
            new_due_date=form.due_date(),
            granted_by=GrantedBy.CUSTOMER,
            idempotency_key=_scoped(invoice, form.cleaned_data["idempotency_key"]),
        )
    except DomainError as refused:
        context.update(
            error=refusal_text(refused, ways, language),
            value=form.due_date().isoformat(),
            idempotency_key=form.cleaned_data["idempotency_key"],
        )
        return _page(request, invoice, language, "dunning/postpone.html", context, status=409)
    return HttpResponseRedirect(receipt)


@with_invoice
@require_safe
def postponement(request: HttpRequest, invoice: Invoice, language: str) -> HttpResponseBase:
    """The postponement's receipt: the new due date and its terms."""
    found = Postponement.objects.filter(invoice=invoice).first()
    if found is None or invoice.is_credit_note:
        raise Http404
    debt = invoice_debt(invoice_id=invoice.id)
    return _page(
        request,
        invoice,
        language,
        "dunning/postponement.html",
        {
            "date": long_date(found.new_due_date),
            "before": long_date(found.previous_due_date),
            "amount": money(debt.open, language) if debt and debt.open > 0 else "",
            "by_agent": found.granted_by == GrantedBy.AGENT,
            "receipt_sent": found.receipt_sent_at is not None,
            "ocr": invoice.ocr,
            "bankgiro": invoice.seller.get("bankgiro", ""),
        },
    )


# --- pay in parts -----------------------------------------------------------------------------


def _parts_asked(request: HttpRequest, choices: list[int]) -> int:
    """The number of parts the page is about: the form's, else ``?parts=``, else 3 (or the
    nearest the policy allows)."""
    asked = request.POST.get("parts") if request.method == "POST" else request.GET.get("parts")
    try:
        parts = int(asked or 3)
    except ValueError:
        parts = 3
    if parts in choices:
        return parts
    return min(choices, key=lambda choice: abs(choice - 3)) if choices else 3


@with_invoice
@require_http_methods(["GET", "HEAD", "POST"])
def instalments(request: HttpRequest, invoice: Invoice, language: str) -> HttpResponseBase:
    """Choose 2–6 parts (links, so it works without script), see the parts, their days and
    the fee, and confirm."""
    ways = _ways(invoice)
    if ways.plan_active and ways.plan is not None and request.method != "POST":
        return HttpResponseRedirect(
            invoice_url(request, language, "dunning:instalment_plan", plan_id=ways.plan.id)
        )
    choices = ways.parts_choices
    parts = _parts_asked(request, choices)
    context: dict[str, Any] = {
        "refusal": refusal_text(ways.plan_refusal, ways, language) if ways.plan_refusal else "",
        "choices": [
            {"parts": n, "url": f"?lang={language}&parts={n}#parts", "current": n == parts}
            for n in choices
        ],
        "parts": parts,
        "quote": None,
        "idempotency_key": new_idempotency_key(),
        "error": "",
    }
    if ways.plan_refusal is None:
        quote = instalment_plan_quote(
            debt=ways.debt, policy=ways.policy, parts=parts, today=ways.today, by_agent=False
        )
        context["quote"] = {
            "rows": part_rows(quote.parts, paid=Decimal(0), today=ways.today, language=language),
            "total": money(quote.total, language),
            "total_value": f"{quote.total:.2f}",
            "open": money(quote.open, language),
            "fee": money(quote.fee, language) if quote.fee else "",
            "fee_text": fee_text(quote.fee, language),
            "grace_days": ways.policy.instalment_grace_days if ways.policy else 0,
            "disputed": money(ways.debt.disputed, language) if ways.debt.disputed else "",
        }
    if request.method != "POST":
        return _page(request, invoice, language, "dunning/instalments.html", context)
    form = InstalmentsForm(request.POST)
    if not form.is_valid():
        _invalid(form, context)
        return _page(request, invoice, language, "dunning/instalments.html", context, status=400)
    try:
        granted = instalment_plan_grant(
            invoice_id=invoice.id,
            parts=form.cleaned_data["parts"],
            granted_by=GrantedBy.CUSTOMER,
            expected_total=form.cleaned_data["total"],
            idempotency_key=_scoped(invoice, form.cleaned_data["idempotency_key"]),
        )
    except DomainError as refused:
        context["error"] = refusal_text(refused, ways, language)
        return _page(request, invoice, language, "dunning/instalments.html", context, status=409)
    return HttpResponseRedirect(
        invoice_url(request, language, "dunning:instalment_plan", plan_id=granted.row.id)
    )


@with_invoice
@require_safe
def instalment_plan(
    request: HttpRequest, invoice: Invoice, language: str, plan_id: int
) -> HttpResponseBase:
    """A plan's receipt: its parts with what is paid, the fee and the terms."""
    plan = (
        InstalmentPlan.objects.filter(id=plan_id, invoice=invoice)
        .prefetch_related("instalments")
        .first()
    )
    if plan is None:
        raise Http404
    ways = _ways(invoice)
    return _page(
        request,
        invoice,
        language,
        "dunning/instalment_plan.html",
        {
            "plan": plan,
            "rows": part_rows(
                plan_parts(plan), paid=plan_paid(plan, ways), today=ways.today, language=language
            ),
            "total": money(plan.amount, language),
            "fee_text": fee_text(plan.fee, language),
            "ended": long_date(plan.ended_at.date()) if plan.ended_at else "",
            "by_agent": plan.granted_by == GrantedBy.AGENT,
            "receipt_sent": plan.receipt_sent_at is not None,
            "grace_days": ways.policy.instalment_grace_days if ways.policy else 0,
            "ocr": invoice.ocr,
            "bankgiro": invoice.seller.get("bankgiro", ""),
        },
    )


# --- "I don't recognise this" ----------------------------------------------------------------


@with_invoice
@require_http_methods(["GET", "HEAD", "POST"])
def dispute(
    request: HttpRequest, invoice: Invoice, language: str, line_id: int
) -> HttpResponseBase:
    """Say in a few words what is wrong with a line, read what a dispute does, confirm: the
    chat opens with the line quoted, and no reminder asks for its amount meanwhile."""
    ways = _ways(invoice)
    line = (
        InvoiceLine.objects.filter(id=line_id, invoice=invoice, amount__gt=0)
        .exclude(kind="rounding")
        .first()
    )
    if line is None:
        raise Http404
    standing = Dispute.objects.filter(line=line, status=DisputeStatus.OPEN).first()
    chat_url = invoice_url(request, language) + "#chat"
    text = line.text(language)
    left = line_left_to_credit(line)
    context: dict[str, Any] = {
        "line": {
            "title": text.get("title", ""),
            "detail": text.get("detail", ""),
            "amount": money(left, language),
        },
        "standing": {"since": long_date(standing.opened_at.date()), "reason": standing.reason}
        if standing
        else None,
        "chat_url": chat_url,
        "refusal": "",
        "due_date": long_date(ways.debt.current_due_date),
        "rest": money(ways.debt.asked - left, language) if ways.debt.asked > left else "",
        "max_chars": REASON_MAX,
        "reason": "",
        "idempotency_key": new_idempotency_key(),
        "error": "",
    }
    if ways.debt.handed_over:
        context["refusal"] = error_text(DomainError(code="handed_to_collection"))
    elif ways.debt.open <= 0:
        context["refusal"] = error_text(DomainError(code="nothing_to_pay"))
    elif left <= 0:
        context["refusal"] = error_text(DomainError(code="line_already_credited"))
    if request.method == "POST" and standing is not None:
        return HttpResponseRedirect(chat_url)  # disputed already (a second click): the chat
    if request.method != "POST":
        return _page(request, invoice, language, "dunning/dispute.html", context)
    form = DisputeForm(request.POST)
    if not form.is_valid():
        _invalid(form, context, reason=request.POST.get("reason", "")[:REASON_MAX])
        return _page(request, invoice, language, "dunning/dispute.html", context, status=400)
    try:
        chat_dispute_open_customer(
            invoice_id=invoice.id,
            line_id=line.id,
            reason=form.cleaned_data["reason"],
            idempotency_key=_scoped(invoice, form.cleaned_data["idempotency_key"]),
        )
    except DomainError as refused:
        context.update(error=error_text(refused), reason=form.cleaned_data["reason"])
        context["idempotency_key"] = form.cleaned_data["idempotency_key"]
        return _page(request, invoice, language, "dunning/dispute.html", context, status=409)
    return HttpResponseRedirect(chat_url)
