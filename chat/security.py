"""Which origins may open a websocket: a page of ours, never another site's script."""

from typing import Any

from channels.security.websocket import OriginValidator
from django.conf import settings


def allowed_origins() -> list[str]:
    """ALLOWED_HOSTS (as Channels matches them: hosts, ``.domain`` patterns, ``*``), the
    host of TOUCHPOINT_BASE_URL, and CHAT_ALLOWED_ORIGINS (full origins)."""
    from urllib.parse import urlsplit

    origins = list(settings.ALLOWED_HOSTS) + list(settings.CHAT_ALLOWED_ORIGINS)
    base = urlsplit(settings.TOUCHPOINT_BASE_URL)
    if base.hostname:
        origins.append(f"{base.scheme}://{base.netloc}")
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        origins += ["localhost", "127.0.0.1", "[::1]"]
    return origins


def origin_validator(application: Any) -> OriginValidator:
    """Refuse a websocket whose Origin is missing or not ours (403 before the consumer)."""
    return OriginValidator(application, allowed_origins())
