"""The usage API: usage records from mediation and other source systems, as a JSON batch of up
to 10,000 records or as a CSV file of any size, checked and stored by
``billing.usage_ingest`` (the rules are there).

Both answer 200 with what was received, stored, already there (duplicates) and rejected,
naming each rejected record; with ``all_or_nothing`` one rejection stores nothing and the
answer is 400 ``usage_rejected`` with the same figures."""

import json
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from billing.models import UsageKind
from billing.usage_ingest import (
    BATCH_LIMIT,
    CSV_COLUMNS,
    LISTED_REJECTIONS,
    UsageIngested,
    usage_csv_ingest,
    usage_records_ingest,
)
from core.api import ApiView


class DecimalJsonParser(JSONParser):
    """JSON whose numbers with a fraction or exponent are read as ``Decimal``: a quantity is
    never a float, not even on the way in."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return json.loads(stream.read(), parse_float=Decimal, parse_constant=_no_constant)
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _answer(ingested: UsageIngested) -> Response:
    body: dict[str, Any] = {
        "received": ingested.received,
        "stored": ingested.stored,
        "duplicates": ingested.duplicates,
        "rejected": ingested.rejected,
        "rejections": [
            {
                ingested.position: r.position,
                "source_id": r.source_id,
                "field": r.field,
                "code": r.code,
                "message": r.message,
            }
            for r in ingested.rejections
        ],
    }
    if not ingested.refused:
        return Response(body)
    count = f"{ingested.rejected} record{'s' if ingested.rejected != 1 else ''}"
    return Response(
        {
            "code": "usage_rejected",
            "message": f"{count} rejected, so nothing was stored (all_or_nothing).",
            **body,
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


# --- The schema: what the endpoints take and answer (the service checks the records) -------


class UsageRecordSchema(serializers.Serializer):
    source_id = serializers.CharField(
        max_length=64, help_text="The source's own id: a record sent again is stored once."
    )
    subscription = serializers.IntegerField(
        required=False, help_text="Touchpoint's subscription id; or send identifier."
    )
    identifier = serializers.CharField(
        required=False,
        max_length=40,
        help_text="MSISDN or line id: the subscription with it on the record's day "
        "(Europe/Stockholm); or send subscription.",
    )
    kind = serializers.ChoiceField(choices=UsageKind.choices)
    quantity = serializers.DecimalField(
        max_digits=14,
        decimal_places=3,
        min_value=Decimal(0),
        help_text="In the kind's unit: MB, seconds or messages. A string or a JSON number.",
    )
    occurred_at = serializers.DateTimeField(help_text="ISO 8601 with a time zone.")
    country = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2,
        help_text="ISO 3166 alpha-2 when abroad; empty or left out at home.",
    )


class UsageBatchSchema(serializers.Serializer):
    records = UsageRecordSchema(many=True, max_length=BATCH_LIMIT)
    all_or_nothing = serializers.BooleanField(
        default=False, help_text="One rejected record and nothing is stored (answer 400)."
    )


class UsageFileSchema(serializers.Serializer):
    file = serializers.FileField(
        help_text="CSV, UTF-8, comma-separated, one record a line; line 1 names the columns, "
        f"in any order, of: {', '.join(CSV_COLUMNS)} (subscription or identifier; country "
        "may be left out)."
    )
    all_or_nothing = serializers.BooleanField(
        default=False, help_text="One rejected line and nothing is stored (answer 400)."
    )


class _RejectionSchema(serializers.Serializer):
    source_id = serializers.CharField(allow_null=True)
    field = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()


class BatchRejectionSchema(_RejectionSchema):
    index = serializers.IntegerField(help_text="The record's place in records, from 0.")


class FileRejectionSchema(_RejectionSchema):
    line = serializers.IntegerField(help_text="The record's line; the header is line 1.")


class _IngestedSchema(serializers.Serializer):
    received = serializers.IntegerField()
    stored = serializers.IntegerField(help_text="New records stored.")
    duplicates = serializers.IntegerField(
        help_text="Records whose source_id was stored already or came earlier in this request."
    )
    rejected = serializers.IntegerField()


class BatchIngestedSchema(_IngestedSchema):
    rejections = BatchRejectionSchema(many=True)


class FileIngestedSchema(_IngestedSchema):
    rejections = FileRejectionSchema(
        many=True, help_text=f"The first {LISTED_REJECTIONS:,}, in order of line."
    )


class _RefusedSchema(serializers.Serializer):
    """A 400: the figures and rejections with ``usage_rejected``; ``code``, ``message`` and
    ``fields`` alone for a malformed request (``invalid``)."""

    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.JSONField(), required=False)
    received = serializers.IntegerField(required=False)
    stored = serializers.IntegerField(required=False)
    duplicates = serializers.IntegerField(required=False)
    rejected = serializers.IntegerField(required=False)


class BatchRefusedSchema(_RefusedSchema):
    code = serializers.CharField(help_text="usage_rejected; or invalid for a malformed request.")
    rejections = BatchRejectionSchema(many=True, required=False)


class FileRefusedSchema(_RefusedSchema):
    code = serializers.CharField(
        help_text="usage_rejected; usage_file_invalid for a file that is not CSV with a usable "
        "header (nothing stored); or invalid."
    )
    rejections = FileRejectionSchema(many=True, required=False)


def _answer_example(position: str, at: int) -> OpenApiExample:
    """The answer to the request's example: its second record rejected, at ``at``."""
    rejection = {
        position: at,
        "source_id": "med-20261103-0002",
        "field": "quantity",
        "code": "quantity_negative",
        "message": "quantity may not be negative.",
    }
    return OpenApiExample(
        "One stored, one rejected",
        response_only=True,
        status_codes=["200"],
        value={
            "received": 2,
            "stored": 1,
            "duplicates": 0,
            "rejected": 1,
            "rejections": [rejection],
        },
    )


