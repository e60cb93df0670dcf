"""Room on each page of the invoice table for the new version of a row.

An issued invoice is updated afterwards (paid, overdue, its page's revision, its stored PDF).
With free space on the row's page PostgreSQL writes the new version beside the old one
without touching the table's indexes (a HOT update): booking a day's payments updates every
invoice paid that day. Rows written from now on get the room; older pages get it as they are
rewritten (VACUUM FULL, pg_repack).
"""

from django.db import migrations

FILLFACTOR = 70


def room(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE invoices_invoice SET (fillfactor = {FILLFACTOR})")


def no_room(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE invoices_invoice RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("invoices", "0005_payments")]

    operations = [migrations.RunPython(room, no_room)]
