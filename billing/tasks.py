from celery import shared_task


@shared_task
def plan_changes_apply_due_task() -> None:
    """Daily: apply the plan changes whose day has come (idempotent)."""
    from billing.services import plan_changes_apply_due

    plan_changes_apply_due()
