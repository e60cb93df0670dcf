from celery import shared_task


@shared_task
def idempotent_requests_delete_expired_task() -> None:
    """The API's stored answers to Idempotency-Keys older than a day (run hourly)."""
    from core.idempotency import idempotent_requests_delete_expired

    idempotent_requests_delete_expired()
