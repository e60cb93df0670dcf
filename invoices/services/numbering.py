from django.db import transaction

from invoices.models import InvoiceSeries

INVOICE_SERIES = "F"
CREDIT_NOTE_SERIES = "K"
# A series that does not exist yet starts here (the initial migration creates both).
SERIES_DEFAULTS = {
    INVOICE_SERIES: {"prefix": "", "next_number": 100001},
    CREDIT_NOTE_SERIES: {"prefix": "K", "next_number": 1},
}


def series_allocate(*, code: str, count: int) -> tuple[InvoiceSeries, int]:
    """Reserve ``count`` consecutive numbers; returns the series and the first number.

    Call inside the transaction that inserts the documents: the row lock is held until
    commit, so a rollback returns the numbers and concurrent runs queue here, which keeps
    every series gapless.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("allocate numbers inside the issuing transaction")
    series, _created = InvoiceSeries.objects.select_for_update().get_or_create(
        code=code, defaults=SERIES_DEFAULTS.get(code, {})
    )
    first = series.next_number
    series.next_number = first + count
    series.save(update_fields=["next_number"])
    return series, first
