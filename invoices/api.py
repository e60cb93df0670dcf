"""The API of invoices and payments: invoices listed, read, credited, sent again and fetched as
PDF; payments listed and read, and registered one by one when they were received outside
Touchpoint's channels (``payment_register``); BgMax files uploaded by a bank integration,
booked exactly as the admin's upload books them; the aging report of what customers owe, as
the admin's receivables overview reads it (``invoices.selectors.receivables_report``); the
accounting export (SIE 4I, ``invoices.accounting``). Each endpoint calls the same service or
selector as the admin."""

from datetime import date
from typing import Any

from django.contrib.auth.models import User
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from billing.models import BillRun, BillRunStatus
from core.api import ApiView
from core.downloads import download_response
from core.errors import DomainError
from core.schema import (
    IdField,
    MoneyField,
    PeriodField,
    StrictCharField,
    days_in_order,
    error_example,
    page_example,
    paginated,
)
from dunning.selectors import invoice_due_date_now
from invoices.accounting import SIE_CONTENT_TYPE, accounting_sie_file, sie_file_name
from invoices.models import (
    BgMaxImport,
    DocumentKind,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
)
from invoices.selectors import (
    invoice_get_for_api,
    invoices_filtered,
    invoices_with_open_amount,
    payment_get_for_api,
    payments_filtered,
    receivables_report,
)
from invoices.services.bill_run import bill_run_start
from invoices.services.bill_run_workers import bill_run_dispatch, bill_run_progress
from invoices.services.credit_notes import credit_note_issue
from invoices.services.delivery import invoice_resend
from invoices.services.payments import (
    EXTERNAL_ID_MAX_LENGTH,
    REGISTERED_SOURCE,
    REGISTRABLE_METHODS,
    bgmax_import,
    payment_register,
)
from invoices.services.pdf import invoice_pdf_ensure

# --- examples (shown in /api/docs/; schemathesis sends the request examples in CI) -------------


INVOICE_EXAMPLE: dict[str, Any] = {
    "id": 1024,
    "number": "100231",
    "kind": "invoice",
    "customer": "K-1001",
    "period_start": "2026-11-01",
    "period_end": "2026-11-30",
    "invoice_date": "2026-12-01",
    "due_date": "2026-12-31",
    "ocr": "1002314",
    "currency": "SEK",
    "total": "349.00",
    "status": "partly_paid",
    "open_amount": "149.00",
    "credits": None,
}
BILL_RUN_EXAMPLE: dict[str, Any] = {
    "id": 36,
    "period": "2026-11-01",
    "billing_group": "default",
    "invoice_date": "2026-12-01",
    "status": "running",
    "customers_total": 412000,
    "invoices_issued": 128500,
    "lines_issued": 243100,
    "total_amount": "44861250.00",
    "error": "",
    "started_at": "2026-12-01T02:00:04+01:00",
    "finished_at": None,
    "progress": {
        "percent": 31,
        "chunks_done": 64,
        "chunks_total": 206,
        "invoices_per_second": 1712.4,
        "seconds_left": 166,
    },
}
BGMAX_IMPORT_EXAMPLE: dict[str, Any] = {
    "id": 88,
    "new": True,
    "name": "BgMax_20261202.txt",
    "sha256": "9f2c1e0b5d4a7c3e8f6b2a1d0c9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e",
    "uploaded_at": "2026-12-02T07:15:31+01:00",
    "written_at": "2026-12-02T05:02:00+01:00",
    "deposits": 1,
    "payments": 1843,
    "booked": 1831,
    "unmatched": 12,
    "already_booked": 0,
}
INVOICE_NOT_FOUND = error_example("Not found", 404, "not_found", "No such invoice.")


