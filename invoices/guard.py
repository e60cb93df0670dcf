"""Rate-limits failed invoice-link look-ups per client address (guessing tokens), for pages
(a request) and for the chat's websocket (an ASGI scope) alike."""

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The client's address. Behind ``TRUSTED_PROXY_COUNT`` proxies it is the entry that the
    outermost trusted proxy appended to X-Forwarded-For; anything further left is the
    client's own claim and is not trusted."""
    return _trusted_address(
        request.META.get("HTTP_X_FORWARDED_FOR", ""), request.META.get("REMOTE_ADDR", "unknown")
    )


def scope_client_address(scope: Mapping[str, Any]) -> str:
    """``client_address`` for an ASGI scope (a websocket), by the same rule: the peer in
    ``scope["client"]``, or behind ``TRUSTED_PROXY_COUNT`` proxies the X-Forwarded-For
    header(s) in ``scope["headers"]`` (repeated headers are joined, as Django does)."""
    forwarded = ",".join(
        value.decode("latin-1")
        for name, value in scope.get("headers") or []
        if name.lower() == b"x-forwarded-for"
    )
    client = scope.get("client")
    return _trusted_address(forwarded, str(client[0]) if client else "unknown")


def _trusted_address(forwarded: str, peer: str) -> str:
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        entries = [a.strip() for a in forwarded.split(",")]
        entries = [a for a in entries if a]
        if len(entries) >= proxies:
            return entries[-proxies]
    return peer


def _key(address: str) -> str:
    return f"invoice-link-misses:{address}"


def guesses_exhausted(request: HttpRequest) -> bool:
    return guesses_exhausted_for(client_address(request))


def record_miss(request: HttpRequest) -> None:
    record_miss_for(client_address(request))


def guesses_exhausted_for(address: str) -> bool:
    """Whether ``address`` has used up ``INVOICE_LINK_GUESS_LIMIT`` misses in this window."""
    return (cache.get(_key(address)) or 0) >= settings.INVOICE_LINK_GUESS_LIMIT


def record_miss_for(address: str) -> None:
    """A token from ``address`` that was never issued (a guess, not an old link)."""
    key = _key(address)
    if cache.add(key, 1, timeout=settings.INVOICE_LINK_GUESS_WINDOW_SECONDS):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=settings.INVOICE_LINK_GUESS_WINDOW_SECONDS)
