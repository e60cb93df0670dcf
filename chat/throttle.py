"""Rate limits at the chat's edges: the frames one websocket may send, and the support
console's login attempts per client address. (Posting messages is limited per invoice by
``chat.services``; guessing invoice links per address by ``invoices.guard``.)"""

import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.cache import cache
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


def _counted(key: str, limit: int, window_seconds: int) -> bool:
    """Count one more for ``key`` in a fixed window; False once past ``limit``."""
    if cache.add(key, 1, timeout=window_seconds):
        return True
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window_seconds)
        return True
    return count <= limit


View = Callable[..., HttpResponseBase]


def login_throttled(view: View) -> View:
    """At most ``SUPPORT_LOGIN_ATTEMPTS`` login POSTs per client address and
    ``SUPPORT_LOGIN_WINDOW_SECONDS``, then 429 with a plain text in the request's language
    (passwords are not to be guessed at the console's door). Showing the form is not
    counted."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        if request.method == "POST" and not _counted(
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
