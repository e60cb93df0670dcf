"""The finance API of payments: BgMax files uploaded by a bank integration or a script, booked
exactly as the admin's upload books them (``invoices.services.payments.bgmax_import``)."""

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ApiView
from invoices.models import BgMaxImport
from invoices.services.payments import bgmax_import


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
        request=InputSerializer, responses={201: OutputSerializer, 200: OutputSerializer}
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
