"""Rate-limits failed invoice-link look-ups per client address (guessing tokens)."""

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The client's address. Behind ``TRUSTED_PROXY_COUNT`` proxies it is the entry that the
    outermost trusted proxy appended to X-Forwarded-For; anything further left is the
    client's own claim and is not trusted."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "unknown")


def _key(request: HttpRequest) -> str:
    return f"invoice-link-misses:{client_address(request)}"


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
