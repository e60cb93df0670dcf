"""The collection export for the collection agency's integration: the claims handed to
collection with what is owed (the same rows as the admin's CSV)."""

from dataclasses import asdict

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ApiView
from core.schema import paginated
from dunning.selectors import claim_row, collection_claims


class CollectionClaimListApi(ApiView):
    """Claims handed to collection and still with it, oldest handover first, by cursor
    (``limit``; follow ``next``). Amounts in kronor as strings; the capital is what is unpaid of the
    invoice itself, ``interest_rate`` the yearly percent that runs on it from
    ``interest_from``. For the collection agency's integration (a key with the ``read``
    scope) or finance staff who may view dunning cases."""

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

    @extend_schema(responses=paginated(OutputSerializer))
    def get(self, request: Request) -> Response:
        paginator = self.Pagination()
        page = paginator.paginate_queryset(collection_claims(), request, view=self) or []
        rows = [asdict(claim_row(case)) for case in page]
        return paginator.get_paginated_response(self.OutputSerializer(rows, many=True).data)
