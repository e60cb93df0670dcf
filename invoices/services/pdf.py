"""The legacy PDF, rendered by WeasyPrint from the same data and texts as the page."""

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.template.loader import render_to_string
from django.utils import translation

from invoices.models import Invoice
from invoices.page import invoice_page_context


def invoice_pdf_render(invoice: Invoice) -> bytes:
    from weasyprint import HTML

    with translation.override(invoice.language):
        html = render_to_string(
            "invoices/pdf.html", invoice_page_context(invoice, invoice.language)
        )
    return HTML(string=html).write_pdf()


def invoice_pdf_ensure(*, invoice_id: int) -> FieldFile:
    """The stored PDF of an invoice, rendered on first need. Two callers render it once:
    the second waits on the row lock and then finds the file."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(id=invoice_id)
        if invoice.pdf and default_storage.exists(invoice.pdf.name):
            return invoice.pdf
        invoice.pdf.save(f"{invoice.id}.pdf", ContentFile(invoice_pdf_render(invoice)), save=False)
        invoice.save(update_fields=["pdf"])
        return invoice.pdf