class BgMaxImportCreateApi(ApiView):
    """Upload a BgMax file (multipart field ``file``). 201 with what was booked; 200 with the
    first upload's figures when the same file came before (nothing is booked twice); 400
    ``bgmax_invalid`` naming the record that is wrong, and nothing booked."""

    required_scope = "payments:write"
    required_permission = "invoices.add_bgmaximport"
    parser_classes = [MultiPartParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField()

    class OutputSerializer(serializers.ModelSerializer):
        new = serializers.BooleanField()

        class Meta:
            model = BgMaxImport
            fields = [
                "id",
                "new",
                "name",
                "sha256",
                "uploaded_at",
                "written_at",
                "deposits",
                "payments",
                "booked",
                "unmatched",
                "already_booked",
            ]

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer, 200: OutputSerializer},
        examples=[
            OpenApiExample(
                "A day's file from Bankgirot",
                request_only=True,
                media_type="multipart/form-data",
                value={"file": "BgMax_20261202.txt"},
            ),
            OpenApiExample(
                "Booked",
                response_only=True,
                status_codes=["201"],
                value=BGMAX_IMPORT_EXAMPLE,
            ),
            OpenApiExample(
                "The same file again: nothing booked twice",
                response_only=True,
                status_codes=["200"],
                value={**BGMAX_IMPORT_EXAMPLE, "new": False},
            ),
            error_example(
                "A file that does not add up",
                400,
                "bgmax_invalid",
                "Record 1846: the deposit's total 412 311.00 is not the sum of its payments.",
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        given = self.InputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        upload = given.validated_data["file"]
        user = request.user if isinstance(request.user, User) else None  # (a key's account too)
        imported, new = bgmax_import(data=upload.read(), name=upload.name, uploaded_by=user)
        imported.new = new  # type: ignore[attr-defined]
        answer = self.OutputSerializer(imported).data
        return Response(answer, status=status.HTTP_201_CREATED if new else status.HTTP_200_OK)


# --- invoices ----------------------------------------------------------------------------------


class InvoiceSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField(source="display_number")
    kind = serializers.CharField()
    customer = serializers.CharField(source="customer.customer_number")
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    invoice_date = serializers.DateField()
    due_date = serializers.DateField()
    ocr = serializers.CharField(allow_null=True)
    currency = serializers.CharField()
    total = MoneyField()
    status = serializers.CharField()
    open_amount = MoneyField(help_text="What is left to pay: total − credited + charges − paid")
    credits = serializers.IntegerField(
        source="credited_invoice_id", allow_null=True, help_text="A credit note: the invoice"
    )


class InvoiceListApi(ApiView):
    """Invoices and credit notes, newest first, by cursor; filter by ``customer`` (customer
    number), ``status``, ``kind`` and ``period`` (YYYY-MM)."""

    required_scope = "read"
    required_permission = "invoices.view_invoice"

    class FilterSerializer(serializers.Serializer):
        customer = StrictCharField(required=False)
        status = serializers.ChoiceField(choices=InvoiceStatus.choices, required=False)
        kind = serializers.ChoiceField(choices=DocumentKind.choices, required=False)
        period = PeriodField(required=False)

    @extend_schema(
        parameters=[FilterSerializer],
        responses=paginated(InvoiceSummarySerializer),
        examples=[
            OpenApiExample(
                "A page", response_only=True, value=page_example("invoices", INVOICE_EXAMPLE)
            ),
            error_example(
                "A wrong status",
                400,
                "invalid",
                "Some fields are wrong.",
                fields={"status": ['"late" is not a valid choice.']},
            ),
        ],
    )
    def get(self, request: Request) -> Response:
        found = invoices_with_open_amount(invoices_filtered(**self.filters()))
        return self.page_of(found, InvoiceSummarySerializer)


class InvoiceLineSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.SerializerMethodField()
    detail = serializers.SerializerMethodField()
    quantity = serializers.DecimalField(max_digits=14, decimal_places=3)
    unit = serializers.CharField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=4)
    amount = MoneyField()
    vat_rate = serializers.DecimalField(max_digits=4, decimal_places=2)
    vat_amount = MoneyField()
    subscription = serializers.IntegerField(source="subscription_id", allow_null=True)

    def get_title(self, line: Any) -> str:
        return line.text(self.context["language"]).get("title", "")

    def get_detail(self, line: Any) -> str:
        return line.text(self.context["language"]).get("detail", "")


class InvoiceDetailSerializer(InvoiceSummarySerializer):
    language = serializers.CharField()
    buyer = serializers.JSONField()
    vat_summary = serializers.JSONField()
    net_total = MoneyField()
    vat_total = MoneyField()
    rounding = MoneyField()
    lines = InvoiceLineSerializer(many=True)
    payments = serializers.SerializerMethodField()
    credit_notes = serializers.SerializerMethodField()
    charges = serializers.SerializerMethodField()

    def get_payments(self, invoice: Any) -> list[dict[str, str]]:
        return [
            {
                "id": str(p.id),
                "method": p.method,
                "amount": str(p.amount),
                "surplus": str(p.surplus),
                "paid_on": p.paid_on.isoformat(),
            }
            for p in invoice.payments.filter(status=PaymentStatus.BOOKED).order_by("id")
        ]

    def get_credit_notes(self, invoice: Any) -> list[dict[str, str]]:
        return [
            {"id": str(n.id), "number": n.display_number, "total": str(n.total)}
            for n in invoice.credit_notes.select_related("series").order_by("id")
        ]

    def get_charges(self, invoice: Any) -> list[dict[str, str]]:
        return [
            {"kind": c.kind, "amount": str(c.amount), "charged_on": c.charged_on.isoformat()}
            for c in invoice.charges.order_by("id")
        ]


class InvoiceDetailApi(ApiView):
    """One invoice or credit note with its lines (texts in ``?lang=``, default the invoice's),
    VAT, booked payments, credit notes and charges."""

    required_scope = "read"
    required_permission = "invoices.view_invoice"

    @extend_schema(
        responses=InvoiceDetailSerializer,
        examples=[
            OpenApiExample(
                "An invoice, partly paid",
                response_only=True,
                value={
                    **INVOICE_EXAMPLE,
                    "language": "sv",
                    "buyer": {
                        "name": "Anna Berg",
                        "address": "Storgatan 1",
                        "postal_code": "111 22",
                        "city": "Stockholm",
                        "customer_number": "K-1001",
                        "email": "anna.berg@example.se",
                        "phone": "+46701234567",
                    },
                    "vat_summary": [{"rate": "0.25", "base": "279.20", "vat": "69.80"}],
                    "net_total": "279.20",
                    "vat_total": "69.80",
                    "rounding": "0.00",
                    "lines": [
                        {
                            "id": 5120,
                            "position": 1,
                            "kind": "fee",
                            "title": "Mobil 10 GB, november",
                            "detail": "Månadsavgift 1–30 november",
                            "quantity": "1.000",
                            "unit": "",
                            "unit_price": "349.0000",
                            "amount": "349.00",
                            "vat_rate": "0.25",
                            "vat_amount": "69.80",
                            "subscription": 4711,
                        }
                    ],
                    "payments": [
                        {
                            "id": "90211",
                            "method": "swish",
                            "amount": "200.00",
                            "surplus": "0.00",
                            "paid_on": "2026-12-03",
                        }
                    ],
                    "credit_notes": [],
                    "charges": [],
                },
            ),
            INVOICE_NOT_FOUND,
        ],
    )
    def get(self, request: Request, invoice_id: int) -> Response:
        invoice = invoice_get_for_api(invoice_id)
        language = request.query_params.get("lang") or invoice.language
        data = InvoiceDetailSerializer(invoice, context={"language": language}).data
        return Response(data)


class InvoiceCreditApi(ApiView):
    """Credit an invoice: every line not yet credited, or the ``lines`` named (ids). 201 with
    the credit note."""

    required_scope = "billing:write"
    required_permission = "invoices.change_invoice"

    class InputSerializer(serializers.Serializer):
        reason = StrictCharField(max_length=300)
        lines = serializers.ListField(child=serializers.IntegerField(), required=False)

    @extend_schema(
        request=InputSerializer,
        responses={201: InvoiceSummarySerializer},
        examples=[
            OpenApiExample(
                "One line credited",
                request_only=True,
                value={"reason": "Roaming charged twice (case 88121)", "lines": [5121]},
            ),
            OpenApiExample(
                "The credit note",
                response_only=True,
                status_codes=["201"],
                value={
                    **INVOICE_EXAMPLE,
                    "id": 1101,
                    "number": "K212",
                    "kind": "credit_note",
                    "ocr": None,
                    "total": "-59.00",
                    "status": "issued",
                    "open_amount": "0.00",
                    "credits": 1024,
                },
            ),
            error_example(
                "Credited before", 400, "nothing_to_credit", "Every line is credited already."
            ),
            INVOICE_NOT_FOUND,
        ],
    )
    def post(self, request: Request, invoice_id: int) -> Response:
        given = self.InputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        invoice_get_for_api(invoice_id)  # 404 for an unknown id
        note = credit_note_issue(
            invoice_id=invoice_id,
            reason=given.validated_data["reason"],
            line_ids=given.validated_data.get("lines"),
        )
        note = invoice_get_for_api(note.id)
        return Response(InvoiceSummarySerializer(note).data, status=status.HTTP_201_CREATED)


class InvoiceResendApi(ApiView):
    """Send the customer a new link to the invoice, by their channels; ``revoke_old`` stops
    the links sent before."""

    required_scope = "billing:write"
    required_permission = "invoices.change_invoice"

    class InputSerializer(serializers.Serializer):
        revoke_old = serializers.BooleanField(default=False)

    class OutputSerializer(serializers.Serializer):
        channels = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        request=InputSerializer,
        responses=OutputSerializer,
        examples=[
            OpenApiExample(
                "A new link; the old ones stop", request_only=True, value={"revoke_old": True}
            ),
            OpenApiExample("Sent", response_only=True, value={"channels": ["email", "sms"]}),
            error_example("A credit note", 400, "not_an_invoice", "A credit note has no link."),
            INVOICE_NOT_FOUND,
        ],
    )
    def post(self, request: Request, invoice_id: int) -> Response:
        given = self.InputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        invoice = invoice_get_for_api(invoice_id)
        if invoice.kind != DocumentKind.INVOICE:
            raise DomainError(code="not_an_invoice", message="A credit note has no link.")
        sent = invoice_resend(invoice_id=invoice.id, revoke_old=given.validated_data["revoke_old"])
        return Response({"channels": [message.channel for message in sent]})


