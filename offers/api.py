"""The API of offers and plan changes, for the operator's shop, call centre and CRM: offers
listed and read, and accepted when the customer accepted one through another channel
(``offer_accept_from_api``, the page's rules); plan changes listed and read, and undone as
the customer may undo them (``plan_change_undo_and_correct``). A plan change is asked for
with ``POST /api/v1/subscriptions/<id>/change-plan/`` (``billing.api_resources``)."""

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing.models import PlanChangeStatus
from billing.services import ChangeTiming, binding_months_options
from core.api import ApiView
from core.schema import IdField, MoneyField, StrictCharField, paginated
from invoices.services.corrections import plan_change_undo_and_correct
from offers.models import Offer, OfferStatus
from offers.selectors import (
    offer_get_for_api,
    offers_for_api,
    plan_change_get_for_api,
    plan_changes_for_api,
)
from offers.services import API_SOURCE, offer_accept_from_api

# --- plan changes ------------------------------------------------------------------------------


class PlanChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    subscription = serializers.IntegerField(source="subscription_id")
    customer = serializers.CharField(source="subscription.customer.customer_number")
    identifier = serializers.CharField(source="subscription.identifier")
    from_plan = serializers.CharField(source="from_plan.code")
    to_plan = serializers.CharField(source="to_plan.code")
    from_price = MoneyField(help_text="Monthly, kronor incl. VAT")
    to_price = MoneyField(help_text="Monthly, kronor incl. VAT")
    from_binding_end = serializers.DateField(allow_null=True)
    to_binding_end = serializers.DateField(allow_null=True)
    effective_date = serializers.DateField()
    status = serializers.ChoiceField(
        choices=PlanChangeStatus.choices,
        help_text="scheduled: takes effect on effective_date; applied; undone: never happened",
    )
    requested_via = serializers.CharField(help_text="invoice_page, chat, api, admin, …")
    requested_at = serializers.DateTimeField()
    cooling_off_until = serializers.DateField(help_text="The last day it may be undone")
    applied_at = serializers.DateTimeField(allow_null=True)
    undone_at = serializers.DateTimeField(allow_null=True)


_PLAN_CHANGE_EXAMPLE = {
    "id": 812,
    "subscription": 4711,
    "customer": "K-1001",
    "identifier": "+46701112233",
    "from_plan": "mobil-30",
    "to_plan": "mobil-10",
    "from_price": "399.00",
    "to_price": "249.00",
    "from_binding_end": None,
    "to_binding_end": None,
    "effective_date": "2026-12-01",
    "status": "scheduled",
    "requested_via": "api",
    "requested_at": "2026-11-20T10:14:03.551000+01:00",
    "cooling_off_until": "2026-12-04",
    "applied_at": None,
    "undone_at": None,
}


class PlanChangeListApi(ApiView):
    """Plan changes, newest first, by cursor; filter by ``customer`` (customer number),
    ``subscription`` (id) and ``status``."""

    required_scope = "read"
    required_permission = "billing.view_planchange"

    class FilterSerializer(serializers.Serializer):
        customer = StrictCharField(required=False, help_text="A customer number")
        subscription = IdField(required=False, help_text="A subscription's id")
        status = serializers.ChoiceField(choices=PlanChangeStatus.choices, required=False)

    @extend_schema(
        parameters=[FilterSerializer],
        responses=paginated(PlanChangeSerializer),
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={"next": None, "previous": None, "results": [_PLAN_CHANGE_EXAMPLE]},
            )
        ],
    )
    def get(self, request: Request) -> Response:
        return self.page_of(plan_changes_for_api(**self.filters()), PlanChangeSerializer)


class PlanChangeDetailApi(ApiView):
    """One plan change: from and to which plan and price, when, how it was asked for, and
    until when it may be undone."""

    required_scope = "read"
    required_permission = "billing.view_planchange"

    @extend_schema(
        responses=PlanChangeSerializer,
        examples=[OpenApiExample("Scheduled", value=_PLAN_CHANGE_EXAMPLE)],
    )
    def get(self, request: Request, change_id: int) -> Response:
        return Response(PlanChangeSerializer(plan_change_get_for_api(change_id)).data)


