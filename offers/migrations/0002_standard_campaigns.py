from decimal import Decimal

from django.db import migrations

CAMPAIGNS = [
    ("right-size", "Right-size: the plan that fits the usage", "right_size"),
    ("end-of-binding", "End of binding: best tariff before the binding period ends",
     "end_of_binding"),
    ("loyalty-parity", "Loyalty parity: never above the new-customer price", "loyalty_parity"),
]


def create(apps, schema_editor):
    Campaign = apps.get_model("offers", "Campaign")
    for code, name, kind in CAMPAIGNS:
        Campaign.objects.get_or_create(
            code=code, defaults={"name": name, "kind": kind, "holdout_share": Decimal("0.100")}
        )


class Migration(migrations.Migration):
    dependencies = [("offers", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
