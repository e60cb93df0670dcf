from celery import shared_task


@shared_task(acks_late=True)
def offers_generate_task(*, customer_ids: list[int]) -> None:
    """Compute these customers' offers afresh (safe to repeat: it supersedes the old ones)."""
    from offers.services import offers_generate

    offers_generate(customer_ids=customer_ids)


@shared_task
def offers_expire_task() -> None:
    from offers.services import offers_expire

    offers_expire()


@shared_task
def offers_for_bill_run_task(*, bill_run_id: int) -> None:
    """After a bill run: the customers just invoiced get offers from their latest usage."""
    from invoices.models import Invoice

    ids = list(
        Invoice.objects.filter(bill_run_id=bill_run_id).values_list("customer_id", flat=True)
    )
    for start in range(0, len(ids), 2000):
        offers_generate_task.delay(customer_ids=ids[start : start + 2000])
