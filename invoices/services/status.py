from django.db import transaction
from django.db.models import F

from core.errors import DomainError
from invoices.models import INVOICE_STATUS_TRANSITIONS, Invoice


def invoice_set_status(*, invoice: Invoice, status: str) -> Invoice:
    """Move an invoice along its status pipeline; refuses transitions the table does not list.

    Precondition: ``invoice`` was fetched with ``select_for_update()`` in this transaction.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("set a status inside a transaction holding the row lock")
    if invoice.status == status:
        return invoice
    if status not in INVOICE_STATUS_TRANSITIONS[invoice.status]:
        raise DomainError(
            code="invalid_status_transition",
            message=f"An invoice that is {invoice.status} cannot become {status}.",
        )
    invoice.status = status
    invoice.revision = F("revision") + 1
    invoice.save(update_fields=["status", "revision"])
    invoice.refresh_from_db(fields=["revision"])
    return invoice


def invoice_touch(*, invoice_id: int) -> None:
    """Something shown on the invoice's page changed (a credit note, a payment)."""
    Invoice.objects.filter(id=invoice_id).update(revision=F("revision") + 1)
