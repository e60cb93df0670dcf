"""Everything the invoice page shows, computed from the issued document's snapshots."""

from typing import Any

from invoices.models import Invoice


def invoice_page_context(invoice: Invoice, language: str) -> dict[str, Any]:
    lines = list(invoice.lines.all())
    return {"invoice": invoice, "lines": lines, "language": language}
