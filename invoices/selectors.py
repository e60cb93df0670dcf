"""Reads that the invoice page, the PDF, the admin and the API share."""

from invoices.models import Invoice
from invoices.services.links import invoice_link_find


def invoice_get_by_token(token: str) -> Invoice | None:
    """The invoice a live link opens; None for unknown, expired and revoked tokens alike."""
    link = invoice_link_find(token)
    return link.invoice if link else None
