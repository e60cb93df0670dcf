from django.db import migrations


def create_series(apps, schema_editor):
    InvoiceSeries = apps.get_model("invoices", "InvoiceSeries")
    InvoiceSeries.objects.get_or_create(code="F", defaults={"prefix": "", "next_number": 100001})
    InvoiceSeries.objects.get_or_create(code="K", defaults={"prefix": "K", "next_number": 1})


class Migration(migrations.Migration):
    dependencies = [("invoices", "0001_initial")]

    operations = [migrations.RunPython(create_series, migrations.RunPython.noop)]
