"""Who may call the API, how often, and how a broken rule is answered (named in the
settings' ``REST_FRAMEWORK``; the endpoints' base class is ``core.api.ApiView``).

Two kinds of caller:
- a source system, by its API key (``Authorization: Bearer tp_…``, ``core.api_keys``): it may
  call an endpoint whose ``required_scope`` is one of the key's scopes, at most its
  ``rate_per_minute``;
- a person of the staff, from an admin session: an endpoint names the model permission it
  needs in ``required_permission`` (for example ``"invoices.add_bgmaximport"``), so the API
  opens exactly what the same person may do in the admin.
An endpoint that names neither is closed. A ``DomainError`` from a service is answered 400
(409 for the codes in ``CONFLICT_CODES``) with its stable code and message.
"""

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from core.api_keys import api_key_lookup
from core.errors import DomainError
from core.models import ApiKey

if TYPE_CHECKING:  # (rest_framework.views reads the settings naming this module)
    from rest_framework.views import APIView

# Codes that say the request was right but the state does not allow it (yet).
CONFLICT_CODES = frozenset({"invalid_status_transition", "idempotency_key_in_use"})
UNPROCESSABLE_CODES = frozenset({"idempotency_key_reused"})


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer tp_…``: the request runs as the key's account, with the key as
    ``request.auth``. A bearer that is no live key is refused (401), never taken as anonymous."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Send the key as: Authorization: Bearer <key>.")
        key = api_key_lookup(parts[1].decode("latin-1"))
        if key is None or not key.user.is_active:
            raise AuthenticationFailed("This API key is unknown or revoked.")
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ScopeOrStaffPermission(BasePermission):
    """A key with the view's ``required_scope``, or active staff with its
    ``required_permission``; a view naming neither is closed to both."""

    message = "This key or account may not do this."

    def has_permission(self, request: Request, view: "APIView") -> bool:
        if isinstance(request.auth, ApiKey):
            scope: str | None = getattr(view, "required_scope", None)
            return scope is not None and scope in request.auth.scopes
        user = request.user
        needed: str | None = getattr(view, "required_permission", None)
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        return needed is not None and user.has_perm(needed)


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Each key at most its own ``rate_per_minute``, counted in the shared cache (Redis in
    production: every process counts together). Staff sessions are not throttled here."""

    def allow_request(self, request: Request, view: "APIView") -> bool:
        if not isinstance(request.auth, ApiKey):
            return True
        self.rate = f"{request.auth.rate_per_minute}/min"
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_rate(self) -> str | None:
        return None  # set per key in allow_request

    def get_cache_key(self, request: Request, view: "APIView") -> str | None:
        key = request.auth
        return f"throttle-api-key:{key.id}" if isinstance(key, ApiKey) else None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's answers, plus ``DomainError`` as ``{"code", "message"}``; validation errors keep
    DRF's shape (field → messages) under ``code: "invalid"``."""
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DomainError):
        code = status.HTTP_400_BAD_REQUEST
        if exc.code in CONFLICT_CODES:
            code = status.HTTP_409_CONFLICT
        elif exc.code in UNPROCESSABLE_CODES:
            code = status.HTTP_422_UNPROCESSABLE_ENTITY
        return Response({"code": exc.code, "message": exc.message}, status=code)
    if isinstance(exc, DjangoValidationError):  # a model's own rule (full_clean)
        fields = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return Response(
            {"code": "invalid", "message": "Some fields are wrong.", "fields": fields}, status=400
        )
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "code" not in response.data:
        if response.status_code == status.HTTP_400_BAD_REQUEST:
            response.data = {
                "code": "invalid",
                "message": "Some fields are wrong.",
                "fields": response.data,
            }
        else:
            detail = response.data.get("detail", "")
            response.data = {"code": getattr(detail, "code", "error"), "message": str(detail)}
    return response
