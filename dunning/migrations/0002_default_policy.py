"""Safe defaults: one active policy and Riksbanken's reference rate.

The policy: a friendly notice 3 days before the due date; a first reminder 5 days after it,
free; a second reminder with the reminder fee (taken only from customers whose terms allow
it, once per claim); a final notice; each moving the due date by the settings' default
(14 days); collection allowed from the day after the final notice's due date, by hand.
"""

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import migrations


def seed(apps, schema_editor):
    ReferenceRate = apps.get_model("dunning", "ReferenceRate")
    DunningPolicy = apps.get_model("dunning", "DunningPolicy")
    DunningStep = apps.get_model("dunning", "DunningStep")
    ReferenceRate.objects.get_or_create(
        valid_from=date(2025, 7, 1),
        defaults={
            "rate": Decimal("2.00"),
            "source": "Riksbanken, referensränta (räntelagen § 9); check each 1 January and 1 July",
        },
    )
    if DunningPolicy.objects.exists():
        return
    policy = DunningPolicy.objects.create(
        name="Standard",
        is_active=True,
        friendly_notice_enabled=True,
        friendly_notice_days_before=3,
        charge_interest=True,
        collection_after_days=1,
    )
    shift = settings.DUNNING_DUE_DATE_SHIFT_DAYS
    fee = min(Decimal("60.00"), settings.DUNNING_REMINDER_FEE_CAP)
    DunningStep.objects.bulk_create(
        [
            DunningStep(policy=policy, position=1, kind="reminder", days_after_due=5,
                        charge_fee=False, fee=Decimal("0.00"), due_date_shift_days=shift),
            DunningStep(policy=policy, position=2, kind="reminder", days_after_due=1,
                        charge_fee=True, fee=fee, due_date_shift_days=shift),
            DunningStep(policy=policy, position=3, kind="final_notice", days_after_due=1,
                        charge_fee=False, fee=Decimal("0.00"), due_date_shift_days=shift),
        ]
    )


class Migration(migrations.Migration):
    dependencies = [("dunning", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
