from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.errors import DomainError
from invoices.models import Invoice, InvoiceLine, InvoiceSeries, OutboundMessage, PageEvent


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    fk_name = "invoice"
    extra = 0
    can_delete = False
    fields = ("position", "kind", "title", "quantity", "unit", "amount", "vat_rate", "vat_amount")
    readonly_fields = fields

    @admin.display(description="Text")
    def title(self, line: InvoiceLine) -> str:
        text = line.text("en")
        return f"{text['title']} — {text['detail']}"

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class PageEventInline(admin.TabularInline):
    model = PageEvent
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "occurred_at", "details"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    """Issued documents are read-only; corrections go through a credit note."""

    list_display = [
        "display_number",
        "kind",
        "customer",
        "period_start",
        "invoice_date",
        "due_date",
        "total",
        "status",
    ]
    list_filter = ["kind", "status", "period_start", "bill_run"]
    search_fields = ["number", "ocr", "customer__name", "customer__customer_number"]
    list_select_related = ["customer", "series"]
    date_hierarchy = "invoice_date"
    inlines = [InvoiceLineInline, PageEventInline]
    actions = ["credit_in_full", "resend_link"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Issue a credit note for the whole invoice")
    def credit_in_full(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        from invoices.services.credit_notes import credit_note_issue

        for invoice in queryset:
            try:
                note = credit_note_issue(
                    invoice_id=invoice.id, reason=f"Credited in full by {request.user}"
                )
            except DomainError as exc:
                self.message_user(request, f"{invoice}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{invoice}: credit note {note} issued")

    @admin.action(description="Send the customer a new link")
    def resend_link(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        from invoices.services.delivery import invoice_resend

        for invoice in queryset:
            sent = invoice_resend(invoice_id=invoice.id)
            self.message_user(request, f"{invoice}: {len(sent)} message(s) sent")


@admin.register(InvoiceSeries)
class InvoiceSeriesAdmin(admin.ModelAdmin):
    list_display = ["code", "prefix", "next_number"]
    readonly_fields = ["next_number"]


@admin.register(OutboundMessage)
class OutboundMessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "channel", "to", "subject", "sent_at", "error"]
    list_filter = ["channel"]
    search_fields = ["to", "subject"]
    raw_id_fields = ["invoice"]
