"""SMS carriers (e-mail goes through Django's MAILERS); the one in use is SMS_BACKEND.

An SMS backend is a class with ``send(to: str, body: str) -> None`` that raises on failure.
The console backend prints; a gateway backend posts to the operator's SMS provider.
"""

import sys
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class SmsBackend(Protocol):
    def send(self, to: str, body: str) -> None: ...


class ConsoleSmsBackend:
    def send(self, to: str, body: str) -> None:
        sys.stdout.write(f"SMS to {to}: {body}\n")


class LocmemSmsBackend:
    """Keeps messages in ``outbox`` (for tests)."""

    outbox: list[tuple[str, str]] = []

    def send(self, to: str, body: str) -> None:
        self.outbox.append((to, body))


def sms_backend() -> SmsBackend:
    return import_string(settings.SMS_BACKEND)()