class PlanChangeUndoApi(ApiView):
    """Undo a plan change as the customer may (they called, or came to a shop): one that has
    not taken effect yet, until it does; one that has, within its cooling-off period. It is
    then as if it had never been made: a month already invoiced with it is corrected (a
    credit note for what the customer paid too much, or the difference on their next
    invoice). Undoing it again answers the same, with no corrections. Refusals (400):
    ``cooling_off_expired``, ``later_change_exists`` (undo the later change first)."""

    required_scope = "billing:write"
    required_permission = "billing.change_planchange"

    class OutputSerializer(serializers.Serializer):
        class Correction(serializers.Serializer):
            invoice = serializers.IntegerField(source="invoice.id")
            invoice_number = serializers.CharField(source="invoice.display_number")
            amount = MoneyField(
                help_text="Kronor incl. VAT: negative was credited now, positive is on the "
                "next invoice"
            )
            credit_note = serializers.IntegerField(source="credit_note.id", allow_null=True)

        plan_change = PlanChangeSerializer(source="change")
        corrections = Correction(many=True)

    @extend_schema(
        request=None,
        responses=OutputSerializer,
        examples=[
            OpenApiExample(
                "Undone, a month credited",
                response_only=True,
                value={
                    "plan_change": _PLAN_CHANGE_EXAMPLE
                    | {
                        "status": "undone",
                        "effective_date": "2026-11-01",
                        "applied_at": "2026-11-01T00:05:00+01:00",
                        "undone_at": "2026-11-20T10:20:41.009000+01:00",
                    },
                    "corrections": [
                        {
                            "invoice": 1024,
                            "invoice_number": "F1000123",
                            "amount": "-150.00",
                            "credit_note": 1187,
                        }
                    ],
                },
            ),
            OpenApiExample(
                "Too late",
                response_only=True,
                status_codes=["400"],
                value={
                    "code": "cooling_off_expired",
                    "message": "The change could be undone until 2026-11-14.",
                },
            ),
        ],
    )
    def post(self, request: Request, change_id: int) -> Response:
        change = plan_change_get_for_api(change_id)
        undone = plan_change_undo_and_correct(change_id=change.id, via=API_SOURCE)
        answer = {
            "change": plan_change_get_for_api(undone.change.id),
            "corrections": undone.corrections,
        }
        return Response(self.OutputSerializer(answer).data)


# --- offers ------------------------------------------------------------------------------------


class OfferSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    campaign = serializers.CharField(source="campaign.code")
    customer = serializers.CharField(source="customer.customer_number")
    subscription = serializers.IntegerField(source="subscription_id")
    identifier = serializers.CharField(source="subscription.identifier")
    personalised = serializers.BooleanField(
        help_text="Made from the customer's usage: accepted only while their consent is given"
    )
    from_plan = serializers.CharField(source="subscription.plan.code", help_text="Its plan now")
    to_plan = serializers.CharField(source="to_plan.code")
    binding_months_options = serializers.SerializerMethodField(
        help_text="The binding periods the plan is sold with, in months (0: none)"
    )
    offered_price = MoneyField(help_text="Monthly, kronor incl. VAT")
    current_monthly_cost = MoneyField(
        help_text="What the current plan cost a month, over the usage"
    )
    offered_monthly_cost = MoneyField(
        help_text="What the offer would have cost, over the same usage"
    )
    monthly_saving = MoneyField(help_text="Negative: the offer costs more")
    yearly_saving = MoneyField()
    reason = serializers.DictField(
        child=serializers.CharField(), help_text="Why, as the customer reads it, by language"
    )
    valid_until = serializers.DateField()
    created_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=OfferStatus.choices)
    plan_change = serializers.IntegerField(
        source="plan_change_id", allow_null=True, help_text="Accepted: the change it made"
    )

    def get_binding_months_options(self, offer: Offer) -> list[int]:
        return binding_months_options(offer.to_plan)


_OFFER_EXAMPLE = {
    "id": 3301,
    "campaign": "right-size",
    "customer": "K-1001",
    "subscription": 4711,
    "identifier": "+46701112233",
    "personalised": True,
    "from_plan": "mobil-30",
    "to_plan": "mobil-10",
    "binding_months_options": [0, 12],
    "offered_price": "249.00",
    "current_monthly_cost": "399.00",
    "offered_monthly_cost": "249.00",
    "monthly_saving": "150.00",
    "yearly_saving": "1800.00",
    "reason": {
        "sv": "Du har använt 3–6 GB i månaden det senaste halvåret.",
        "en": "You have used 3–6 GB a month over the last six months.",
    },
    "valid_until": "2026-12-20",
    "created_at": "2026-11-20T06:00:12.417000+01:00",
    "status": "open",
    "plan_change": None,
}