class InvoicePdfApi(ApiView):
    """The invoice's PDF (made on first need, then kept)."""

    required_scope = "read"
    required_permission = "invoices.view_invoice"

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    def get(self, request: Request, invoice_id: int) -> FileResponse:
        invoice = invoice_get_for_api(invoice_id)
        # as the customer's PDF: with the date a reminder or a postponement moved it to
        due_date = None if invoice.is_credit_note else invoice_due_date_now(invoice_id=invoice.id)
        stored = invoice_pdf_ensure(invoice_id=invoice.id, due_date=due_date)
        return FileResponse(
            stored.open("rb"),
            content_type="application/pdf",
            filename=f"invoice-{invoice.display_number}.pdf",
        )


# --- bill runs ---------------------------------------------------------------------------------


class BillRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    period = serializers.DateField()
    billing_group = serializers.CharField()
    invoice_date = serializers.DateField()
    status = serializers.CharField()
    customers_total = serializers.IntegerField()
    invoices_issued = serializers.IntegerField()
    lines_issued = serializers.IntegerField()
    total_amount = MoneyField()
    error = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    progress = serializers.SerializerMethodField()

    def get_progress(self, run: BillRun) -> dict[str, Any]:
        progress = bill_run_progress(run)
        return {
            "percent": progress.percent,
            "chunks_done": progress.chunks_done,
            "chunks_total": progress.chunks_total,
            "invoices_per_second": round(progress.rate, 1),
            "seconds_left": None if progress.seconds_left is None else round(progress.seconds_left),
        }


