"""The API of customers (with their consents), the plan catalogue and subscriptions, for the
operator's CRM: the same services as the admin (``billing.services``), each write recorded
with ``via="api"``."""

from datetime import date
from decimal import Decimal
from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from billing.models import (
    ConsentKind,
    Customer,
    DeliveryMethod,
    Language,
    Plan,
    PlanKind,
    Subscription,
    SubscriptionStatus,
)
from billing.services import (
    ChangeTiming,
    consent_give,
    consent_withdraw,
    customer_create,
    customer_update,
    plan_change_request,
    subscription_create,
    subscription_end,
)
from core.api import ApiView
from core.schema import StrictCharField, error_example, page_example, paginated

VIA = "api"

# --- examples (shown in /api/docs/; schemathesis sends the request examples in CI) -------------

CUSTOMER_EXAMPLE = {
    "customer_number": "K-1001",
    "name": "Anna Berg",
    "email": "anna.berg@example.se",
    "phone": "+46701234567",
    "language": "sv",
    "address": "Storgatan 1",
    "postal_code": "111 22",
    "city": "Stockholm",
    "delivery_method": "email",
    "billing_group": "default",
    "consents": [
        {
            "kind": "personalised_offers",
            "given_at": "2026-11-03T14:05:00+01:00",
            "source": "crm",
            "withdrawn_at": None,
        }
    ],
}
SUBSCRIPTION_EXAMPLE = {
    "id": 4711,
    "customer": "K-1001",
    "plan": "mobil-10",
    "identifier": "46701234567",
    "label": "Anna",
    "agreed_monthly_price": "249.00",
    "start_date": "2026-12-01",
    "end_date": None,
    "binding_end": "2027-11-30",
    "status": "active",
}


NOT_FOUND = error_example("Not found", 404, "not_found", "No such customer.")


