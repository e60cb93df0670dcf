from celery import shared_task

from invoices.models import Invoice


@shared_task(acks_late=True)
def invoice_deliver_task(*, invoice_ids: list[int]) -> None:
    """Deliver each issued invoice that has not been delivered yet (safe to run twice)."""
    from invoices.models import PageEventKind
    from invoices.services.delivery import invoice_deliver

    pending = (
        Invoice.objects.filter(id__in=invoice_ids)
        .exclude(events__kind=PageEventKind.DELIVERED)
        .select_related("customer", "series")
    )
    for invoice in pending:
        invoice_deliver(invoice=invoice)


@shared_task(acks_late=True)
def invoice_render_pdfs_task(*, invoice_ids: list[int]) -> None:
    """Render and store the PDFs of these invoices; ones already stored are skipped, so a
    retried or repeated task renders nothing twice."""
    from invoices.services.pdf import invoice_pdf_ensure

    for invoice_id in invoice_ids:
        invoice_pdf_ensure(invoice_id=invoice_id)


@shared_task(acks_late=True)
def bill_run_execute_task(*, bill_run_id: int) -> None:
    """Run or resume a bill run; running it twice issues nothing twice."""
    from invoices.services.bill_run import bill_run_execute
    from offers.tasks import offers_for_bill_run_task

    run = bill_run_execute(bill_run_id=bill_run_id)
    if run.status == "completed":
        offers_for_bill_run_task.delay(bill_run_id=bill_run_id)
        _render_run_pdfs(bill_run_id)


@shared_task(acks_late=True)
def invoice_payments_announce_task(*, invoice_ids: list[int]) -> None:
    """Tell the open pages of these invoices that what they show of payments changed (a
    payment booked, a refund): each page then reads its own summary again through its link.
    Only the invoice's id goes out, to that invoice's group. Best effort, like the chat's
    doorbell: a page that misses it shows the change when it is next opened."""
    from chat.broadcast import payments_changed_send

    payments_changed_send(invoice_ids=invoice_ids)


@shared_task
def stripe_events_catch_up_task() -> None:
    """Daily: apply Stripe's events of the last days whose webhook never reached us."""
    from django.conf import settings

    from invoices.card_gateway import card_payments_enabled
    from invoices.services.card_payments import stripe_events_catch_up

    if card_payments_enabled():
        stripe_events_catch_up(days=settings.STRIPE_EVENTS_CATCH_UP_DAYS)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def bill_run_chunk_task(*, chunk_id: int) -> None:
    """Issue one chunk of a bill run (``bill_run_workers``). A pool process killed mid-way
    rejects the message back to the queue; the task run again skips what was issued."""
    from invoices.services.bill_run_workers import bill_run_chunk_issue
    from offers.tasks import offers_for_bill_run_task

    done = bill_run_chunk_issue(chunk_id=chunk_id)
    if done.completed_run:
        from billing.models import BillRunChunk

        run_id = BillRunChunk.objects.values_list("bill_run_id", flat=True).get(id=chunk_id)
        offers_for_bill_run_task.delay(bill_run_id=run_id)
        _render_run_pdfs(run_id)


@shared_task
def bill_runs_watch_task() -> None:
    """Runs that stalled get their chunks again; finished ones are completed (beat)."""
    from invoices.services.bill_run_workers import bill_runs_watch

    bill_runs_watch()


@shared_task
def bill_run_monthly_task() -> None:
    """On the first days of a month, start last month's bill run of every billing group and
    send it to the workers; a run started before is left alone (one run per month and group,
    a second trigger does nothing)."""
    from invoices.services.bill_run_workers import bill_runs_start_last_month

    bill_runs_start_last_month()


def _render_run_pdfs(bill_run_id: int) -> None:
    from django.conf import settings

    if settings.INVOICE_PDF_PRERENDER and settings.INVOICE_PDF_RENDER_PER_SECOND > 0:
        invoice_pdfs_render_run_task.delay(bill_run_id=bill_run_id, after_id=0)


@shared_task(acks_late=True)
def invoice_pdfs_render_run_task(*, bill_run_id: int, after_id: int) -> None:
    """Render the next batch of a completed run's PDFs, then send the next batch after the
    pause that keeps the run at ``INVOICE_PDF_RENDER_PER_SECOND``. A batch run twice renders
    nothing twice (stored PDFs are skipped), so the chain survives a lost worker's retry."""
    from django.conf import settings

    from invoices.services.pdf import invoice_pdfs_render_batch

    size = settings.INVOICE_PDF_RENDER_BATCH
    batch = invoice_pdfs_render_batch(bill_run_id=bill_run_id, after_id=after_id, size=size)
    if batch.rendered < size:
        return
    pause = max(0.0, size / settings.INVOICE_PDF_RENDER_PER_SECOND - batch.seconds)
    invoice_pdfs_render_run_task.apply_async(
        kwargs={"bill_run_id": bill_run_id, "after_id": batch.last_id}, countdown=pause
    )
