"""A completed run's PDFs, rendered by the workers in the background at a bounded rate; one
opened first is rendered then and not again."""

from datetime import date

import pytest

from invoices.models import Invoice
from invoices.services.bill_run import bill_run_start
from invoices.services.pdf import invoice_pdf_ensure
from invoices.tasks import bill_run_execute_task, invoice_pdfs_render_run_task
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rendering(settings) -> None:
    settings.INVOICE_PDF_PRERENDER = True
    settings.INVOICE_PDF_RENDER_PER_SECOND = 1000
    settings.INVOICE_PDF_RENDER_BATCH = 2


def test_a_completed_run_has_every_pdf_rendered_in_batches(rendering, monkeypatch) -> None:
    SubscriptionFactory.create_batch(5)
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    opened_first = []
    real = invoice_pdf_ensure

    def counted(*, invoice_id: int):
        opened_first.append(invoice_id)
        return real(invoice_id=invoice_id)

    monkeypatch.setattr("invoices.services.pdf.invoice_pdf_ensure", counted)
    bill_run_execute_task.delay(bill_run_id=run.id)
    assert not Invoice.objects.filter(pdf="").exists()
    assert sorted(opened_first) == sorted(Invoice.objects.values_list("id", flat=True))


def test_a_pdf_opened_first_is_not_rendered_again(rendering, monkeypatch) -> None:
    SubscriptionFactory.create_batch(3)
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    from invoices.services.bill_run import bill_run_execute

    bill_run_execute(bill_run_id=run.id)
    first = Invoice.objects.order_by("id").first()
    stored = invoice_pdf_ensure(invoice_id=first.id).name
    rendered = []
    monkeypatch.setattr(
        "invoices.services.pdf.invoice_pdf_render",
        lambda invoice, **_: rendered.append(invoice.id) or b"%PDF-1.7 test",
    )
    invoice_pdfs_render_run_task.delay(bill_run_id=run.id, after_id=0)
    assert first.id not in rendered
    assert len(rendered) == 2
    first.refresh_from_db()
    assert first.pdf.name == stored


def test_the_next_batch_waits_so_the_run_keeps_to_the_rate(settings, monkeypatch) -> None:
    settings.INVOICE_PDF_RENDER_PER_SECOND = 4
    settings.INVOICE_PDF_RENDER_BATCH = 2
    SubscriptionFactory.create_batch(3)
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    from invoices.services.bill_run import bill_run_execute

    bill_run_execute(bill_run_id=run.id)
    monkeypatch.setattr(
        "invoices.services.pdf.invoice_pdf_render", lambda invoice, **_: b"%PDF-1.7"
    )
    sent = []
    monkeypatch.setattr(
        invoice_pdfs_render_run_task, "apply_async", lambda **kwargs: sent.append(kwargs)
    )
    invoice_pdfs_render_run_task(bill_run_id=run.id, after_id=0)
    (next_batch,) = sent
    assert 0 < next_batch["countdown"] <= 0.5  # two PDFs at 4 a second: half a second a batch
    first_two = sorted(Invoice.objects.values_list("id", flat=True))[:2]
    assert next_batch["kwargs"] == {"bill_run_id": run.id, "after_id": first_two[-1]}


def test_nothing_is_rendered_in_the_background_when_the_rate_is_zero(settings) -> None:
    settings.INVOICE_PDF_RENDER_PER_SECOND = 0
    SubscriptionFactory.create_batch(2)
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    bill_run_execute_task.delay(bill_run_id=run.id)
    assert Invoice.objects.filter(pdf="").count() == 2
