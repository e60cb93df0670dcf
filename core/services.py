"""One-time codes: confirm, on the customer's registered phone or e-mail, what a forwarded
link alone must not be able to do (sign the customer up for more)."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from core.errors import DomainError
from core.models import OneTimeCode
from core.sms import sms_backend

CODE_DIGITS = 6
CODE_VALID_FOR = timedelta(minutes=10)
MAX_ATTEMPTS = 5
# At most this many codes for one purpose within the window (a customer asking again is
# fine; a script asking a thousand times is not).
MAX_CODES_PER_WINDOW = 3
CODES_WINDOW = timedelta(minutes=10)
# Across purposes (every plan a forwarded link could choose), per phone number or address:
# this bounds both SMS to one person and the guesses against their codes.
MAX_CODES_PER_DESTINATION = 10
DESTINATION_WINDOW = timedelta(hours=1)


def _hash(purpose: str, code: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"{purpose}:{code}".encode(), hashlib.sha256).hexdigest()


def one_time_code_send(
    *, purpose: str, channel: str, destination: str, text: str, subject: str = ""
) -> OneTimeCode:
    """Create a code for ``purpose`` and send ``text`` (with ``{code}`` in it) to the customer.

    Raises ``code_rate_limited`` when too many codes were sent for this purpose lately.
    """
    now = timezone.now()
    recent = OneTimeCode.objects.filter(purpose=purpose, created_at__gte=now - CODES_WINDOW)
    if recent.count() >= MAX_CODES_PER_WINDOW:
        raise DomainError(
            code="code_rate_limited",
            message="Several codes were sent just now. Wait a few minutes and ask again.",
        )
    to_destination = OneTimeCode.objects.filter(
        destination=destination, created_at__gte=now - DESTINATION_WINDOW
    )
    if to_destination.count() >= MAX_CODES_PER_DESTINATION:
        raise DomainError(
            code="code_rate_limited",
            message="Many codes were sent to you lately. Wait a while and ask again.",
        )
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    record = OneTimeCode.objects.create(
        purpose=purpose,
        channel=channel,
        destination=destination,
        code_hash=_hash(purpose, code),
        created_at=now,
        expires_at=now + CODE_VALID_FOR,
    )
    body = text.format(code=code)
    # The code exists only in this message; it is sent once the record is committed.
    if channel == "sms":
        transaction.on_commit(lambda: sms_backend().send(destination, body))
    else:
        transaction.on_commit(lambda: EmailMessage(subject, body, to=[destination]).send())
    return record


def one_time_code_verify(*, purpose: str, code: str) -> None:
    """Accept ``code`` once for ``purpose``, or raise ``code_invalid`` / ``code_expired``.

    A wrong code counts as an attempt even though this raises: the error is raised after the
    block that stored the count, so neither this function's transaction nor a caller's
    savepoint around it rolls the count back (a caller inside ``transaction.atomic`` that
    catches the error keeps it by committing).
    """
    now = timezone.now()
    with transaction.atomic():
        record = (
            OneTimeCode.objects.select_for_update()
            .filter(purpose=purpose, used_at__isnull=True)
            .order_by("-created_at")
            .first()
        )
        if record is None or record.expires_at <= now or record.attempts >= MAX_ATTEMPTS:
            error = DomainError(
                code="code_expired", message="The code has expired. Ask for a new one."
            )
        elif not hmac.compare_digest(record.code_hash, _hash(purpose, code.strip())):
            record.attempts += 1
            record.save(update_fields=["attempts"])
            error = DomainError(code="code_invalid", message="The code is not right. Try again.")
        else:
            record.used_at = now
            record.save(update_fields=["used_at"])
            return
    raise error
