from celery import shared_task


@shared_task
def idempotent_requests_delete_expired_task() -> None:
    """The API's stored answers to Idempotency-Keys older than a day (run hourly)."""
    from core.idempotency import idempotent_requests_delete_expired

    idempotent_requests_delete_expired()


@shared_task
def webhook_deliveries_send_task() -> None:
    """Outgoing webhooks that are due (after a commit that made events, and every minute)."""
    from core.webhooks import webhook_deliveries_send_due

    webhook_deliveries_send_due()
