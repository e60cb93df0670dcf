"""What every API endpoint shares: who may call it, and how a broken rule is answered.

An endpoint names the model permission it needs in ``required_permission`` (for example
``"invoices.add_bgmaximport"``); only active staff holding it get in, so the API opens exactly
what the same person may do in the admin. A ``DomainError`` from a service is answered 400
(409 for the codes in ``CONFLICT_CODES``) with its stable code and message.
"""

from typing import TYPE_CHECKING, Any

from rest_framework import status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from core.errors import DomainError

if TYPE_CHECKING:  # (rest_framework.views reads the settings naming this module)
    from rest_framework.views import APIView

# Codes that say the request was right but the state does not allow it (yet).
CONFLICT_CODES = frozenset({"invalid_status_transition"})


class StaffWithPermission(BasePermission):
    """Active staff with the view's ``required_permission``; a view without one is closed."""

    message = "You need a staff account with the permission for this."

    def has_permission(self, request: Request, view: "APIView") -> bool:
        user = request.user
        needed: str | None = getattr(view, "required_permission", None)
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        return needed is not None and user.has_perm(needed)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's answers, plus ``DomainError`` as ``{"code", "message"}``; validation errors keep
    DRF's shape (field → messages) under ``code: "invalid"``."""
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DomainError):
        code = status.HTTP_409_CONFLICT if exc.code in CONFLICT_CODES else 400
        return Response({"code": exc.code, "message": exc.message}, status=code)
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
