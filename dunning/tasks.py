from celery import shared_task


@shared_task(acks_late=True)
def dunning_run_task() -> dict[str, int]:
    """Beat, twice a day: overdue transitions, friendly notices, reminders and final notices
    whose day has come (Europe/Stockholm). Idempotent: a second run the same day, or a
    retried one, sends nothing twice."""
    from dataclasses import asdict

    from django.utils import timezone

    from dunning.services.run import dunning_run

    return asdict(dunning_run(today=timezone.localdate()))
