"""Rate-limits failed invoice-link look-ups per client address (guessing tokens)."""

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def _key(request: HttpRequest) -> str:
    return f"invoice-link-misses:{request.META.get('REMOTE_ADDR', 'unknown')}"


def guesses_exhausted(request: HttpRequest) -> bool:
    return (cache.get(_key(request)) or 0) >= settings.INVOICE_LINK_GUESS_LIMIT


def record_miss(request: HttpRequest) -> None:
    key = _key(request)
    if cache.add(key, 1, timeout=settings.INVOICE_LINK_GUESS_WINDOW_SECONDS):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=settings.INVOICE_LINK_GUESS_WINDOW_SECONDS)
