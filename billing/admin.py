from datetime import date
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path

from billing.models import (
    BillRun,
    Consent,
    Customer,
    Discount,
    OneOffCharge,
    Plan,
    PlanChange,
    PlanPrice,
    RoamingZone,
    Subscription,
    SubscriptionEvent,
    UsageRecord,
)
from billing.services import subscription_save, subscription_terms
from core.errors import DomainError
from invoices.services.bill_run import bill_run_validate
from invoices.services.corrections import plan_change_undo_and_correct


class ConsentInline(admin.TabularInline):
    model = Consent
    extra = 0


class SubscriptionInline(admin.TabularInline):
    """Read-only here: subscriptions change on their own page, which records the history."""

    model = Subscription
    extra = 0
    can_delete = False
    fields = ["identifier", "plan", "agreed_monthly_price", "start_date", "binding_end", "status"]
    show_change_link = True

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return self.fields

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = [
        "customer_number",
        "name",
        "email",
        "phone",
        "language",
        "delivery_method",
        "billing_group",
    ]
    list_filter = ["language", "delivery_method", "billing_group"]
    search_fields = ["customer_number", "name", "email", "phone"]
    inlines = [SubscriptionInline, ConsentInline]


class PlanPriceInline(admin.TabularInline):
    model = PlanPrice
    extra = 0


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "code",
        "kind",
        "monthly_fee",
        "data_included_gb",
        "voice_included_minutes",
        "available_for_new_customers",
    ]
    list_filter = ["kind", "available_for_new_customers"]
    search_fields = ["name", "code"]
    inlines = [PlanPriceInline]


@admin.register(RoamingZone)
class RoamingZoneAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "data_per_mb", "voice_per_minute", "sms_each"]


class DiscountInline(admin.TabularInline):
    model = Discount
    extra = 0


class OneOffInline(admin.TabularInline):
    model = OneOffCharge
    extra = 0


