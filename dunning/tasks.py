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


@shared_task(acks_late=True)
def instalment_plans_check_task() -> dict[str, int]:
    """Beat, daily: instalment plans with a part missed are broken (the customer is told)
    and paid ones completed (Europe/Stockholm). Idempotent: a plan ends once, and a second
    run, or a retried one, tells nobody twice."""
    from dataclasses import asdict

    from django.utils import timezone

    from dunning.services.ways_out import instalment_plans_check

    return asdict(instalment_plans_check(today=timezone.localdate()))