class BillRunListApi(ApiView):
    """GET: the bill runs, newest first, filtered by ``period`` (YYYY-MM), ``billing_group``
    and ``status``. POST: start a month's run for a billing group
    and send it to the workers (202); the same month and group again answers the run there is
    (200), never a second one."""

    required_scope = "billing:write"
    required_permission = "billing.add_billrun"

    class InputSerializer(serializers.Serializer):
        period = PeriodField()
        billing_group = StrictCharField(max_length=20, default="default")
        invoice_date = serializers.DateField(required=False, help_text="Default: today")

    class FilterSerializer(serializers.Serializer):
        period = PeriodField(required=False)
        billing_group = StrictCharField(max_length=20, required=False)
        status = serializers.ChoiceField(choices=BillRunStatus.choices, required=False)

    def get_permissions(self) -> list[Any]:
        if self.request.method == "GET":
            self.required_scope, self.required_permission = "read", "billing.view_billrun"
        return super().get_permissions()

    @extend_schema(
        parameters=[FilterSerializer],
        responses=paginated(BillRunSerializer),
        examples=[
            OpenApiExample(
                "A page", response_only=True, value=page_example("bill-runs", BILL_RUN_EXAMPLE)
            )
        ],
    )
    def get(self, request: Request) -> Response:
        given = self.filters()
        runs = BillRun.objects.all()
        if period := given.get("period"):
            year, month = (int(part) for part in period.split("-"))
            runs = runs.filter(period=date(year, month, 1))
        if group := given.get("billing_group"):
            runs = runs.filter(billing_group=group)
        if run_status := given.get("status"):
            runs = runs.filter(status=run_status)
        paginator = BillRunPagination()
        page = paginator.paginate_queryset(runs, request, view=self) or []
        return paginator.get_paginated_response(BillRunSerializer(page, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={202: BillRunSerializer, 200: BillRunSerializer},
        examples=[
            OpenApiExample(
                "November's run",
                request_only=True,
                value={
                    "period": "2026-11",
                    "billing_group": "default",
                    "invoice_date": "2026-12-01",
                },
            ),
            OpenApiExample(
                "Started",
                response_only=True,
                status_codes=["202"],
                value={
                    **BILL_RUN_EXAMPLE,
                    "invoices_issued": 0,
                    "lines_issued": 0,
                    "total_amount": "0.00",
                    "progress": {
                        "percent": 0,
                        "chunks_done": 0,
                        "chunks_total": 206,
                        "invoices_per_second": 0.0,
                        "seconds_left": None,
                    },
                },
            ),
            OpenApiExample(
                "Started before: the run there is",
                response_only=True,
                status_codes=["200"],
                value=BILL_RUN_EXAMPLE,
            ),
            error_example(
                "A month not over",
                400,
                "period_not_ended",
                "2026-12 can be billed from 2027-01-01: a month is billed once it has ended.",
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        given = self.InputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        year, month = (int(part) for part in given.validated_data["period"].split("-"))
        period = date(year, month, 1)
        group = given.validated_data["billing_group"]
        existed = BillRun.objects.filter(period=period, billing_group=group).exists()
        run = bill_run_start(
            period=period,
            billing_group=group,
            invoice_date=given.validated_data.get("invoice_date"),
        )
        run = bill_run_dispatch(bill_run_id=run.id)
        answer = BillRunSerializer(run).data
        return Response(answer, status=status.HTTP_200_OK if existed else status.HTTP_202_ACCEPTED)


class BillRunPagination(CursorPagination):
    ordering = "-id"
    page_size = 50


class BillRunDetailApi(ApiView):
    """One bill run: its counts, status and progress (percent, chunks, rate, time left)."""

    required_scope = "read"
    required_permission = "billing.view_billrun"

    @extend_schema(
        responses=BillRunSerializer,
        examples=[
            OpenApiExample(
                "Completed",
                response_only=True,
                value={
                    **BILL_RUN_EXAMPLE,
                    "status": "completed",
                    "invoices_issued": 412000,
                    "lines_issued": 779300,
                    "total_amount": "143832400.00",
                    "finished_at": "2026-12-01T02:04:11+01:00",
                    "progress": {
                        "percent": 100,
                        "chunks_done": 206,
                        "chunks_total": 206,
                        "invoices_per_second": 1668.0,
                        "seconds_left": 0,
                    },
                },
            ),
            error_example("Not found", 404, "not_found", "No such bill run."),
        ],
    )
    def get(self, request: Request, run_id: int) -> Response:
        run = BillRun.objects.filter(id=run_id).first()
        if run is None:
            raise Http404("No such bill run.")
        return Response(BillRunSerializer(run).data)


# --- receivables -------------------------------------------------------------------------------


class _Figure(serializers.Serializer):
    count = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="kronor")


class AgingReportApi(ApiView):
    """What customers owe today (Europe/Stockholm): open invoices (money open), the overdue
    ones, the paid ones (their totals), the open ones by days past their due date (buckets
    ``not_due``, ``0-30``, ``31-60``, ``61-90``, ``90+``: ``days_from``–``days_to``, either
    open-ended when null), and the payments waiting to be matched by hand. Amounts are
    kronor, as strings. Read-only."""

    required_scope = "read"
    required_permission = "invoices.view_invoice"

    class OutputSerializer(serializers.Serializer):
        class Bucket(serializers.Serializer):
            key = serializers.CharField()
            days_from = serializers.IntegerField(allow_null=True, source="first_day")
            days_to = serializers.IntegerField(allow_null=True, source="last_day")
            count = serializers.IntegerField()
            amount = serializers.DecimalField(max_digits=14, decimal_places=2)

        today = serializers.DateField()
        open = _Figure()
        overdue = _Figure()
        paid = _Figure()
        buckets = Bucket(many=True)
        unmatched = _Figure()

    @extend_schema(
        responses={200: OutputSerializer},
        examples=[
            OpenApiExample(
                "Today",
                response_only=True,
                value={
                    "today": "2026-12-15",
                    "open": {"count": 18240, "amount": "5412380.00"},
                    "overdue": {"count": 2310, "amount": "701220.00"},
                    "paid": {"count": 391004, "amount": "136552090.00"},
                    "buckets": [
                        {
                            "key": "not_due",
                            "days_from": None,
                            "days_to": -1,
                            "count": 15930,
                            "amount": "4711160.00",
                        },
                        {
                            "key": "0-30",
                            "days_from": 0,
                            "days_to": 30,
                            "count": 1804,
                            "amount": "540120.00",
                        },
                        {
                            "key": "31-60",
                            "days_from": 31,
                            "days_to": 60,
                            "count": 341,
                            "amount": "104980.00",
                        },
                        {
                            "key": "61-90",
                            "days_from": 61,
                            "days_to": 90,
                            "count": 101,
                            "amount": "33410.00",
                        },
                        {
                            "key": "90+",
                            "days_from": 91,
                            "days_to": None,
                            "count": 64,
                            "amount": "22710.00",
                        },
                    ],
                    "unmatched": {"count": 12, "amount": "3588.00"},
                },
            )
        ],
    )
    def get(self, request: Request) -> Response:
        report = receivables_report(today=timezone.localdate())
        answer = {
            "today": report.today,
            "open": {"count": report.open_count, "amount": report.open_amount},
            "overdue": {"count": report.overdue_count, "amount": report.overdue_amount},
            "paid": {"count": report.paid_count, "amount": report.paid_amount},
            "buckets": report.buckets,
            "unmatched": {"count": report.unmatched_count, "amount": report.unmatched_amount},
        }
        return Response(self.OutputSerializer(answer).data)


# --- payments ----------------------------------------------------------------------------------


class PaymentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    invoice = serializers.IntegerField(
        source="invoice_id", allow_null=True, help_text="Null while it waits to be matched"
    )
    invoice_number = serializers.CharField(source="invoice.display_number", allow_null=True)
    customer = serializers.CharField(
        source="invoice.customer.customer_number", allow_null=True, help_text="Its number"
    )
    status = serializers.ChoiceField(choices=PaymentStatus.choices)
    method = serializers.ChoiceField(choices=PaymentMethod.choices)
    amount = MoneyField(help_text="What came in, kronor (negative: a deduction or a refund)")
    surplus = MoneyField(help_text="What of it was beyond what the invoice had open")
    surplus_used = MoneyField(help_text="What of the surplus paid other invoices since")
    currency = serializers.CharField()
    paid_on = serializers.DateField()
    booked_at = serializers.DateTimeField()
    reference = serializers.CharField()
    payer = serializers.CharField()
    external_id = serializers.SerializerMethodField(
        help_text="A payment registered through the API: the id it was registered with"
    )
    bgmax_import = serializers.IntegerField(
        source="bgmax_import_id", allow_null=True, help_text="The BgMax file it came in"
    )

    def get_external_id(self, payment: Payment) -> str | None:
        key = payment.source_key
        return key.removeprefix(REGISTERED_SOURCE) if key.startswith(REGISTERED_SOURCE) else None


_PAYMENT_EXAMPLE = {
    "id": 4711,
    "invoice": 1024,
    "invoice_number": "F1000123",
    "customer": "K-1001",
    "status": "booked",
    "method": "manual",
    "amount": "299.00",
    "surplus": "0.00",
    "surplus_used": "0.00",
    "currency": "SEK",
    "paid_on": "2026-11-20",
    "booked_at": "2026-11-20T14:05:09.120000+01:00",
    "reference": "Kassa 3, butik Lund",
    "payer": "Anna Berg",
    "external_id": "erp-2026-000123",
    "bgmax_import": None,
}


class PaymentListApi(ApiView):
    """GET: payments, newest first, by cursor; filter by ``invoice`` (id), ``status``,
    ``method`` and the day they were booked (``booked_from``, ``booked_to``: inclusive, in
    Swedish time).

    POST: register a payment received outside Touchpoint's channels (cash at a shop, a bank
    transfer the ERP booked, Swish) on an invoice named by ``invoice`` (id) or ``ocr``. It is
    booked as every payment is: beyond what is open, the rest is the payment's surplus (the
    customer's credit balance; all of it on an invoice already paid); the invoice becomes
    partly paid or paid (``invoice.paid`` is sent) and its open page shows it. Once per
    ``external_id``: 201 for a new payment, 200 with the first one when the same payment
    (invoice, amount, date, method) is registered again. Refusals (400): ``invoice_not_found``,
    ``not_an_invoice`` (a credit note), ``invoice_credited``, ``amount_not_positive``,
    ``paid_on_in_future``, ``external_id_reused`` (the id names another payment); ``invalid``
    for a field that is missing or malformed."""

    required_scope = "payments:write"
    required_permission = "invoices.add_payment"

    class FilterSerializer(serializers.Serializer):
        invoice = IdField(required=False, help_text="An invoice's id")
        status = serializers.ChoiceField(choices=PaymentStatus.choices, required=False)
        method = serializers.ChoiceField(choices=PaymentMethod.choices, required=False)
        booked_from = serializers.DateField(required=False, help_text="The first day, inclusive")
        booked_to = serializers.DateField(required=False, help_text="The last day, inclusive")

        def validate(self, data: dict[str, Any]) -> dict[str, Any]:
            return days_in_order(data, "booked_from", "booked_to")

    class InputSerializer(serializers.Serializer):
        invoice = IdField(required=False, help_text="The invoice's id (or give ocr)")
        ocr = StrictCharField(
            required=False, max_length=25, help_text="The invoice's OCR reference (or invoice)"
        )
        amount = serializers.DecimalField(
            max_digits=12, decimal_places=2, help_text="Kronor received, above 0"
        )
        paid_on = serializers.DateField(help_text="The day the customer paid, today at the latest")
        method = serializers.ChoiceField(
            choices=sorted(REGISTRABLE_METHODS),
            default=PaymentMethod.MANUAL.value,
            help_text="manual (cash, a bank transfer) or swish",
        )
        reference = StrictCharField(
            max_length=35, required=False, default="", allow_blank=True, help_text="Your note"
        )
        payer = StrictCharField(max_length=120, required=False, default="", allow_blank=True)
        external_id = StrictCharField(
            max_length=EXTERNAL_ID_MAX_LENGTH,
            help_text="Your own id of the payment, unique across your systems: the same id "
            "registers the payment once",
        )

        def validate(self, data: dict[str, Any]) -> dict[str, Any]:
            if ("invoice" in data) == ("ocr" in data):
                raise serializers.ValidationError(
                    {"invoice": ["Name the invoice by its id or by its OCR reference, not both."]}
                )
            return data

    def get_permissions(self) -> list[Any]:
        if self.request.method == "GET":
            self.required_scope, self.required_permission = "read", "invoices.view_payment"
        return super().get_permissions()

    @extend_schema(
        parameters=[FilterSerializer],
        responses=paginated(PaymentSerializer),
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={"next": None, "previous": None, "results": [_PAYMENT_EXAMPLE]},
            )
        ],
    )
    def get(self, request: Request) -> Response:
        return self.page_of(payments_filtered(**self.filters()), PaymentSerializer)

    @extend_schema(
        request=InputSerializer,
        responses={201: PaymentSerializer, 200: PaymentSerializer},
        examples=[
            OpenApiExample(
                "Cash at a shop, by OCR",
                request_only=True,
                value={
                    "ocr": "10001234569",
                    "amount": "299.00",
                    "paid_on": "2026-11-20",
                    "method": "manual",
                    "reference": "Kassa 3, butik Lund",
                    "payer": "Anna Berg",
                    "external_id": "erp-2026-000123",
                },
            ),
            OpenApiExample(
                "Swish, by invoice id",
                request_only=True,
                value={
                    "invoice": 1024,
                    "amount": "150.00",
                    "paid_on": "2026-11-21",
                    "method": "swish",
                    "external_id": "swish-8f2c61a0",
                },
            ),
            OpenApiExample(
                "Booked", response_only=True, status_codes=["201"], value=_PAYMENT_EXAMPLE
            ),
            error_example(
                "A credit note named", 400, "not_an_invoice", "A credit note is not paid."
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        given = self.InputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        done = payment_register(
            invoice_id=data.get("invoice"),
            ocr=data.get("ocr"),
            amount=data["amount"],
            paid_on=data["paid_on"],
            method=data["method"],
            reference=data["reference"],
            payer=data["payer"],
            external_id=data["external_id"],
        )
        answer = PaymentSerializer(payment_get_for_api(done.payment.id)).data
        return Response(
            answer, status=status.HTTP_201_CREATED if done.created else status.HTTP_200_OK
        )


class PaymentDetailApi(ApiView):
    """One payment: how it came, what it paid, what of it was beyond its invoice."""

    required_scope = "read"
    required_permission = "invoices.view_payment"

    @extend_schema(
        responses=PaymentSerializer,
        examples=[OpenApiExample("Registered by hand", value=_PAYMENT_EXAMPLE)],
    )
    def get(self, request: Request, payment_id: int) -> Response:
        return Response(PaymentSerializer(payment_get_for_api(payment_id)).data)


# --- the accounting export ---------------------------------------------------------------------


class PeriodDayField(serializers.DateField):
    """A day, YYYY-MM-DD, 1900–2199."""

    def to_internal_value(self, value: Any) -> date:
        day: date = super().to_internal_value(value)
        if not 1900 <= day.year <= 2199:
            self.fail("invalid", format="YYYY-MM-DD, 1900–2199")
        return day


SIE_EXAMPLE = """#FLAGGA 0
#PROGRAM "Touchpoint" "0.1.0"
#FORMAT PC8
#GEN 20261203 "Ekonomi"
#SIETYP 4
#ORGNR 556677-8899
#FNAMN "Nordtele AB"
#RAR 0 20260101 20261231
#KPTYP EUBAS97
#VALUTA SEK
#KONTO 1510 "Kundfordringar"
#KONTO 1930 "Företagskonto/checkkonto/affärskonto"
#KONTO 2611 "Utgående moms på försäljning inom Sverige, 25 %"
#KONTO 3001 "Försäljning inom Sverige, 25 % moms"
#VER F "" 20261101 "Faktura 100001, kund C0000001" 20261101
{
#TRANS 1510 {} 299.00
#TRANS 3001 {} -239.20
#TRANS 2611 {} -59.80
}
#VER I "" 20261105 "Betalning 1 (Bankgiro), faktura 100001" 20261106
{
#TRANS 1930 {} 299.00
#TRANS 1510 {} -299.00
}
"""


class AccountingSieApi(ApiView):
    """The accounting export: every invoice, credit note, fee, interest charge and payment
    dated ``from`` through ``to`` (both included) as a balanced verification, in an SIE 4I
    file (code page 437) for a Swedish bookkeeping program, named
    ``touchpoint-YYYYMMDD-YYYYMMDD.si``. The accounts are finance staff's settings in the
    admin. 400 ``invalid`` for a missing or wrong date, ``period_invalid`` when ``from`` comes
    after ``to``, ``vat_rate_without_account`` when a document has a VAT rate without a
    revenue account (nothing is sent then)."""

    required_scope = "read"
    required_permission = "invoices.export_accounting"

    class FilterSerializer(serializers.Serializer):
        # ("from" is a Python word: the fields are named here)
        def get_fields(self) -> dict[str, serializers.Field]:
            return {
                "from": PeriodDayField(help_text="The first day, YYYY-MM-DD"),
                "to": PeriodDayField(help_text="The last day, YYYY-MM-DD"),
            }

    @extend_schema(
        parameters=[FilterSerializer],
        responses={
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The SIE 4I file, in code page 437 (IBM437), lines ending CR LF",
                examples=[
                    OpenApiExample(
                        "An invoice and its payment",
                        value=SIE_EXAMPLE,
                        media_type="text/plain",
                        response_only=True,
                    )
                ],
            )
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        given = self.filters()
        first, last = given["from"], given["to"]
        user = request.user
        made = accounting_sie_file(
            first=first,
            last=last,
            generated_by=user.get_username() if isinstance(user, User) else "",
        )
        return download_response(
            request._request,
            made,
            filename=sie_file_name(first=first, last=last),
            content_type=SIE_CONTENT_TYPE,
        )