class EventInline(admin.TabularInline):
    model = SubscriptionEvent
    extra = 0
    readonly_fields = ["kind", "occurred_at", "via", "details"]
    can_delete = False


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "identifier",
        "customer",
        "plan",
        "agreed_monthly_price",
        "start_date",
        "binding_end",
        "status",
    ]
    list_filter = ["status", "plan"]
    search_fields = ["identifier", "customer__name", "customer__customer_number"]
    list_select_related = ["customer", "plan"]
    raw_id_fields = ["customer"]
    inlines = [DiscountInline, OneOffInline, EventInline]

    def save_model(self, request, obj, form, change) -> None:  # type: ignore[no-untyped-def]
        before = None
        if change:
            before = subscription_terms(Subscription.objects.get(pk=obj.pk))
        subscription_save(subscription=obj, via=f"admin:{request.user}", before=before)


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = ["source_id", "subscription", "kind", "quantity", "occurred_at", "country"]
    list_filter = ["kind"]
    search_fields = ["source_id", "subscription__identifier"]
    raw_id_fields = ["subscription"]
    list_select_related = ["subscription__plan"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


class BillRunForm(forms.ModelForm):
    class Meta:
        model = BillRun
        fields = ["period", "billing_group", "invoice_date"]
        help_texts = {"period": "Any day of the month to bill; the run covers the whole month."}

    def clean_period(self) -> date:
        return self.cleaned_data["period"].replace(day=1)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("period") and data.get("invoice_date"):
            try:
                bill_run_validate(period=data["period"], invoice_date=data["invoice_date"])
            except DomainError as exc:
                raise forms.ValidationError(exc.message, code=exc.code) from exc
        return data


@admin.register(BillRun)
class BillRunAdmin(admin.ModelAdmin):
    form = BillRunForm
    list_display = [
        "__str__",
        "status",
        "progress",
        "invoices_issued",
        "lines_issued",
        "total_amount",
        "invoice_date",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status", "billing_group"]
    readonly_fields = [
        "status",
        "customers_total",
        "invoices_issued",
        "lines_issued",
        "total_amount",
        "error",
        "started_at",
        "finished_at",
    ]
    actions = ["run_selected"]
    change_form_template = "admin/billing/billrun/change_form.html"

    @admin.display(description="Done")
    def progress(self, run: BillRun) -> str:
        return f"{run.invoices_issued}/{run.customers_total}"

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        if obj is None:
            return self.readonly_fields
        return [*self.readonly_fields, "period", "billing_group", "invoice_date"]

    def get_urls(self) -> list[URLPattern]:
        progress = path(
            "<int:run_id>/progress.json",
            self.admin_site.admin_view(self.progress_json),
            name="billing_billrun_progress",
        )
        return [progress, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):  # type: ignore[no-untyped-def]
        from invoices.services.bill_run_workers import bill_run_progress

        run = self.get_object(request, object_id)
        extra = {**(extra_context or {})}
        if run is not None:
            extra["progress"] = _progress_view(bill_run_progress(run))
        return super().change_view(request, object_id, form_url, extra)

    def progress_json(self, request: HttpRequest, run_id: int) -> JsonResponse:
        """What the run's page polls while it runs (every 2 s)."""
        from invoices.services.bill_run_workers import bill_run_progress

        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(BillRun, id=run_id)
        return JsonResponse(_progress_view(bill_run_progress(run)))

    @admin.action(description="Run (or resume) the selected bill runs")
    def run_selected(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        """With workers: the run is cut into chunks and sent to them (or its pending chunks are
        sent again), and its page follows the progress. Embedded (tasks run in-process): the
        run executes within the request, as one process would."""
        from invoices.services.bill_run_workers import bill_run_resume
        from invoices.tasks import bill_run_execute_task

        for run in queryset:
            try:
                if settings.CELERY_TASK_ALWAYS_EAGER:
                    bill_run_execute_task.delay(bill_run_id=run.id)
                    sent = 0
                else:
                    sent = bill_run_resume(bill_run_id=run.id)
            except Exception as exc:
                run.refresh_from_db()
                self.message_user(request, f"{run}: {exc}", messages.ERROR)
                continue
            run.refresh_from_db()
            if settings.CELERY_TASK_ALWAYS_EAGER:
                self.message_user(
                    request,
                    f"{run}: {run.get_status_display()}, "
                    f"{run.invoices_issued}/{run.customers_total} invoices issued",
                )
            else:
                self.message_user(
                    request,
                    f"{run}: {sent} chunk(s) sent to the workers; the run's page shows its "
                    "progress.",
                )


def _progress_view(progress: Any) -> dict[str, Any]:
    """The run's progress in the words the page shows (Swedish staff pages)."""
    left = progress.seconds_left
    return {
        "status": progress.status,
        "done": progress.done,
        "total": progress.total,
        "percent": progress.percent,
        "chunks": f"{progress.chunks_done}/{progress.chunks_total}",
        "rate": f"{progress.rate:,.0f}".replace(",", "\u00a0"),
        "eta": "" if left is None else _duration(left),
    }


def _duration(left: float) -> str:
    seconds = round(left)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@admin.register(PlanChange)
class PlanChangeAdmin(admin.ModelAdmin):
    """Plan changes are made through the services (invoice page, chat, API); here staff follow
    them and can undo one within its cooling-off period on the customer's behalf."""

    list_display = [
        "subscription",
        "from_plan",
        "to_plan",
        "from_price",
        "to_price",
        "effective_date",
        "status",
        "requested_via",
        "cooling_off_until",
    ]
    list_filter = ["status", "requested_via", "to_plan"]
    search_fields = ["subscription__identifier", "subscription__customer__name"]
    list_select_related = ["subscription", "subscription__plan", "from_plan", "to_plan"]
    actions = ["undo_selected"]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Undo (within the cooling-off period)")
    def undo_selected(self, request: HttpRequest, queryset: QuerySet[PlanChange]) -> None:
        for change in queryset:
            try:
                undone = plan_change_undo_and_correct(
                    change_id=change.id, via=f"admin:{request.user}"
                )
            except DomainError as exc:
                self.message_user(request, f"{change}: {exc.message}", messages.ERROR)
            else:
                corrected = "".join(
                    f"; invoice {c.invoice.display_number} "
                    + (
                        f"credited {-c.amount} kr (credit note {c.credit_note.display_number})"
                        if c.credit_note
                        else f"short by {c.amount} kr, added to the next invoice"
                    )
                    for c in undone.corrections
                )
                self.message_user(request, f"{change}: undone{corrected}")
