"""Two workers running the dunning pass at the same moment on PostgreSQL: each invoice gets
its reminder once (row locks, ``skip_locked``, one action per invoice and step)."""

import importlib
import threading
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection

from dunning.models import DunningAction
from dunning.services.run import dunning_run
from invoices.models import OutboundMessage
from tests.dunning.conftest import DUE, make_invoice


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_each_reminder_once(postgres, settings) -> None:
    # given the seeded policy and rate (a transactional test elsewhere may have flushed them)
    # and six overdue invoices, read two at a time
    importlib.import_module("dunning.migrations.0002_default_policy").seed(apps, None)
    settings.DUNNING_CHUNK_SIZE = 2
    invoices = [make_invoice() for _ in range(6)]
    dunning_run(today=DUE + timedelta(days=1))
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker() -> None:
        try:
            start.wait(timeout=30)
            dunning_run(today=DUE + timedelta(days=5))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    # when two workers run the reminder day's pass at once
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # then every invoice got one reminder and one e-mail, whoever took it
    assert errors == []
    reminders = DunningAction.objects.filter(key="reminder:1")
    assert sorted(reminders.values_list("invoice_id", flat=True)) == sorted(
        invoice.id for invoice in invoices
    )
    emails = OutboundMessage.objects.filter(channel="email", subject__startswith="Påminnelse")
    assert emails.count() == len(invoices)
