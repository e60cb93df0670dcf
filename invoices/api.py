"""The finance API of payments: BgMax files uploaded by a bank integration or a script, booked
exactly as the admin's upload books them (``invoices.services.payments.bgmax_import``), and
the aging report of what customers owe, as the admin's receivables overview reads it
(``invoices.selectors.receivables_report``)."""

from django.contrib.auth.models import User
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from invoices.models import BgMaxImport
from invoices.selectors import receivables_report
from invoices.services.payments import bgmax_import


class BgMaxImportCreateApi(APIView):
    """Upload a BgMax file (multipart field ``file``). 201 with what was booked; 200 with the
    first upload's figures when the same file came before (nothing is booked twice); 400
    ``bgmax_invalid`` naming the record that is wrong, and nothing booked."""

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
        request=InputSerializer, responses={201: OutputSerializer, 200: OutputSerializer}
    )
    def post(self, request: Request) -> Response:
        given = self.InputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        upload = given.validated_data["file"]
        user = request.user if isinstance(request.user, User) else None
        imported, new = bgmax_import(data=upload.read(), name=upload.name, uploaded_by=user)
        imported.new = new  # type: ignore[attr-defined]
        answer = self.OutputSerializer(imported).data
        return Response(answer, status=status.HTTP_201_CREATED if new else status.HTTP_200_OK)


class _Figure(serializers.Serializer):
    count = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="kronor")


class AgingReportApi(APIView):
    """What customers owe today (Europe/Stockholm): open invoices (money open), the overdue
    ones, the paid ones (their totals), the open ones by days past their due date (buckets
    ``not_due``, ``0-30``, ``31-60``, ``61-90``, ``90+``: ``days_from``–``days_to``, either
    open-ended when null), and the payments waiting to be matched by hand. Amounts are
    kronor, as strings. Read-only."""

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

    @extend_schema(responses={200: OutputSerializer})
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
