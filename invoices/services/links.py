"""Invoice links: capability URLs ``/i/<token>/``.

The token is 32 bytes from ``secrets`` (256 bits), URL-safe, unrelated to any number. Only
its SHA-256 is stored, so the database alone cannot rebuild a link; sending again issues a
new token.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from invoices.models import Invoice, InvoiceLink, PageEvent, PageEventKind

TOKEN_BYTES = 32


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invoice_link_url(token: str) -> str:
    """The customer's link, from the configured base URL (never the request's Host)."""
    return f"{settings.TOUCHPOINT_BASE_URL}/i/{token}/"


def invoice_link_create(*, invoice: Invoice, reason: str = "issued") -> str:
    """A new link for ``invoice``; returns the token, which is not stored anywhere."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = timezone.now()
    InvoiceLink.objects.create(
        invoice=invoice,
        token_hash=token_hash(token),
        created_at=now,
        expires_at=now + timedelta(days=settings.INVOICE_LINK_TTL_DAYS),
        reason=reason,
    )
    return token


@transaction.atomic
def invoice_links_revoke(*, invoice_id: int, reason: str) -> int:
    """Revoke every live link of an invoice (a forwarded or leaked link stops working)."""
    now = timezone.now()
    count = InvoiceLink.objects.filter(invoice_id=invoice_id, revoked_at__isnull=True).update(
        revoked_at=now
    )
    PageEvent.objects.create(
        invoice_id=invoice_id,
        kind=PageEventKind.LINK_REVOKED,
        occurred_at=now,
        details={"reason": reason, "links": count},
    )
    return count
