"""The collection export for the collection agency's integration: the claims handed to
collection with what is owed (the same rows as the admin's CSV)."""

from dataclasses import asdict
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ApiView
from core.schema import StrictCharField, days_in_order, error_example, paginated
from dunning.selectors import claim_row, collection_claims


class CollectionClaimListApi(ApiView):
    """Claims handed to collection and still with it, oldest handover first, by cursor
    (``limit``; follow ``next``), filtered by customer and the days they were handed over.
    Amounts in kronor as strings; the capital is what is unpaid of the invoice itself,
    ``interest_rate`` the yearly percent that runs on it from ``interest_from``. For the
    collection agency's integration (a key with the ``read`` scope) or finance staff who may
    view dunning cases."""

    required_scope = "read"
    required_permission = "dunning.view_dunningcase"

    @extend_schema_serializer(component_name="CollectionClaim")
    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        case_id = serializers.IntegerField()
        invoice_number = serializers.CharField()
        ocr = serializers.CharField()
        invoice_date = serializers.DateField()
        original_due_date = serializers.DateField()
        handed_over_at = serializers.CharField()
        customer_number = serializers.CharField()
        name = serializers.CharField()
        address = serializers.CharField()
        postal_code = serializers.CharField()
        city = serializers.CharField()
        email = serializers.CharField()
        phone = serializers.CharField()
        currency = serializers.CharField()
        capital = serializers.DecimalField(max_digits=14, decimal_places=2)
        fees = serializers.DecimalField(max_digits=14, decimal_places=2)
        interest = serializers.DecimalField(max_digits=14, decimal_places=2)
        total = serializers.DecimalField(max_digits=14, decimal_places=2)
        interest_rate = serializers.DecimalField(max_digits=5, decimal_places=2)
        interest_from = serializers.DateField()

    class Pagination(CursorPagination):
        ordering = ("handed_over_at", "id")
        page_size = 100
        page_size_query_param = "limit"
        max_page_size = 1000

    class FilterSerializer(serializers.Serializer):  # type: ignore[type-arg]
        customer = StrictCharField(max_length=32, required=False, help_text="Customer number")
        handed_over_from = serializers.DateField(
            required=False, help_text="Handed over on this day or later (Swedish time)"
        )
        handed_over_to = serializers.DateField(
            required=False, help_text="Handed over on this day or earlier (Swedish time)"
        )

        def validate(self, data: dict[str, Any]) -> dict[str, Any]:
            return days_in_order(data, "handed_over_from", "handed_over_to")

    @extend_schema(
        parameters=[FilterSerializer],
        responses=paginated(OutputSerializer),
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={
                    "next": "https://touchpoint.example/api/v1/dunning/collection-claims/"
                    "?cursor=cD0yMDI3LTAxLTIw",
                    "previous": None,
                    "results": [
                        {
                            "case_id": 381,
                            "invoice_number": "100231",
                            "ocr": "1002314",
                            "invoice_date": "2026-11-01",
                            "original_due_date": "2026-11-30",
                            "handed_over_at": "2027-01-20T09:12:44+01:00",
                            "customer_number": "K-1001",
                            "name": "Anna Berg",
                            "address": "Storgatan 1",
                            "postal_code": "111 22",
                            "city": "Stockholm",
                            "email": "anna.berg@example.se",
                            "phone": "+46701234567",
                            "currency": "SEK",
                            "capital": "349.00",
                            "fees": "60.00",
                            "interest": "4.78",
                            "total": "413.78",
                            "interest_rate": "10.00",
                            "interest_from": "2026-12-01",
                        }
                    ],
                },
            ),
            error_example(
                "Days the wrong way round",
                400,
                "invalid",
                "Some fields are wrong.",
                fields={"handed_over_to": ["The last day comes before the first."]},
            ),
        ],
    )
    def get(self, request: Request) -> Response:
        data = self.filters()
        found = collection_claims(
            customer_number=data.get("customer"),
            handed_over_from=data.get("handed_over_from"),
            handed_over_to=data.get("handed_over_to"),
        )
        paginator = self.Pagination()
        page = paginator.paginate_queryset(found, request, view=self) or []
        rows = [asdict(claim_row(case)) for case in page]
        return paginator.get_paginated_response(self.OutputSerializer(rows, many=True).data)
