"""The customer's chat endpoints under the invoice link, ``/i/<token>/chat/...``.

Posting works by plain HTTP (CSRF-protected), so a message is stored and answered even while
the socket or the channel layer is down; with the socket up the page posts over it
(``chat.consumers``), and comes here with the same message id when no answer came. Each
endpoint answers JSON to the page's script (``Accept: application/json``) and redirects back
to the invoice's chat panel for a plain form post, so the chat works without JavaScript too.
"""

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_POST, require_safe

from chat.errors import error_text
from chat.parsing import parse_int
from chat.selectors import (
    conversation_current_for_invoice,
    conversation_payload,
    message_by_client_id,
    message_payload,
    messages_after,
)
from chat.services import chat_message_post_customer, conversation_rate
from core.errors import DomainError
from invoices.models import Invoice
from invoices.views import with_invoice

PANEL_ID = "chat"


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _back(request: HttpRequest, language: str, **query: str) -> HttpResponseRedirect:
    """Back to the invoice page's chat panel (relative: the token is in no Location header
    that a log could keep)."""
    return HttpResponseRedirect(f"../../?{urlencode({'lang': language, **query})}#{PANEL_ID}")


def _refused(
    request: HttpRequest,
    language: str,
    error: DomainError,
    *,
    key: str = "chat_error",
    line: str = "",
) -> HttpResponseBase:
    """The refusal as JSON for the page's script; for a plain form post, back to the panel
    with the refusal's stable code under ``key`` (the panel shows its text next to the form;
    ``line``: the line still quoted). The typed text is not carried: the field's maxlength
    and required attributes already keep the common refusals from a plain form."""
    status = 429 if error.code == "chat_rate_limited" else 400
    if _wants_json(request):
        return JsonResponse({"code": error.code, "message": error_text(error)}, status=status)
    query = {key: error.code}
    if line:
        query["ask"] = line
    return _back(request, language, **query)


@with_invoice
@require_POST
def message_post(request: HttpRequest, invoice: Invoice, language: str) -> HttpResponseBase:
    """Post the customer's message (``body``; ``line`` for "ask about this line";
    ``client_id``, the page's id for it, so that sending it again stores it once)."""
    if invoice.is_credit_note:
        return _refused(request, language, DomainError(code="chat_not_here", message=""))
    client_id = request.POST.get("client_id", "")
    # Sent again by a page that heard no answer over its socket: the message stored then,
    # before the rate limit counts it once more.
    stored = message_by_client_id(invoice.id, client_id) if client_id else None
    if stored is not None and _wants_json(request):
        return JsonResponse(message_payload(stored), status=201)
    try:
        message = chat_message_post_customer(
            invoice_id=invoice.id,
            body=request.POST.get("body", ""),
            line_id=parse_int(request.POST.get("line")) if request.POST.get("line") else None,
            client_id=client_id,
        )
    except DomainError as error:
        line = str(parse_int(request.POST.get("line")) or "")
        return _refused(request, language, error, line=line)
    if _wants_json(request):
        return JsonResponse(message_payload(message), status=201)
    return _back(request, language)


@with_invoice
@require_safe
def messages_list(request: HttpRequest, invoice: Invoice, language: str) -> HttpResponseBase:
    """The current conversation and its messages after ``after`` (the page's fallback while
    its socket is reconnecting)."""
    conversation = conversation_current_for_invoice(invoice.id)
    if conversation is None:
        return JsonResponse({"conversation": None, "messages": []})
    asked = parse_int(request.GET.get("conversation"))
    after = (parse_int(request.GET.get("after")) or 0) if asked == conversation.id else 0
    summary: dict[str, Any] = dict(conversation_payload(conversation))
    return JsonResponse(
        {
            "conversation": {
                key: summary[key] for key in ("id", "status", "agent_name", "last_seq")
            },
            "messages": [message_payload(m) for m in messages_after(conversation.id, after)],
        }
    )


@with_invoice
@require_POST
def rating_post(request: HttpRequest, invoice: Invoice, language: str) -> HttpResponseBase:
    """The customer rates the closed conversation (``conversation``, ``rating``, ``comment``)."""
    try:
        conversation_rate(
            conversation_id=parse_int(request.POST.get("conversation")) or 0,
            invoice_id=invoice.id,
            rating=parse_int(request.POST.get("rating")) or 0,
            comment=request.POST.get("comment", ""),
        )
    except DomainError as error:
        return _refused(request, language, error, key="rating_error")
    if _wants_json(request):
        return JsonResponse({"rated": True})
    return _back(request, language)
