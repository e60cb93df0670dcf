import uuid
from decimal import Decimal
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import localize, number_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.admin import RecordAdmin, ViewOfModelAdmin
from core.errors import DomainError
from core.money import money_sum
from invoices.accounting import accounting_settings
from invoices.models import (
    OPEN_STATUSES,
    AccountingSettings,
    BgMaxImport,
    CardPayment,
    CardRefund,
    CreditUse,
    DocumentKind,
    Invoice,
    InvoiceLine,
    InvoiceSeries,
    LedgerAccount,
    OutboundMessage,
    PageEvent,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Receivables,
    StripeEvent,
    SurplusMove,
    UnmatchedPayment,
)
from invoices.selectors import (
    aging_bucket,
    invoices_with_open_amount,
    receivables_report,
)

# The words finance staff read for each aging bucket (``invoices.selectors.AGING_BUCKETS``)
# and for the wider choices of the invoice list's filter.
AGING_LABELS = {
    "open": _("All open"),
    "not_due": _("Not due yet"),
    "overdue": _("Overdue, all"),
    "0-30": _("0–30 days overdue"),
    "31-60": _("31–60 days overdue"),
    "61-90": _("61–90 days overdue"),
    "90+": _("More than 90 days overdue"),
}
# What a refused spending of the credit balance says, by the service's code.
CREDIT_REFUSALS = {
    "invoice_not_payable": _("The invoice has nothing open."),
    "no_credit_balance": _("The customer has no credit balance to use."),
}


def _today() -> Any:
    return timezone.localdate()


