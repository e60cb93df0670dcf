from django.db import transaction

from invoices.models import InvoiceSeries

INVOICE_SERIES = "F"
CREDIT_NOTE_SERIES = "K"


def series_allocate(*, code: str, count: int) -> tuple[InvoiceSeries, int]:
    """Reserve ``count`` consecutive numbers; returns the series and the first number.

    Call inside the transaction that inserts the documents: the row lock is held until
    commit, so a rollback returns the numbers and concurrent runs queue here, which keeps
    every series gapless.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("allocate numbers inside the issuing transaction")
    series = InvoiceSeries.objects.select_for_update().get(code=code)
    first = series.next_number
    series.next_number = first + count
    series.save(update_fields=["next_number"])
    return series, first