class OfferListApi(ApiView):
    """Offers the customer may be shown (a campaign's control group is never listed), newest
    first, by cursor; filter by ``customer`` (customer number), ``status`` and ``campaign``
    (its code)."""

    required_scope = "read"
    required_permission = "offers.view_offer"

    class FilterSerializer(serializers.Serializer):
        customer = StrictCharField(required=False, help_text="A customer number")
        status = serializers.ChoiceField(choices=OfferStatus.choices, required=False)
        campaign = StrictCharField(required=False, help_text="A campaign's code")

    @extend_schema(
        parameters=[FilterSerializer],
        responses=paginated(OfferSerializer),
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={"next": None, "previous": None, "results": [_OFFER_EXAMPLE]},
            )
        ],
    )
    def get(self, request: Request) -> Response:
        return self.page_of(offers_for_api(**self.filters()), OfferSerializer)


class OfferDetailApi(ApiView):
    """One offer, with its reason and figures."""

    required_scope = "read"
    required_permission = "offers.view_offer"

    @extend_schema(
        responses=OfferSerializer, examples=[OpenApiExample("Open", value=_OFFER_EXAMPLE)]
    )
    def get(self, request: Request, offer_id: int) -> Response:
        return Response(OfferSerializer(offer_get_for_api(offer_id)).data)


class OfferAcceptApi(ApiView):
    """The customer accepted the offer through another channel (the operator's shop, its call
    centre): the plan change at the offered price, by the page's rules, once per offer. 201
    with the change; 200 with the same change when the offer was accepted before (here or on
    the invoice page). The customer gets the receipt with the link that undoes the change,
    unless ``send_receipt`` is false; ``offer.accepted`` is sent.

    ``timing``: next_period (default), now, or after_binding; a cheaper plan within the
    binding period is refused with ``binding_period_active`` unless after_binding.
    ``binding_months``: one of the offer's ``binding_months_options`` (default the shortest).
    Refusals (400): ``offer_not_open`` (expired, superseded), ``consent_not_in_force`` (an
    offer made from usage whose consent was withdrawn), ``binding_period_active``,
    ``binding_not_offered``, ``immediate_change_not_allowed``, ``change_pending`` (another
    change waits to take effect), ``subscription_ended``."""

    required_scope = "billing:write"
    required_permission = "offers.change_offer"

    class InputSerializer(serializers.Serializer):
        timing = serializers.ChoiceField(
            choices=[t.value for t in ChangeTiming], default=ChangeTiming.NEXT_PERIOD.value
        )
        binding_months = serializers.IntegerField(
            min_value=0, max_value=24, required=False, help_text="Default: the shortest offered"
        )
        send_receipt = serializers.BooleanField(
            default=True, help_text="Send the customer the receipt with the undo link"
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: PlanChangeSerializer, 200: PlanChangeSerializer},
        examples=[
            OpenApiExample(
                "In the shop, with a 12-month binding period",
                request_only=True,
                value={"timing": "next_period", "binding_months": 12, "send_receipt": True},
            ),
            OpenApiExample(
                "Accepted", response_only=True, status_codes=["201"], value=_PLAN_CHANGE_EXAMPLE
            ),
            OpenApiExample(
                "Consent withdrawn",
                response_only=True,
                status_codes=["400"],
                value={
                    "code": "consent_not_in_force",
                    "message": "This offer was made from the customer's usage, and their "
                    "consent to that is not in force.",
                },
            ),
        ],
    )
    def post(self, request: Request, offer_id: int) -> Response:
        offer = offer_get_for_api(offer_id)
        given = self.InputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        done = offer_accept_from_api(
            offer_id=offer.id,
            timing=ChangeTiming(data["timing"]),
            binding_months=data.get("binding_months"),
            send_receipt=data["send_receipt"],
        )
        answer = PlanChangeSerializer(plan_change_get_for_api(done.change.id)).data
        return Response(
            answer, status=status.HTTP_201_CREATED if done.created else status.HTTP_200_OK
        )
