"""The base of every API endpoint (``ApiView``): ``Idempotency-Key`` on POST, English unless
``Accept-Language`` asks otherwise. Who may call an endpoint and how a refusal reads:
``core.api_auth``."""

from typing import Any

from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils import translation
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView as DrfApiView

from core.idempotency import (
    idempotency_claim,
    idempotency_release,
    idempotency_store,
    request_fingerprint,
)
from core.models import ApiKey, IdempotentRequest

IDEMPOTENCY_HEADER = "Idempotency-Key"
# What a repeat is answered with: the stored answer, marked as such.
REPLAYED_HEADER = "Idempotent-Replayed"


class NewestFirstPagination(CursorPagination):
    """Newest first, by id, ``limit`` at most 1000 a page: a cursor stays right while new rows
    come."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000


class _Replay(Exception):
    def __init__(self, row: IdempotentRequest) -> None:
        self.row = row


class ApiView(DrfApiView):
    """The base of every API endpoint: ``Idempotency-Key`` on POST (``core.idempotency``),
    checked after the caller is known (keys are per caller) and allowed in."""

    _idempotent: IdempotentRequest | None = None
    # JSON in, unless an endpoint takes a file (multipart): a form's blank field would read as
    # "not sent", which the schema cannot say.
    parser_classes = [JSONParser]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # An integration speaks English unless it asks otherwise (Accept-Language); the site's
        # default language is for people.
        if "HTTP_ACCEPT_LANGUAGE" not in request.META:
            translation.activate("en")
        return super().dispatch(request, *args, **kwargs)

    def page_of(
        self,
        found: QuerySet[Model],
        serializer: type[BaseSerializer[Any]],
        pagination: type[CursorPagination] = NewestFirstPagination,
    ) -> Response:
        """A list endpoint's answer: the page of ``found`` the request's cursor names."""
        paginator = pagination()
        page = paginator.paginate_queryset(found, self.request, view=self) or []
        return paginator.get_paginated_response(serializer(page, many=True).data)

    def filters(self) -> dict[str, Any]:
        """A list's filters from the query string, read by the view's ``FilterSerializer``:
        400 naming the field for a value that cannot match (``?status=`` is a wrong status,
        not "any status": the query string is read as a plain dict)."""
        given = self.FilterSerializer(data=self.request.query_params.dict())  # type: ignore[attr-defined]
        given.is_valid(raise_exception=True)
        return dict(given.validated_data)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if request.method != "POST" or key is None:
            return
        caller = (
            f"key:{request.auth.id}"
            if isinstance(request.auth, ApiKey)
            else f"user:{request.user.pk}"
        )
        claim = idempotency_claim(
            caller=caller,
            key=key,
            method=request.method,
            path=request.path,
            fingerprint=request_fingerprint(request.method, request.path, request.data),
        )
        if claim.replay:
            raise _Replay(claim.row)
        self._idempotent = claim.row

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, _Replay):
            answer = HttpResponse(
                bytes(exc.row.body), status=exc.row.status, content_type=exc.row.content_type
            )
            answer[REPLAYED_HEADER] = "true"
            return answer
        try:
            return super().handle_exception(exc)
        except Exception:
            if self._idempotent is not None:  # a server error: the key is free again
                idempotency_release(row=self._idempotent)
            raise

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        row, self._idempotent = self._idempotent, None
        if row is None:
            return response
        if _worth_keeping(response):
            response.render()
            idempotency_store(
                row=row,
                status=response.status_code,
                body=bytes(response.content),
                content_type=response.get("Content-Type", ""),
            )
        else:
            idempotency_release(row=row)
        return response


def _worth_keeping(response: HttpResponse) -> bool:
    """A request that ran: a success, or a business rule's refusal. Not a validation failure
    (the caller fixes the fields and sends the same key again) nor a server error."""
    if 200 <= response.status_code < 300:
        return True
    data = getattr(response, "data", None)
    code = data.get("code") if isinstance(data, dict) else None
    return 400 <= response.status_code < 500 and code not in {
        None,
        "invalid",
        "not_authenticated",
        "authentication_failed",
        "permission_denied",
        "throttled",
        "parse_error",
    }
