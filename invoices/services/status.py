from typing import Any

from django.db import transaction
from django.db.models import F

from core.errors import DomainError
from core.webhooks import webhook_event_emit, webhook_events_emit_many, webhook_listened
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
    if status in TOLD:
        webhook_event_emit(type=TOLD[status], data=invoice_event_data(invoice))
    return invoice


# The moves the operator's systems are told of (core.webhooks), as they happen.
TOLD = {"paid": "invoice.paid", "overdue": "invoice.overdue"}


def invoice_event_data(invoice: Invoice) -> dict[str, Any]:
    """An invoice as a webhook tells it: who, how much, and where it stands."""
    return {
        "invoice": invoice.id,
        "number": f"{invoice.series.prefix}{invoice.number}",
        "customer": str((invoice.buyer or {}).get("customer_number", "")),
        "total": str(invoice.total),
        "currency": invoice.currency,
        "due_date": invoice.due_date.isoformat(),
        "status": invoice.status,
    }


def invoices_told(*, status: str, ids: list[int]) -> None:
    """``invoice_set_status``'s webhook, for invoices moved in bulk (a BgMax file)."""
    if status not in TOLD or not ids or not webhook_listened(TOLD[status]):
        return
    for start in range(0, len(ids), 5000):
        told = Invoice.objects.filter(id__in=ids[start : start + 5000]).select_related("series")
        webhook_events_emit_many(
            type=TOLD[status], items=[invoice_event_data(i) for i in told.order_by("id")]
        )


def invoice_touch(*, invoice_id: int) -> None:
    """Something shown on the invoice's page changed (a credit note, a payment)."""
    Invoice.objects.filter(id=invoice_id).update(revision=F("revision") + 1)
