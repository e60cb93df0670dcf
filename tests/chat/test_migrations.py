"""Migrations of the chat that move data, run forwards over rows written before them."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from chat.models import Conversation

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("chat", "0002_canned_replies")]
AFTER = [("chat", "0003_queue_summary_and_client_ids")]


def test_conversations_opened_before_the_snapshot_get_their_invoices_number_and_buyer(
    invoice,
) -> None:
    # given a conversation stored before the queue's summary kept the invoice's words
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps.get_model("chat", "Conversation")
    opened = old.objects.create(
        invoice_id=invoice.id,
        customer_id=invoice.customer_id,
        language="sv",
        created_at=timezone.now(),
    )
    try:
        # when the migration runs
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    # then it shows the invoice's number and the buyer's name, and counts no change yet
    conversation = Conversation.objects.get(id=opened.id)
    assert conversation.invoice_number == invoice.display_number
    assert conversation.customer_name == invoice.buyer["name"] == "Anna"
    assert conversation.version == 0
