"""``Idempotency-Key`` on the API's POSTs, with Stripe's semantics: the same caller sending the
same key and the same content gets the first answer again (and nothing is done twice); the
same key with other content is refused; a repeat while the first is still being answered is
told to wait. Answers are kept ``KEPT_FOR``. Only answers of a request that ran are kept: a
refused login, a throttled call, fields that failed validation or a server error leave the
key free for the corrected request.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import DomainError
from core.models import IdempotentRequest

KEPT_FOR = timedelta(hours=24)
MAX_KEY_LENGTH = 255


def request_fingerprint(method: str, path: str, data: Any) -> str:
    """SHA-256 of what a request sent: its fields in order of name (files by their content,
    so a multipart body's boundary does not count), or its JSON with sorted keys."""
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    if hasattr(data, "lists"):  # form or multipart
        for name, values in sorted(data.lists()):
            for value in values:
                digest.update(f"{name}=".encode())
                if isinstance(value, UploadedFile):
                    for chunk in value.chunks():
                        digest.update(chunk)
                    value.seek(0)
                else:
                    digest.update(str(value).encode())
                digest.update(b"\n")
    else:
        digest.update(json.dumps(data, sort_keys=True, default=str).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Claim:
    row: IdempotentRequest
    replay: bool  # True: answer with the row's stored response


def idempotency_claim(*, caller: str, key: str, method: str, path: str, fingerprint: str) -> Claim:
    """Take ``key`` for this request, or find the answer it already has."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise DomainError(
            code="idempotency_key_invalid",
            message=f"An Idempotency-Key is 1 to {MAX_KEY_LENGTH} characters.",
        )
    now = timezone.now()
    IdempotentRequest.objects.filter(caller=caller, key=key, created_at__lt=now - KEPT_FOR).delete()
    try:
        with transaction.atomic():
            row = IdempotentRequest.objects.create(
                caller=caller,
                key=key,
                method=method,
                path=path[:300],
                fingerprint=fingerprint,
                created_at=now,
            )
            return Claim(row=row, replay=False)
    except IntegrityError:
        pass
    first = IdempotentRequest.objects.get(caller=caller, key=key)
    if (first.method, first.path, first.fingerprint) != (method, path[:300], fingerprint):
        raise DomainError(
            code="idempotency_key_reused",
            message="This Idempotency-Key was used for another request: use a new key.",
        )
    if first.status is None:
        raise DomainError(
            code="idempotency_key_in_use",
            message="A request with this Idempotency-Key is still being answered: try again.",
        )
    return Claim(row=first, replay=True)


def idempotency_store(
    *, row: IdempotentRequest, status: int, body: bytes, content_type: str
) -> None:
    row.status, row.body, row.content_type = status, body, content_type
    row.save(update_fields=["status", "body", "content_type"])


def idempotency_release(*, row: IdempotentRequest) -> None:
    """The request did not run to an answer worth keeping: the key is free again."""
    IdempotentRequest.objects.filter(id=row.id, status__isnull=True).delete()


def idempotent_requests_delete_expired() -> int:
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=timezone.now() - KEPT_FOR).delete()
    return deleted