class ByIdPagination(CursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000


# the subscriptions list's filters, as lookups
_SUBSCRIPTION_FILTERS = {
    "customer": "customer__customer_number",
    "plan": "plan__code",
    "status": "status",
    "identifier": "identifier",
}


def _customer(number: str) -> Customer:
    found = Customer.objects.filter(customer_number=number).first()
    if found is None:
        raise Http404("No such customer.")
    return found


# --- customers ---------------------------------------------------------------------------------


class ConsentSerializer(serializers.Serializer):
    kind = serializers.CharField()
    given_at = serializers.DateTimeField()
    source = serializers.CharField()
    withdrawn_at = serializers.DateTimeField(allow_null=True)


class CustomerSerializer(serializers.Serializer):
    customer_number = serializers.CharField()
    name = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()
    language = serializers.CharField()
    address = serializers.CharField()
    postal_code = serializers.CharField()
    city = serializers.CharField()
    delivery_method = serializers.CharField()
    billing_group = serializers.CharField()
    consents = serializers.SerializerMethodField()

    def get_consents(self, customer: Customer) -> list[dict[str, Any]]:
        # (a page of customers has them prefetched: one query for the page, not one each)
        consents = sorted(customer.consents.all(), key=lambda consent: consent.id)
        return list(ConsentSerializer(consents, many=True).data)


class CustomerFieldsSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.RegexField(r"^\+?[0-9 ]{5,31}$", required=False, allow_blank=True)
    language = serializers.ChoiceField(choices=Language.choices, required=False)
    address = StrictCharField(max_length=200, required=False, allow_blank=True)
    postal_code = StrictCharField(max_length=10, required=False, allow_blank=True)
    city = StrictCharField(max_length=100, required=False, allow_blank=True)
    delivery_method = serializers.ChoiceField(choices=DeliveryMethod.choices, required=False)
    billing_group = StrictCharField(max_length=20, required=False)


class CustomerListApi(ApiView):
    """GET: customers by id, by cursor, filtered by billing group, delivery method and
    language. POST: a new customer under the source's number (400 ``customer_exists`` when
    taken)."""

    required_scope = "billing:write"
    required_permission = "billing.add_customer"

    class InputSerializer(CustomerFieldsSerializer):
        customer_number = StrictCharField(max_length=32)

    class FilterSerializer(serializers.Serializer):
        billing_group = StrictCharField(max_length=20, required=False)
        delivery_method = serializers.ChoiceField(choices=DeliveryMethod.choices, required=False)
        language = serializers.ChoiceField(choices=Language.choices, required=False)

    def get_permissions(self) -> list[Any]:
        if self.request.method == "GET":
            self.required_scope, self.required_permission = "read", "billing.view_customer"
        return super().get_permissions()

    @extend_schema(
        parameters=[FilterSerializer],
        responses=paginated(CustomerSerializer),
        examples=[
            OpenApiExample(
                "A page", response_only=True, value=page_example("customers", CUSTOMER_EXAMPLE)
            )
        ],
    )
    def get(self, request: Request) -> Response:
        found = Customer.objects.filter(**self.filters())
        found = found.prefetch_related("consents")
        pages = ByIdPagination()
        page = pages.paginate_queryset(found, request, view=self) or []
        return pages.get_paginated_response(CustomerSerializer(page, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: CustomerSerializer},
        examples=[
            OpenApiExample(
                "A new customer",
                request_only=True,
                value={
                    key: value
                    for key, value in CUSTOMER_EXAMPLE.items()
                    if key not in {"billing_group", "consents"}
                },
            ),
            OpenApiExample(
                "Created",
                response_only=True,
                status_codes=["201"],
                value={**CUSTOMER_EXAMPLE, "consents": []},
            ),
            error_example(
                "The number is taken",
                400,
                "customer_exists",
                "Customer K-1001 exists already.",
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        given = self.InputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        customer = customer_create(**given.validated_data)
        return Response(CustomerSerializer(customer).data, status=status.HTTP_201_CREATED)


class CustomerDetailApi(ApiView):
    """GET: one customer with their consents. PATCH: change details (what is not sent stays;
    issued invoices keep the details they were issued with)."""

    required_scope = "billing:write"
    required_permission = "billing.change_customer"

    class InputSerializer(CustomerFieldsSerializer):
        name = StrictCharField(max_length=200, required=False)

    def get_permissions(self) -> list[Any]:
        if self.request.method == "GET":
            self.required_scope, self.required_permission = "read", "billing.view_customer"
        return super().get_permissions()

    @extend_schema(
        responses=CustomerSerializer,
        examples=[
            OpenApiExample("A customer", response_only=True, value=CUSTOMER_EXAMPLE),
            NOT_FOUND,
        ],
    )
    def get(self, request: Request, number: str) -> Response:
        return Response(CustomerSerializer(_customer(number)).data)

    @extend_schema(
        request=InputSerializer,
        responses=CustomerSerializer,
        examples=[
            OpenApiExample(
                "A move", request_only=True, value={"address": "Kungsgatan 5", "city": "Lund"}
            ),
            OpenApiExample(
                "Changed",
                response_only=True,
                value={**CUSTOMER_EXAMPLE, "address": "Kungsgatan 5", "city": "Lund"},
            ),
            error_example(
                "A bad address",
                400,
                "invalid",
                "Some fields are wrong.",
                fields={"email": ["Enter a valid email address."]},
            ),
            NOT_FOUND,
        ],
    )
    def patch(self, request: Request, number: str) -> Response:
        customer = _customer(number)
        given = self.InputSerializer(data=request.data, partial=True)
        given.is_valid(raise_exception=True)
        customer = customer_update(customer_id=customer.id, **given.validated_data)
        return Response(CustomerSerializer(customer).data)


class CustomerConsentApi(ApiView):
    """Give or withdraw a consent (samtycke), recorded with its time and the source."""

    required_scope = "billing:write"
    required_permission = "billing.change_customer"

    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=ConsentKind.choices)
        given = serializers.BooleanField()
        source = StrictCharField(max_length=64, default="api")

    @extend_schema(
        request=InputSerializer,
        responses=CustomerSerializer,
        examples=[
            OpenApiExample(
                "Consent given in the shop",
                request_only=True,
                value={"kind": "personalised_offers", "given": True, "source": "shop"},
            ),
            OpenApiExample(
                "Withdrawn", request_only=True, value={"kind": "marketing_sms", "given": False}
            ),
            OpenApiExample("The customer now", response_only=True, value=CUSTOMER_EXAMPLE),
            NOT_FOUND,
        ],
    )
    def post(self, request: Request, number: str) -> Response:
        customer = _customer(number)
        given = self.InputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        change = consent_give if data["given"] else consent_withdraw
        change(customer_id=customer.id, kind=data["kind"], source=data["source"])
        return Response(CustomerSerializer(customer).data)


# --- plans -------------------------------------------------------------------------------------


class PlanSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    monthly_fee = serializers.DecimalField(max_digits=10, decimal_places=2)
    data_included_gb = serializers.DecimalField(max_digits=8, decimal_places=2, allow_null=True)
    voice_included_minutes = serializers.IntegerField(allow_null=True)
    sms_included = serializers.IntegerField(allow_null=True)
    binding_months_options = serializers.ListField(child=serializers.IntegerField())
    available_for_new_customers = serializers.BooleanField()


class PlanListApi(ApiView):
    """The plan catalogue by cursor (null included: unlimited), filtered by ``kind`` and by
    whether a plan is sold to new customers (``available``)."""

    required_scope = "read"
    required_permission = "billing.view_plan"

    class FilterSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=PlanKind.choices, required=False)
        available = serializers.BooleanField(
            required=False, help_text="Sold to new customers", default=None, allow_null=True
        )

    @extend_schema(
        parameters=[FilterSerializer],
        responses=paginated(PlanSerializer),
        examples=[
            OpenApiExample(
                "The catalogue",
                response_only=True,
                value={
                    "next": None,
                    "previous": None,
                    "results": [
                        {
                            "code": "mobil-10",
                            "name": "Mobil 10 GB",
                            "kind": "mobile",
                            "monthly_fee": "249.00",
                            "data_included_gb": "10.00",
                            "voice_included_minutes": None,
                            "sms_included": None,
                            "binding_months_options": [0, 12, 24],
                            "available_for_new_customers": True,
                        }
                    ],
                },
            )
        ],
    )
    def get(self, request: Request) -> Response:
        given = self.filters()
        found = Plan.objects.all()
        if given.get("kind"):
            found = found.filter(kind=given["kind"])
        if given.get("available") is not None:
            found = found.filter(available_for_new_customers=given["available"])
        pages = ByIdPagination()
        page = pages.paginate_queryset(found, request, view=self) or []
        return pages.get_paginated_response(PlanSerializer(page, many=True).data)


# --- subscriptions ----------------------------------------------------------------------------


class SubscriptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    customer = serializers.CharField(source="customer.customer_number")
    plan = serializers.CharField(source="plan.code")
    identifier = serializers.CharField()
    label = serializers.CharField()
    agreed_monthly_price = serializers.DecimalField(max_digits=10, decimal_places=2)
    start_date = serializers.DateField()
    end_date = serializers.DateField(allow_null=True)
    binding_end = serializers.DateField(allow_null=True)
    status = serializers.CharField()


def _plan(code: str) -> Plan:
    found = Plan.objects.filter(code=code).first()
    if found is None:
        raise serializers.ValidationError({"plan": [f"No plan {code}."]})
    return found


def _subscription(subscription_id: int) -> Subscription:
    found = (
        Subscription.objects.select_related("customer", "plan").filter(id=subscription_id).first()
    )
    if found is None:
        raise Http404("No such subscription.")
    return found


class SubscriptionListApi(ApiView):
    """GET: subscriptions by id, filtered by customer (number), plan (code), status and
    identifier (MSISDN or line id). POST: a new subscription for a customer on a plan (its
    list price unless ``agreed_monthly_price``)."""

    required_scope = "billing:write"
    required_permission = "billing.add_subscription"

    class InputSerializer(serializers.Serializer):
        customer = StrictCharField(max_length=32, help_text="The customer number")
        plan = StrictCharField(max_length=40, help_text="The plan's code")
        identifier = StrictCharField(max_length=40, help_text="MSISDN or line id")
        label = StrictCharField(max_length=60, required=False, default="")
        start_date = serializers.DateField()
        agreed_monthly_price = serializers.DecimalField(
            max_digits=10, decimal_places=2, min_value=Decimal(0), required=False
        )
        binding_end = serializers.DateField(required=False)

    class FilterSerializer(serializers.Serializer):
        customer = StrictCharField(max_length=32, required=False, help_text="Customer number")
        plan = StrictCharField(max_length=40, required=False, help_text="The plan's code")
        status = serializers.ChoiceField(choices=SubscriptionStatus.choices, required=False)
        identifier = StrictCharField(max_length=40, required=False, help_text="MSISDN or line")

    def get_permissions(self) -> list[Any]:
        if self.request.method == "GET":
            self.required_scope, self.required_permission = "read", "billing.view_subscription"
        return super().get_permissions()

    @extend_schema(
        parameters=[FilterSerializer],
        responses=paginated(SubscriptionSerializer),
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value=page_example("subscriptions", SUBSCRIPTION_EXAMPLE),
            )
        ],
    )
    def get(self, request: Request) -> Response:
        given = self.filters()
        found = Subscription.objects.select_related("customer", "plan").filter(
            **{_SUBSCRIPTION_FILTERS[name]: value for name, value in given.items()}
        )
        pages = ByIdPagination()
        page = pages.paginate_queryset(found, request, view=self) or []
        return pages.get_paginated_response(SubscriptionSerializer(page, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: SubscriptionSerializer},
        examples=[
            OpenApiExample(
                "A new line",
                request_only=True,
                value={
                    "customer": "K-1001",
                    "plan": "mobil-10",
                    "identifier": "46701234567",
                    "label": "Anna",
                    "start_date": "2026-12-01",
                    "binding_end": "2027-11-30",
                },
            ),
            OpenApiExample(
                "Created", response_only=True, status_codes=["201"], value=SUBSCRIPTION_EXAMPLE
            ),
            error_example(
                "An unknown plan",
                400,
                "invalid",
                "Some fields are wrong.",
                fields={"plan": ["No plan mobil-99."]},
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        given = self.InputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        customer = Customer.objects.filter(customer_number=data["customer"]).first()
        if customer is None:
            raise serializers.ValidationError({"customer": [f"No customer {data['customer']}."]})
        made = subscription_create(
            customer_id=customer.id,
            plan_id=_plan(data["plan"]).id,
            identifier=data["identifier"],
            label=data["label"],
            start_date=data["start_date"],
            agreed_monthly_price=data.get("agreed_monthly_price"),
            binding_end=data.get("binding_end"),
            via=VIA,
        )
        shown = SubscriptionSerializer(_subscription(made.id)).data
        return Response(shown, status=status.HTTP_201_CREATED)


class SubscriptionDetailApi(ApiView):
    required_scope = "read"
    required_permission = "billing.view_subscription"

    @extend_schema(
        responses=SubscriptionSerializer,
        examples=[
            OpenApiExample("A subscription", response_only=True, value=SUBSCRIPTION_EXAMPLE),
            error_example("Not found", 404, "not_found", "No such subscription."),
        ],
    )
    def get(self, request: Request, subscription_id: int) -> Response:
        return Response(SubscriptionSerializer(_subscription(subscription_id)).data)


class SubscriptionChangePlanApi(ApiView):
    """Change a subscription's plan, exactly once per ``idempotency_key`` (the rules of the
    binding period apply: a downgrade within it is refused with ``binding_period_active``)."""

    required_scope = "billing:write"
    required_permission = "billing.change_subscription"

    class InputSerializer(serializers.Serializer):
        plan = StrictCharField(max_length=40)
        timing = serializers.ChoiceField(
            choices=[t.value for t in ChangeTiming], default=ChangeTiming.NEXT_PERIOD.value
        )
        binding_months = serializers.IntegerField(min_value=0, max_value=24, default=0)
        idempotency_key = StrictCharField(max_length=64)

    class OutputSerializer(serializers.Serializer):
        change = serializers.IntegerField()
        created = serializers.BooleanField()
        status = serializers.CharField()
        effective_date = serializers.DateField()
        cooling_off_until = serializers.DateField()

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer, 200: OutputSerializer},
        examples=[
            OpenApiExample(
                "To a larger plan from next month",
                request_only=True,
                value={
                    "plan": "mobil-50",
                    "timing": "next_period",
                    "binding_months": 0,
                    "idempotency_key": "crm-case-88121",
                },
            ),
            OpenApiExample(
                "Made",
                response_only=True,
                status_codes=["201"],
                value={
                    "change": 912,
                    "created": True,
                    "status": "scheduled",
                    "effective_date": "2027-01-01",
                    "cooling_off_until": "2026-12-15",
                },
            ),
            OpenApiExample(
                "The same key again: the change made before",
                response_only=True,
                status_codes=["200"],
                value={
                    "change": 912,
                    "created": False,
                    "status": "scheduled",
                    "effective_date": "2027-01-01",
                    "cooling_off_until": "2026-12-15",
                },
            ),
            error_example(
                "A cheaper plan within the binding period",
                400,
                "binding_period_active",
                "Your binding period runs until 2027-11-30: you can move to a cheaper plan from "
                "the day after. A bigger plan is always possible.",
            ),
        ],
    )
    def post(self, request: Request, subscription_id: int) -> Response:
        subscription = _subscription(subscription_id)
        given = self.InputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        done = plan_change_request(
            subscription_id=subscription.id,
            to_plan_id=_plan(data["plan"]).id,
            requested_via=VIA,
            idempotency_key=f"api:{data['idempotency_key']}",
            timing=ChangeTiming(data["timing"]),
            binding_months=data["binding_months"],
        )
        change = done.change
        return Response(
            {
                "change": change.id,
                "created": done.created,
                "status": change.status,
                "effective_date": change.effective_date,
                "cooling_off_until": change.cooling_off_until,
            },
            status=status.HTTP_201_CREATED if done.created else status.HTTP_200_OK,
        )


class SubscriptionEndApi(ApiView):
    """End a subscription on ``end_date`` (its last billed day); the same again does nothing."""

    required_scope = "billing:write"
    required_permission = "billing.change_subscription"

    class InputSerializer(serializers.Serializer):
        end_date = serializers.DateField()

    @extend_schema(
        request=InputSerializer,
        responses=SubscriptionSerializer,
        examples=[
            OpenApiExample("The last day", request_only=True, value={"end_date": "2027-03-31"}),
            OpenApiExample(
                "Ended",
                response_only=True,
                value={**SUBSCRIPTION_EXAMPLE, "status": "ended", "end_date": "2027-03-31"},
            ),
            error_example(
                "Ended before, on another day",
                400,
                "subscription_ended",
                "The subscription ended on 2027-03-31.",
            ),
        ],
    )
    def post(self, request: Request, subscription_id: int) -> Response:
        subscription = _subscription(subscription_id)
        given = self.InputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        end: date = given.validated_data["end_date"]
        subscription_end(subscription_id=subscription.id, end_date=end, via=VIA)
        return Response(SubscriptionSerializer(_subscription(subscription.id)).data)
