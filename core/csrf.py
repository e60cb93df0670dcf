"""What a customer sees when a form could not be checked (cookies off, a page left open for
days): a plain explanation in their language, nothing changed, and the way back."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    language = request.GET.get("lang") or translation.get_language_from_request(request)
    with translation.override(language if language in {"sv", "en"} else "sv"):
        response = render(request, "csrf_failure.html", status=403)
    response["Cache-Control"] = "no-store"
    return response