class UsageRecordsIngestApi(ApiView):
    """A batch of at most 10,000 usage records as JSON; rejections name each record's index.
    More records than that: 400 ``invalid`` naming the limit, nothing stored."""

    required_scope = "usage:write"
    required_permission = "billing.add_usagerecord"
    parser_classes = [DecimalJsonParser]

    @extend_schema(
        request=UsageBatchSchema,
        responses={200: BatchIngestedSchema, 400: BatchRefusedSchema},
        examples=[
            OpenApiExample(
                "Two records",
                request_only=True,
                value={
                    "records": [
                        {
                            "source_id": "med-20261103-0001",
                            "identifier": "46701234567",
                            "kind": "data",
                            "quantity": "512.250",
                            "occurred_at": "2026-11-03T14:05:00+01:00",
                            "country": "",
                        },
                        {
                            "source_id": "med-20261103-0002",
                            "subscription": 4711,
                            "kind": "voice",
                            "quantity": -61,
                            "occurred_at": "2026-11-03T13:05:00Z",
                            "country": "US",
                        },
                    ],
                    "all_or_nothing": False,
                },
            ),
            _answer_example("index", 1),
        ],
    )
    def post(self, request: Request) -> Response:
        data = request.data
        if not isinstance(data, dict):
            raise ValidationError(
                {"records": ['Send {"records": [...], "all_or_nothing": false}.']}
            )
        known = UsageBatchSchema().fields
        errors = {name: ["Unknown field."] for name in data if name not in known}
        records = data.get("records")
        if not isinstance(records, list):
            errors["records"] = ["A list of usage records is required."]
        elif len(records) > BATCH_LIMIT:
            errors["records"] = [
                f"At most {BATCH_LIMIT:,} records per request ({len(records):,} sent): send the "
                "rest in more requests, or upload a CSV file to /api/v1/usage/files/."
            ]
        all_or_nothing = data.get("all_or_nothing", False)
        if not isinstance(all_or_nothing, bool):
            errors["all_or_nothing"] = ["Must be true or false."]
        if errors or not isinstance(records, list):
            raise ValidationError(errors)
        return _answer(usage_records_ingest(records=records, all_or_nothing=all_or_nothing))


class UsageFileIngestApi(ApiView):
    """A CSV file of usage records of any size (multipart field ``file``), read as a stream
    and on PostgreSQL loaded by COPY; rejections name each record's line."""

    required_scope = "usage:write"
    required_permission = "billing.add_usagerecord"
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": UsageFileSchema},
        responses={200: FileIngestedSchema, 400: FileRefusedSchema},
        examples=[
            OpenApiExample(
                "A file",
                request_only=True,
                media_type="multipart/form-data",
                value={
                    "file": "source_id,identifier,kind,quantity,occurred_at,country\n"
                    "med-20261103-0001,46701234567,data,512.250,2026-11-03T14:05:00+01:00,\n"
                    "med-20261103-0002,46701234567,voice,-61,2026-11-03T13:05:00Z,US\n",
                    "all_or_nothing": False,
                },
            ),
            _answer_example("line", 3),
        ],
    )
    def post(self, request: Request) -> Response:
        given = UsageFileSchema(data=request.data)
        given.is_valid(raise_exception=True)
        upload = given.validated_data["file"]
        upload.seek(0)
        ingested = usage_csv_ingest(
            stream=upload.file, all_or_nothing=given.validated_data["all_or_nothing"]
        )
        return _answer(ingested)
