"""How the OpenAPI schema describes our API keys (drf-spectacular reads this extension when
the module is imported: ``CoreConfig.ready``)."""

import re
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers


class ApiKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "core.api_auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A source system's key (tp_…), made under API keys in the admin.",
        }


class ErrorSerializer(serializers.Serializer):
    """Every refusal of the API (``core.api_auth.exception_handler``)."""

    code = serializers.CharField(help_text="Stable, snake_case: e.g. invalid, not_found")
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        help_text="With code invalid: each field's problems (a list, or per item of a list)",
    )


# Refusals any endpoint may answer, with what they mean.
ERRORS = {
    "400": "A field or a business rule said no (code says which)",
    "401": "No key, or a key unknown or revoked",
    "403": "The key or account may not do this",
    "404": "No such object",
    "409": "The state does not allow it now, or a request with the same Idempotency-Key runs",
    "422": "The Idempotency-Key was used for another request",
    "415": "Send JSON (or multipart with the file, where an endpoint takes a file)",
    "429": "Too many requests for this key: wait",
}


class TouchpointAutoSchema(AutoSchema):
    """drf-spectacular's schema, with the refusals every endpoint shares, in one shape; an
    API class's nested ``InputSerializer`` is named after it (``BillRunListApiInput``)."""

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        cls = serializer if isinstance(serializer, type) else type(serializer)
        owner, _, name = cls.__qualname__.rpartition(".")
        return (
            f"{owner.replace('.', '')}{name}"
            if owner
            else str(super().get_serializer_name(serializer, direction))
        )

    def get_operation_id(self) -> str:
        """The view's name and the method: ``invoice_list_get``, ``invoice_detail_get``,
        ``invoice_credit_post``; one per operation, for generated clients' method names
        (drf-spectacular's own takes the path and tells a list from an item by the answer's
        shape, so an endpoint's list and item both came out as ``…_retrieve``)."""
        name = type(self.view).__name__.removesuffix("Api")
        words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
        return f"{words}_{self.method.lower()}"

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for code, description in ERRORS.items():
            if code not in responses:
                # (with the operation's examples of this status: ``OpenApiExample``'s
                # ``status_codes``)
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(response=ErrorSerializer, description=description),
                    code,
                    ["application/json"],
                    direction,
                )
        return responses


def paginated(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of a cursor-paginated list of ``item`` (what ``CursorPagination`` answers)."""
    name = item.__qualname__.replace(".", "").removesuffix("Serializer")
    return type(
        f"Paginated{name}List",
        (serializers.Serializer,),
        {
            "next": serializers.URLField(allow_null=True, help_text="The next page, or null"),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
            "__module__": item.__module__,
        },
    )


class IdField(serializers.IntegerField):
    """A row's id, as the API names an object in a field or a filter: 1 up to the largest
    64-bit id (a larger number is refused as a field's error, not sent to the database)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=2**63 - 1, **kwargs)


class MoneyField(serializers.DecimalField):
    """An amount in kronor, as a string with two decimals."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=14, decimal_places=2, **kwargs)


class PeriodField(serializers.RegexField):
    """A month, as YYYY-MM (1900–2199)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "A month: YYYY-MM")
        super().__init__(r"^(19|20|21)\d{2}-(0[1-9]|1[0-2])$", **kwargs)


class StrictCharField(serializers.CharField):
    """Text, and only text: a number or a boolean sent for it is refused, not turned into one."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


def days_in_order(data: dict[str, Any], first: str, last: str) -> dict[str, Any]:
    """A filter's validated ``data``, unless its day ``last`` comes before its day ``first``
    (then the field ``last`` is wrong): for a serializer's ``validate``."""
    if data.get(first) and data.get(last) and data[last] < data[first]:
        raise serializers.ValidationError({last: ["The last day comes before the first."]})
    return data


def error_example(
    name: str, status_code: int, code: str, message: str, **more: Any
) -> OpenApiExample:
    """An example of a refusal in the one error shape, shown under its status."""
    return OpenApiExample(
        name,
        response_only=True,
        status_codes=[str(status_code)],
        value={"code": code, "message": message, **more},
    )


def page_example(path: str, item: dict[str, Any]) -> dict[str, Any]:
    """An example of a list's page of ``item`` at ``/api/v1/<path>/``, with a next page."""
    return {
        "next": f"https://touchpoint.example/api/v1/{path}/?cursor=cD0xMDI0",
        "previous": None,
        "results": [item],
    }
