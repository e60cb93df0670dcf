from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone

from invoices.models import Invoice, PageEvent, PageEventKind

# "Opened again" is recorded at most once per invoice in this window, so a customer
# reloading the page does not write a row per reload.
REOPEN_WINDOW = timedelta(minutes=30)


def page_event_record_open(*, invoice: Invoice) -> str | None:
    """Record that the page was opened; returns the kind recorded, or None if throttled."""
    key = f"invoice-opened:{invoice.id}"
    if not cache.add(key, 1, timeout=int(REOPEN_WINDOW.total_seconds())):
        return None
    first = not PageEvent.objects.filter(invoice=invoice, kind=PageEventKind.FIRST_OPENED).exists()
    kind = PageEventKind.FIRST_OPENED if first else PageEventKind.OPENED_AGAIN
    PageEvent.objects.create(invoice=invoice, kind=kind, occurred_at=timezone.now())
    return kind


def page_event_record_pdf(*, invoice: Invoice) -> None:
    PageEvent.objects.create(
        invoice=invoice, kind=PageEventKind.PDF_DOWNLOADED, occurred_at=timezone.now()
    )
