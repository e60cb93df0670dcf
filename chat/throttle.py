"""Rate limits at the chat's edges: the frames one websocket may send, and the support
console's login attempts per client address, and the count both these and the customers'
messages (per invoice, ``chat.services``) are limited by. (Guessing invoice links per address
is limited by ``invoices.guard``.)"""

import os
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _

from invoices.guard import client_address


class FrameBucket:
    """A token bucket for one socket's frames: ``capacity`` at once, refilled evenly so that
    ``capacity`` more are allowed every ``per_seconds``. Lives with its consumer, in memory:
    a socket is served by one process."""

    def __init__(self, capacity: int, per_seconds: float) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / per_seconds  # frames a second
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        """Spend one frame; False when the socket has sent too many."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def frame_bucket() -> FrameBucket:
    """The bucket a new socket starts with (``CHAT_SOCKET_FRAMES`` per
    ``CHAT_SOCKET_FRAMES_SECONDS``)."""
    return FrameBucket(settings.CHAT_SOCKET_FRAMES, settings.CHAT_SOCKET_FRAMES_SECONDS)


def counted(key: str, limit: int, window_seconds: int) -> bool:
    """Count one more for ``key`` in a fixed window of ``window_seconds`` that starts with
    the first; False once past ``limit``. In the cache (Redis in production), so the count
    holds across processes."""
    client = _redis()
    if client is None:
        return _counted_in_cache(key, limit, window_seconds)
    # One round trip, atomic (MULTI/EXEC): the window's key is created with its expiry, or
    # counted up (Django's cache would take three: add, then exists and incr).
    name = cache.make_key(key)
    with client.pipeline(transaction=True) as pipe:
        pipe.set(name, 0, ex=window_seconds, nx=True)
        pipe.incr(name)
        _created, count = pipe.execute()
    return int(count) <= limit


def _counted_in_cache(key: str, limit: int, window_seconds: int) -> bool:
    if cache.add(key, 1, timeout=window_seconds):
        return True
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window_seconds)
        return True
    return count <= limit


_client: tuple[int, str, Any] | None = None  # (pid, URL, redis.Redis)


def _redis() -> Any:
    """A Redis client for the cache's Redis (``REDIS_URL``), one per process; None when the
    cache is not Redis."""
    global _client
    url = settings.REDIS_URL if isinstance(caches["default"], RedisCache) else ""
    if not url:
        return None
    if _client is None or _client[:2] != (os.getpid(), url):
        import redis

        # a Redis that stops answering fails the count within seconds instead of hanging it
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        _client = (os.getpid(), url, client)
    return _client[2]


View = Callable[..., HttpResponseBase]


def login_throttled(view: View) -> View:
    """At most ``SUPPORT_LOGIN_ATTEMPTS`` login POSTs per client address and
    ``SUPPORT_LOGIN_WINDOW_SECONDS``, then 429 with a plain text in the request's language
    (passwords are not to be guessed at the console's door). Showing the form is not
    counted."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        if request.method == "POST" and not counted(
            f"support-login:{client_address(request)}",
            settings.SUPPORT_LOGIN_ATTEMPTS,
            settings.SUPPORT_LOGIN_WINDOW_SECONDS,
        ):
            response = HttpResponse(
                _("Too many attempts. Wait a few minutes and try again."),
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(settings.SUPPORT_LOGIN_WINDOW_SECONDS)
            return response
        return view(request, *args, **kwargs)

    return wrapper
