"""Finance staff's dunning: the policy and its steps (checked against the legal caps), the
reference rates, the cases with their confirmed handover to collection and the collection
export (CSV), and what each policy step sent and earned."""

import csv
from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.admin import RecordAdmin
from core.errors import DomainError
from core.money import format_amount
from dunning.models import (
    Dispute,
    DunningAction,
    DunningCase,
    DunningPolicy,
    DunningStep,
    Instalment,
    InstalmentPlan,
    Postponement,
    ReferenceRate,
    StepKind,
)
from dunning.selectors import (
    ClaimRow,
    claim_row,
    collection_claims,
    invoice_dunning_hold,
    step_figures,
)
from invoices.texts import format_value


def kronor(amount: Decimal) -> str:
    """'1 234,50 kr' for the Swedish admin."""
    return f"{format_amount(amount, 'sv')}\u00a0kr"


# --- reference rates ---------------------------------------------------------------------------


@admin.register(ReferenceRate)
class ReferenceRateAdmin(admin.ModelAdmin):
    """Riksbanken sets the reference rate each 1 January and 1 July; a case keeps the rate in
    force on its due date."""

    list_display = ["valid_from", "rate", "interest", "source"]

    @admin.display(description=_("late-payment interest"))
    def interest(self, rate: ReferenceRate) -> str:
        total = rate.rate + settings.DUNNING_INTEREST_MARGIN
        return f"{format_amount(total, 'sv')}\u00a0%"


# --- the policy and its steps ----------------------------------------------------------------