class AgingFilter(admin.SimpleListFilter):
    """Open invoices by how long their due date has passed, as the receivables overview
    counts them (its drill-down links land here)."""

    title = _("days overdue")
    parameter_name = "aging"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(AGING_LABELS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> QuerySet[Invoice]:
        key = self.value()
        if key is None:
            return queryset
        today = _today()
        opened = queryset.filter(kind=DocumentKind.INVOICE, status__in=OPEN_STATUSES)
        if key == "open":
            return opened
        if key == "overdue":
            return opened.filter(due_date__lt=today)
        bucket = aging_bucket(key)
        return opened.filter(bucket.where(today)) if bucket else queryset.none()


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
        "number_shown",
        "kind",
        "customer",
        "period_start",
        "invoice_date",
        "due_date",
        "total",
        "open_amount",
        "status",
    ]
    list_filter = [AgingFilter, "kind", "status", "period_start", "bill_run"]
    search_fields = ["number", "ocr", "customer__name", "customer__customer_number"]
    list_select_related = ["customer", "series"]
    date_hierarchy = "invoice_date"
    inlines = [InvoiceLineInline, PageEventInline]
    actions = ["resend_link", "resend_link_revoking_old", "revoke_links", "use_credit_balance"]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Invoice]:
        # what is open on each, read with the list (no query per row)
        return invoices_with_open_amount(super().get_queryset(request))

    @admin.display(description=_("Invoice number"), ordering="number")
    def number_shown(self, invoice: Invoice) -> str:
        return invoice.display_number

    @admin.display(description=_("Open"), ordering="open_amount")
    def open_amount(self, invoice: Invoice) -> Decimal | None:
        if invoice.kind != DocumentKind.INVOICE or invoice.status not in OPEN_STATUSES:
            return None
        return money_sum(invoice.open_amount)  # type: ignore[attr-defined]

    def has_credit_permission(self, request: HttpRequest) -> bool:
        """Spending a credit balance books a payment, as matching one by hand does."""
        return request.user.has_perm("invoices.change_payment")

    @admin.action(description=_("Pay from the customer's credit balance…"), permissions=["credit"])
    def use_credit_balance(
        self, request: HttpRequest, queryset: QuerySet[Invoice]
    ) -> HttpResponse | None:
        """Read what the customers' credit balances would pay of the chosen invoices, then
        confirm: each is paid as far as its customer's balance goes, oldest due first."""
        from invoices.services.credit_balance import (
            credit_balance_use,
            credit_balance_use_preview,
        )

        previews = credit_balance_use_preview(
            invoice_ids=list(queryset.values_list("id", flat=True))
        )
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": _("Pay from the credit balance"),
                "rows": [
                    (preview, CREDIT_REFUSALS.get(preview.refusal, "")) for preview in previews
                ],
                "payable": any(not preview.refusal for preview in previews),
                "selected": [preview.invoice.pk for preview in previews],
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/invoices/invoice/credit_balance.html", context)
        user = request.user if isinstance(request.user, User) else None
        for preview in previews:
            invoice = preview.invoice
            if preview.refusal or user is None:
                continue
            try:
                payment = credit_balance_use(invoice_id=invoice.id, by=user)
            except DomainError as exc:
                self.message_user(
                    request,
                    f"{invoice.display_number}: {CREDIT_REFUSALS.get(exc.code, exc.message)}",
                    messages.WARNING,
                )
            else:
                self.message_user(
                    request,
                    _("%(amount)s kr from the credit balance paid on invoice %(number)s.")
                    % {"amount": localize(payment.amount), "number": invoice.display_number},
                )
        return None

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        credit = path(
            "<int:invoice_id>/credit/",
            self.admin_site.admin_view(self.credit_view),
            name="invoices_invoice_credit",
        )
        return [credit, *super().get_urls()]

    def credit_view(self, request: HttpRequest, invoice_id: int) -> HttpResponse:
        """Choose lines and a reason, confirm the amount, then issue the credit note."""
        from invoices.services.credit_notes import credit_note_issue, invoice_lines_creditable

        invoice = get_object_or_404(
            Invoice.objects.select_related("customer", "series"), id=invoice_id
        )
        if not self.has_change_permission(request, invoice):
            raise PermissionDenied
        creditable = invoice_lines_creditable(invoice)
        form = CreditNoteForm(request.POST or None, lines=creditable, language=invoice.language)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "invoice": invoice,
            "form": form,
            "title": _("Credit invoice %(number)s") % {"number": invoice.display_number},
        }
        if request.method == "POST" and form.is_valid():
            chosen = [line for line in creditable if str(line.id) in form.cleaned_data["lines"]]
            if not form.cleaned_data["confirmed"]:
                context.update(
                    confirming=True,
                    chosen=chosen,
                    credit_total=sum((line.remaining for line in chosen), Decimal(0)),
                )
            else:
                try:
                    note = credit_note_issue(
                        invoice_id=invoice.id,
                        reason=form.cleaned_data["reason"],
                        line_ids=[line.id for line in chosen],
                    )
                except DomainError as exc:
                    self.message_user(request, exc.message, messages.ERROR)
                else:
                    self.message_user(
                        request,
                        _("Credit note %(number)s issued for %(amount)s kr")
                        % {"number": note.display_number, "amount": -note.total},
                    )
                    return HttpResponseRedirect(
                        reverse("admin:invoices_invoice_change", args=[note.id])
                    )
        return TemplateResponse(request, "admin/invoices/invoice/credit.html", context)

    @admin.action(description="Send the customer a new link")
    def resend_link(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._resend(request, queryset, revoke_old=False)

    @admin.action(description="Send a new link and stop the old ones")
    def resend_link_revoking_old(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._resend(request, queryset, revoke_old=True)

    def _resend(
        self, request: HttpRequest, queryset: QuerySet[Invoice], *, revoke_old: bool
    ) -> None:
        from invoices.services.delivery import invoice_resend

        for invoice in queryset:
            try:
                sent = invoice_resend(invoice_id=invoice.id, revoke_old=revoke_old)
            except DomainError as exc:
                self.message_user(request, f"{invoice}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"{invoice}: {len(sent)} message(s) sent")

    @admin.action(description="Stop every link of the invoice (a leaked or forwarded link)")
    def revoke_links(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        from invoices.services.links import invoice_links_revoke

        for invoice in queryset:
            count = invoice_links_revoke(invoice_id=invoice.id, reason=f"admin:{request.user}")
            self.message_user(request, f"{invoice}: {count} link(s) stopped")


class CreditNoteForm(forms.Form):
    lines = forms.MultipleChoiceField(
        label=_("Lines to credit"), widget=forms.CheckboxSelectMultiple
    )
    reason = forms.CharField(
        label=_("Reason (shown to the customer)"), max_length=300, widget=forms.Textarea
    )
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: object, lines: list[InvoiceLine], language: str, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["lines"].choices = [  # type: ignore[attr-defined]
            (str(line.id), f"{line.text(language)['title']} — {line.remaining} kr")
            for line in lines
        ]


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


# --- payments ----------------------------------------------------------------------------------


class BgMaxUploadForm(forms.Form):
    file = forms.FileField(
        label=_("BgMax file"),
        help_text=_("From Bankgirot (incoming payments). The whole file is checked first."),
    )


@admin.register(BgMaxImport)
class BgMaxImportAdmin(admin.ModelAdmin):
    """The BgMax files uploaded, and the upload itself (adding one means booking a file)."""

    list_display = (
        "name",
        "uploaded_at",
        "uploaded_by",
        "written_at",
        "payments",
        "booked",
        "unmatched",
        "already_booked",
    )
    readonly_fields = [field.name for field in BgMaxImport._meta.fields]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        upload = path(
            "upload/",
            self.admin_site.admin_view(self.upload_view),
            name="invoices_bgmaximport_upload",
        )
        return [upload, *super().get_urls()]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:invoices_bgmaximport_upload"))

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a BgMax file: checked whole, then booked, or refused saying why."""
        from invoices.services.payments import bgmax_import

        if not self.has_add_permission(request):
            raise PermissionDenied
        form = BgMaxUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                user = request.user if isinstance(request.user, User) else None
                imported, new = bgmax_import(data=upload.read(), name=upload.name, uploaded_by=user)
            except DomainError as exc:
                refusal = _("Nothing was booked. %(reason)s") % {"reason": exc.message}
                form.add_error("file", refusal)
            else:
                if new:
                    self.message_user(
                        request,
                        _(
                            "Booked from %(name)s: %(booked)s payment(s) on their invoices, "
                            "%(unmatched)s left to match by hand, %(already)s booked before "
                            "from another file."
                        )
                        % {
                            "name": imported.name,
                            "booked": imported.booked,
                            "unmatched": imported.unmatched,
                            "already": imported.already_booked,
                        },
                    )
                else:
                    self.message_user(
                        request,
                        _("This file was uploaded on %(when)s as %(name)s: nothing booked again.")
                        % {"when": imported.uploaded_at, "name": imported.name},
                        messages.WARNING,
                    )
                return HttpResponseRedirect(reverse("admin:invoices_bgmaximport_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": _("Upload a BgMax file"),
        }
        return TemplateResponse(request, "admin/invoices/bgmaximport/upload.html", context)


class CreditUseInline(admin.TabularInline):
    """Where a payment's surplus went, or which surpluses a credit-balance payment spent."""

    model = CreditUse
    extra = 0
    can_delete = False
    readonly_fields = ["source", "payment", "amount", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class SpentFromInline(CreditUseInline):
    fk_name = "payment"
    verbose_name = _("spent from")
    verbose_name_plural = _("spent from (surpluses of earlier payments)")


class SpentOnInline(CreditUseInline):
    fk_name = "source"
    verbose_name = _("spent on")
    verbose_name_plural = _("surplus spent on (payments from the credit balance)")


class SurplusMoveInline(admin.TabularInline):
    """How the surplus moved after the booking: a credit note into it, a refund out of it."""

    model = SurplusMove
    fk_name = "payment"
    extra = 0
    can_delete = False
    fields = readonly_fields = ("moved_on", "kind", "amount", "credit_note", "refund", "created_at")
    verbose_name_plural = _("surplus moved after the booking")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(RecordAdmin):
    """The payment log: every payment received or taken from a credit balance, by method,
    date and status; the unmatched ones are the queue to match by hand."""

    list_display = (
        "paid_on",
        "amount",
        "currency",
        "status",
        "method",
        "invoice",
        "reference",
        "payer",
        "surplus",
        "surplus_used",
    )
    list_filter: ClassVar[tuple[str, ...]] = ("status", "method", "currency", "paid_on")
    search_fields = ("reference", "payer", "invoice__number")
    list_select_related = ("invoice__series", "card_payment")
    date_hierarchy = "paid_on"
    inlines = [SpentFromInline, SpentOnInline]

    def get_inlines(self, request: HttpRequest, obj: Payment | None) -> list[type[Any]]:
        """Where a spending's money came from; where a surplus went (when there is one)."""
        if obj is None:
            return []
        if obj.method == PaymentMethod.CREDIT:
            return [SpentFromInline]
        moved = [SurplusMoveInline] if obj.surplus != obj.surplus_at_booking else []
        return [SpentOnInline, *moved] if obj.surplus or moved else []

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        return (*self.list_display, "match_link", "refund_link")

    @admin.display(description=_("Refund"))
    def refund_link(self, payment: Payment) -> str:
        if (
            payment.method != PaymentMethod.CARD
            or payment.status != PaymentStatus.BOOKED
            or payment.amount <= 0
            or not hasattr(payment, "card_payment")
        ):
            return ""
        url = reverse("admin:invoices_payment_refund", args=[payment.id])
        return format_html('<a href="{}">{}</a>', url, _("Give back to the card…"))

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The list, with the unmatched queue's size (one query) in its links."""
        waiting = Payment.objects.filter(status=PaymentStatus.UNMATCHED).aggregate(
            n=Count("id"), s=Sum("amount")
        )
        context = {
            "unmatched_count": waiting["n"],
            "unmatched_amount": waiting["s"] or Decimal(0),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    @admin.display(description=_("Match"))
    def match_link(self, payment: Payment) -> str:
        if payment.status != PaymentStatus.UNMATCHED:
            return ""
        url = reverse("admin:invoices_payment_match", args=[payment.id])
        return format_html('<a href="{}">{}</a>', url, _("Put on an invoice…"))

    def get_urls(self) -> list[URLPattern]:
        match = path(
            "<int:payment_id>/match/",
            self.admin_site.admin_view(self.match_view),
            name="invoices_payment_match",
        )
        refund = path(
            "<int:payment_id>/refund/",
            self.admin_site.admin_view(self.refund_view),
            name="invoices_payment_refund",
        )
        return [match, refund, *super().get_urls()]

    def refund_view(self, request: HttpRequest, payment_id: int) -> HttpResponse:
        """Give all or part of a card payment back to the card: the amount and a reason, then
        what it does to the invoice, then confirm. The confirmation carries the refund's
        idempotency key (made for this review), so a second click refunds nothing twice."""
        from invoices.services.card_payments import (
            card_refund_preview,
            card_refund_request,
            card_refundable,
        )

        if not request.user.has_perm("invoices.add_cardrefund"):
            raise PermissionDenied
        payment = get_object_or_404(
            Payment.objects.select_related("invoice__series", "card_payment"), id=payment_id
        )
        refundable = card_refundable(payment)
        form = CardRefundForm(
            request.POST or None, initial={"amount": refundable, "key": uuid.uuid4().hex}
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "payment": payment,
            "refundable": refundable,
            "form": form,
            "title": _("Give a card payment back"),
        }
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if data["confirmed"] and isinstance(request.user, User):
                    refund = card_refund_request(
                        payment_id=payment.id,
                        amount=data["amount"],
                        by=request.user,
                        idempotency_key=data["key"],
                        reason=data["reason"],
                    )
                    self.message_user(
                        request,
                        _("%(amount)s kr goes back to the customer's card (%(status)s).")
                        % {
                            "amount": number_format(refund.amount, 2),
                            "status": refund.get_status_display(),
                        },
                    )
                    return HttpResponseRedirect(reverse("admin:invoices_payment_changelist"))
                context["preview"] = card_refund_preview(
                    payment_id=payment.id, amount=data["amount"]
                )
            except DomainError as exc:
                form.add_error("amount", exc.message)
        return TemplateResponse(request, "admin/invoices/payment/refund.html", context)

    def match_view(self, request: HttpRequest, payment_id: int) -> HttpResponse:
        """Choose the invoice by its number, read what booking the payment on it does, then
        confirm."""
        from invoices.services.payments import payment_match, payment_match_preview

        if not request.user.has_perm("invoices.change_payment"):
            raise PermissionDenied
        payment = get_object_or_404(Payment, id=payment_id)
        form = PaymentMatchForm(request.POST or None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "payment": payment,
            "form": form,
            "title": _("Put a payment on an invoice"),
        }
        if request.method == "POST" and form.is_valid():
            invoice = form.cleaned_data["invoice"]
            try:
                if form.cleaned_data["confirmed"] and isinstance(request.user, User):
                    payment_match(payment_id=payment.id, invoice_id=invoice.id, by=request.user)
                    self.message_user(
                        request,
                        _("%(amount)s kr booked on invoice %(number)s.")
                        % {"amount": payment.amount, "number": invoice.display_number},
                    )
                    # back to the queue, for the next one
                    return HttpResponseRedirect(
                        reverse("admin:invoices_unmatchedpayment_changelist")
                    )
                context["preview"] = payment_match_preview(
                    payment_id=payment.id, invoice_id=invoice.id
                )
            except DomainError as exc:
                form.add_error("number", exc.message)
        return TemplateResponse(request, "admin/invoices/payment/match.html", context)


class CardRefundForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount to give back (kr)"),
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        localize=True,
    )
    reason = forms.CharField(
        label=_("Reason (kept with the refund)"), max_length=300, required=False
    )
    key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)


class PaymentMatchForm(forms.Form):
    number = forms.CharField(
        label=_("Invoice number"),
        max_length=40,
        help_text=_("As the customer's invoice shows it, e.g. 100994"),
    )
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        number = (cleaned.get("number") or "").strip()
        digits = "".join(ch for ch in number if ch.isdigit())
        found = [
            invoice
            for invoice in Invoice.objects.select_related("series").filter(
                kind="invoice", number=int(digits) if digits else -1
            )
            if number in (invoice.display_number, str(invoice.number))
        ]
        if len(found) != 1:
            self.add_error("number", _("No invoice has that number."))
        else:
            cleaned["invoice"] = found[0]
        return cleaned


@admin.register(UnmatchedPayment)
class UnmatchedPaymentAdmin(ViewOfModelAdmin, PaymentAdmin):
    """The queue of payments waiting to be put on an invoice by hand: the payment log's
    unmatched ones, as an entry of its own."""

    view_permission = "invoices.view_payment"
    list_filter: ClassVar[tuple[str, ...]] = ("method", "currency", "paid_on")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Payment]:
        return super().get_queryset(request).filter(status=PaymentStatus.UNMATCHED)

    def get_urls(self) -> list[URLPattern]:
        # the list and each payment's page; matching stays the payment log's own page
        return admin.ModelAdmin.get_urls(self)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return super().changelist_view(
            request, {"title": _("Unmatched payments: put each on its invoice")}
        )


@admin.register(CreditUse)
class CreditUseAdmin(RecordAdmin):
    """The credit balances' ledger: each part of a surplus spent, from which payment to
    which."""

    list_display = ("created_at", "amount", "source", "payment")
    list_select_related = ("source", "payment")
    raw_id_fields = ("source", "payment")


@admin.register(Receivables)
class ReceivablesAdmin(ViewOfModelAdmin, RecordAdmin):
    """The receivables overview: what customers owe, open, overdue and paid, the open
    invoices by how long their due date has passed (each bucket linking to its invoices),
    and the payments waiting to be matched. Read by whoever may view invoices."""

    view_permission = "invoices.view_invoice"

    def get_urls(self) -> list[URLPattern]:
        overview = path(
            "",
            self.admin_site.admin_view(self.changelist_view),
            name="invoices_receivables_changelist",
        )
        return [overview]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = receivables_report(today=_today())
        invoices = reverse("admin:invoices_invoice_changelist")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Receivables"),
            "report": report,
            "buckets": [
                {
                    "bucket": bucket,
                    "label": AGING_LABELS[bucket.key],
                    "url": f"{invoices}?aging={bucket.key}",
                }
                for bucket in report.buckets
            ],
            "open_url": f"{invoices}?aging=open",
            "overdue_url": f"{invoices}?aging=overdue",
            "paid_url": f"{invoices}?kind__exact=invoice&status__exact=paid",
            "unmatched_url": reverse("admin:invoices_unmatchedpayment_changelist"),
            "payments_url": reverse("admin:invoices_payment_changelist"),
        }
        return TemplateResponse(request, "admin/invoices/receivables.html", context)


@admin.register(CardPayment)
class CardPaymentAdmin(RecordAdmin):
    """Every attempt to pay an invoice by card, with its PaymentIntent and how it ended."""

    list_display = ("created_at", "invoice", "amount", "status", "payment_intent_id", "payment")
    list_filter = ("status",)
    search_fields = ("payment_intent_id", "invoice__number", "idempotency_key")
    list_select_related = ("invoice__series", "payment")


@admin.register(CardRefund)
class CardRefundAdmin(RecordAdmin):
    """Money given back to cards: who asked, how much, and what Stripe said."""

    list_display = ("requested_at", "card_payment", "amount", "status", "requested_by", "reason")
    list_filter = ("status",)
    search_fields = ("stripe_refund_id", "card_payment__payment_intent_id")
    list_select_related = ("card_payment", "requested_by")


@admin.register(StripeEvent)
class StripeEventAdmin(RecordAdmin):
    """Stripe's events as they were applied (each once), by webhook or by the daily task."""

    list_display = ("received_at", "type", "event_id", "outcome", "via", "created")
    list_filter = ("type", "outcome", "via")
    search_fields = ("event_id",)


# --- the accounting export's settings -------------------------------------------------------------


@admin.register(LedgerAccount)
class LedgerAccountAdmin(admin.ModelAdmin):
    """The accounts the accounting export may book on, with the names its file gives them."""

    list_display = ("number", "name")
    search_fields = ("number", "name")


@admin.register(AccountingSettings)
class AccountingSettingsAdmin(admin.ModelAdmin):
    """The one row of the accounting export's accounts and series: the list opens it."""

    fieldsets = (
        (_("Customers"), {"fields": ("receivables", "customer_advances", "unmatched_payments")}),
        (
            _("Money received, by payment method"),
            {"fields": ("bankgiro", "card", "swish", "manual")},
        ),
        (
            _("Revenue and output VAT, by VAT rate"),
            {
                "fields": (
                    ("revenue_25", "vat_25"),
                    ("revenue_12", "vat_12"),
                    ("revenue_6", "vat_6"),
                    "revenue_0",
                    "rounding",
                )
            },
        ),
        (_("Fees and interest"), {"fields": ("reminder_fees", "instalment_fees", "interest")}),
        (
            _("The file"),
            {
                "fields": (
                    "series_invoices",
                    "series_payments",
                    "series_charges",
                    "fiscal_year_start_month",
                    "chart_type",
                )
            },
        ),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        found = accounting_settings()
        return HttpResponseRedirect(
            reverse("admin:invoices_accountingsettings_change", args=[found.id])
        )