class DunningStepForm(forms.ModelForm):
    class Meta:
        model = DunningStep
        fields = ["position", "kind", "days_after_due", "charge_fee", "fee", "due_date_shift_days"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        fee: Decimal | None = cleaned.get("fee")
        cap = settings.DUNNING_REMINDER_FEE_CAP
        if fee is not None and fee > cap:
            self.add_error(
                "fee",
                _(
                    "At most %(cap)s: the law caps a reminder fee (lag 1981:739 om ersättning "
                    "för inkassokostnader)."
                )
                % {"cap": kronor(cap)},
            )
        if fee is not None and fee < 0:
            self.add_error("fee", _("A fee cannot be negative."))
        if cleaned.get("charge_fee") and not fee:
            self.add_error("fee", _("Give the fee, or untick “reminder fee”."))
        if fee and not cleaned.get("charge_fee"):
            self.add_error(
                "charge_fee", _("Tick “reminder fee” to charge the fee, or set it to 0.")
            )
        if cleaned.get("kind") == StepKind.FINAL_NOTICE and cleaned.get("charge_fee"):
            self.add_error(
                "charge_fee",
                _("The final notice carries no fee: a reminder fee is charged once per claim."),
            )
        return cleaned


class DunningStepFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """The steps as a whole: distinct positions, reminders first and at most one final
    notice, last; at most one step with a fee (one per claim)."""

    def clean(self) -> None:
        super().clean()
        steps = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        positions = [step.get("position") for step in steps]
        if len(set(positions)) != len(positions):
            raise ValidationError(_("Two steps have the same order number."))
        steps.sort(key=lambda step: step.get("position") or 0)
        finals = [step for step in steps if step.get("kind") == StepKind.FINAL_NOTICE]
        if len(finals) > 1:
            raise ValidationError(_("A policy has at most one final notice."))
        if finals and steps[-1].get("kind") != StepKind.FINAL_NOTICE:
            raise ValidationError(_("The final notice comes last: reminders come before it."))
        if sum(1 for step in steps if step.get("charge_fee")) > 1:
            raise ValidationError(
                _("Only one step may carry a reminder fee: the law allows one per claim.")
            )


class DunningStepInline(admin.TabularInline):
    model = DunningStep
    form = DunningStepForm
    formset = DunningStepFormSet
    extra = 0
    ordering = ["position"]


# The customer's ways out on the policy (dunning.terms reads them).
WAYS_OUT_FIELDS = (
    "postponement_enabled",
    "postponement_max_days",
    "instalments_enabled",
    "instalment_min_amount",
    "instalment_max_parts",
    "instalment_fee",
    "instalment_first_due_days",
    "instalment_grace_days",
)


class DunningPolicyForm(forms.ModelForm):
    """The policy, its ways out checked against the law: a plan's fee at most
    ``DUNNING_INSTALMENT_FEE_CAP``, 2 to 6 parts."""

    class Meta:
        model = DunningPolicy
        fields = [
            "name",
            "is_active",
            "friendly_notice_enabled",
            "friendly_notice_days_before",
            "charge_interest",
            "collection_after_days",
            *WAYS_OUT_FIELDS,
        ]

    def clean_instalment_fee(self) -> Decimal:
        fee: Decimal = self.cleaned_data["instalment_fee"]
        cap = settings.DUNNING_INSTALMENT_FEE_CAP
        if fee > cap:
            raise ValidationError(
                _("At most %(cap)s: the law caps an instalment plan's fee (förordning 1981:1057).")
                % {"cap": kronor(cap)}
            )
        if fee < 0:
            raise ValidationError(_("A fee cannot be negative."))
        return fee

    def clean_instalment_max_parts(self) -> int:
        parts: int = self.cleaned_data["instalment_max_parts"]
        if not 2 <= parts <= 6:
            raise ValidationError(_("A plan has 2 to 6 parts."))
        return parts


@admin.register(DunningPolicy)
class DunningPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "is_active",
        "friendly_notice_enabled",
        "friendly_notice_days_before",
        "steps_summary",
        "charge_interest",
        "collection_after_days",
    ]
    form = DunningPolicyForm
    inlines = [DunningStepInline]
    fieldsets = [
        (None, {"fields": ["name", "is_active"]}),
        (
            _("Before the due date"),
            {"fields": ["friendly_notice_enabled", "friendly_notice_days_before"]},
        ),
        (
            _("After the due date"),
            {
                "fields": ["charge_interest", "collection_after_days"],
                "description": _(
                    "Reminder fee at most %(fee)s, once per claim and only where the customer "
                    "agreed to it before the debt arose; late-payment interest is the reference "
                    "rate + %(margin)s percentage points; collection is handed over by hand, "
                    "from the day below at the earliest."
                )
                % {
                    "fee": kronor(settings.DUNNING_REMINDER_FEE_CAP),
                    "margin": format_value(settings.DUNNING_INTEREST_MARGIN, "sv"),
                },
            },
        ),
        (
            _("The customer's ways out"),
            {
                "fields": WAYS_OUT_FIELDS,
                "description": _(
                    "Offered on the invoice page until the claim is handed to collection: one "
                    "postponement per invoice, and a plan of 2 to 6 monthly parts with a fee "
                    "of at most %(fee)s. Agents may grant them from the chat also where the "
                    "page does not offer them, within the same limits."
                )
                % {"fee": kronor(settings.DUNNING_INSTALMENT_FEE_CAP)},
            },
        ),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[DunningPolicy]:
        return super().get_queryset(request).prefetch_related("steps")

    @admin.display(description=_("steps"))
    def steps_summary(self, policy: DunningPolicy) -> str:
        parts = []
        for step in sorted(policy.steps.all(), key=lambda s: s.position):
            label = str(StepKind(step.kind).label)
            fee = f", {kronor(step.fee)}" if step.charge_fee else ""
            parts.append(f"{label} +{step.days_after_due}{fee}")
        return " → ".join(parts)


# --- cases: the handover and the export ------------------------------------------------------


# What a step did, as the case's inline and the list of actions show it.
ACTION_COLUMNS = (
    "kind",
    "key",
    "amount_asked",
    "fee",
    "interest",
    "due_date",
    "channels",
    "sent_at",
)


class DunningActionInline(admin.TabularInline):
    model = DunningAction
    fk_name = "case"
    extra = 0
    can_delete = False
    fields = readonly_fields = ("acted_on", *ACTION_COLUMNS, "acted_by")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(DunningCase)
class DunningCaseAdmin(admin.ModelAdmin):
    """Read-only cases; the one thing done here is the confirmed handover to collection
    (needs the permission to change cases)."""

    list_display = [
        "invoice",
        "customer",
        "stage",
        "original_due_date",
        "due_date",
        "steps_done",
        "interest_rate",
        "next_action_on",
        "handed_over_at",
    ]
    list_filter = ["stage", "policy"]
    search_fields = ["invoice__number", "invoice__ocr", "invoice__customer__name"]
    list_select_related = ["invoice__series", "invoice__customer"]
    inlines = [DunningActionInline]
    actions = ["hand_to_collection"]
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*(field.name for field in self.model._meta.fields), "hold"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_hand_over_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("dunning.change_dunningcase")

    @admin.display(description=_("customer"))
    def customer(self, case: DunningCase) -> str:
        return case.invoice.customer.name

    @admin.display(description=_("what holds it"))
    def hold(self, case: DunningCase) -> str:
        hold = invoice_dunning_hold(invoice_id=case.invoice_id, today=timezone.localdate())
        parts = []
        if hold.postponed_to:
            parts.append(str(_("postponed to %(day)s") % {"day": hold.postponed_to}))
        if hold.plan_active:
            parts.append(str(_("an instalment plan runs")))
        if hold.disputed:
            parts.append(str(_("%(amount)s disputed") % {"amount": kronor(hold.disputed)}))
        return "; ".join(parts) or "–"

    def get_urls(self) -> list[URLPattern]:
        csv_url = path(
            "collection.csv",
            self.admin_site.admin_view(self.collection_csv_view),
            name="dunning_dunningcase_collection_csv",
        )
        return [csv_url, *super().get_urls()]

    @admin.action(description=_("Hand to debt collection…"), permissions=["hand_over"])
    def hand_to_collection(
        self, request: HttpRequest, queryset: QuerySet[DunningCase]
    ) -> HttpResponse | None:
        """First a page with each claim, what is owed and whether it may go; handed over only
        when confirmed there."""
        from dunning.services.collection import case_hand_to_collection, case_handover_preview

        today = timezone.localdate()
        if request.POST.get("confirmed") == "yes" and isinstance(request.user, User):
            for case in queryset:
                try:
                    case_hand_to_collection(case_id=case.id, by=request.user, today=today)
                except DomainError as exc:
                    self.message_user(request, f"{case.invoice}: {exc.message}", messages.WARNING)
                else:
                    done = _("%(invoice)s handed to debt collection.")
                    self.message_user(request, done % {"invoice": case.invoice})
            return None
        previews = [case_handover_preview(case_id=case.id, today=today) for case in queryset]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Hand to debt collection"),
            "previews": [
                {
                    "case": preview.case,
                    "capital": kronor(preview.claim.capital),
                    "fees": kronor(preview.claim.fees),
                    "interest": kronor(preview.claim.interest),
                    "total": kronor(preview.claim.open),
                    "ready_on": preview.ready_on,
                    "refusal": preview.refusal.message if preview.refusal else "",
                }
                for preview in previews
            ],
            "allowed": [p.case.id for p in previews if p.allowed],
            "action": "hand_to_collection",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/dunning/dunningcase/handover.html", context)

    def collection_csv_view(self, request: HttpRequest) -> HttpResponse:
        """The claims handed to collection, one row each, to read in a spreadsheet or send
        the collection agency: UTF-8, comma-separated, amounts in kronor with a point, dates
        ISO 8601, texts that a spreadsheet would run as formulas (and phone numbers, which
        begin with "+") after an apostrophe. The same rows, unescaped, come from
        ``/api/v1/dunning/collection-claims/`` for integrations."""
        if not request.user.has_perm("dunning.view_dunningcase"):
            raise PermissionDenied
        name = f"collection-claims-{timezone.localdate().isoformat()}.csv"
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        writer = csv.writer(response)
        writer.writerow(CSV_COLUMNS)
        for case in collection_claims().iterator(chunk_size=500):
            row = claim_row(case)
            writer.writerow([_csv(getattr(row, column)) for column in CSV_COLUMNS])
        return response


CSV_COLUMNS = list(ClaimRow.__dataclass_fields__)


def _csv(value: object) -> str:
    """A cell: dates ISO 8601, amounts as they are; a text that a spreadsheet would run as a
    formula (a name beginning with "=", "+", "-" or "@") starts with an apostrophe."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return f"'{value}"
    return str(value)


# --- what each step sent and earned ------------------------------------------------------------


@admin.register(DunningAction)
class DunningActionAdmin(RecordAdmin):
    list_display = ["acted_on", "invoice", *ACTION_COLUMNS]
    list_filter = ["kind", "acted_on"]
    search_fields = ["invoice__number", "invoice__customer__name"]
    list_select_related = ["invoice__series"]
    date_hierarchy = "acted_on"
    show_full_result_count = False

    def get_urls(self) -> list[URLPattern]:
        report = path(
            "report/",
            self.admin_site.admin_view(self.report_view),
            name="dunning_dunningaction_report",
        )
        return [report, *super().get_urls()]

    def report_view(self, request: HttpRequest) -> HttpResponse:
        """Per month and policy step: how many it acted on and sent, and what it earned."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        labels = {
            "friendly_notice": _("Friendly notice"),
            "final_notice": _("Final notice"),
            "collection": _("Handed to collection"),
        }
        rows = []
        for figures in step_figures():
            number = figures.key.partition(":")[2]
            label = labels.get(figures.key) or _("Reminder %(number)s") % {"number": number}
            rows.append(
                {
                    "month": figures.month,
                    "step": label,
                    "actions": figures.actions,
                    "sent": figures.sent,
                    "fees": kronor(figures.fees),
                    "interest": kronor(figures.interest),
                    "earned": kronor(figures.earned),
                    "paid_since": figures.paid_since,
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("What each policy step sent and earned"),
            "rows": rows,
        }
        return TemplateResponse(request, "admin/dunning/dunningaction/report.html", context)


# --- the customer's ways out (granted on the invoice page or in the chat) -----------------


@admin.register(Postponement)
class PostponementAdmin(RecordAdmin):
    list_display = ["invoice", "previous_due_date", "new_due_date", "granted_by", "granted_at"]
    list_filter = ["granted_by"]
    search_fields = ["invoice__number", "invoice__customer__name"]
    list_select_related = ["invoice__series"]


class InstalmentInline(admin.TabularInline):
    model = Instalment
    extra = 0
    can_delete = False
    fields = readonly_fields = ("number", "due_date", "amount")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(InstalmentPlan)
class InstalmentPlanAdmin(RecordAdmin):
    list_display = ["invoice", "status", "parts", "amount", "fee", "granted_by", "granted_at"]
    list_filter = ["status", "granted_by"]
    search_fields = ["invoice__number", "invoice__customer__name"]
    list_select_related = ["invoice__series"]
    inlines = [InstalmentInline]


@admin.register(Dispute)
class DisputeAdmin(RecordAdmin):
    """Disputes are settled by support in the chat (upheld with a credit note, or rejected)."""

    list_display = ["invoice", "line", "amount", "status", "outcome", "opened_at"]
    list_filter = ["status", "outcome"]
    search_fields = ["invoice__number", "invoice__customer__name", "reason"]
    list_select_related = ["invoice__series", "line"]
