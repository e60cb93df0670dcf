"""The surplus ledger: what a payment's booking left over (``Payment.surplus_at_booking``, set
once) and each later move of its surplus (``SurplusMove``: a credit note moving paid money
into it, a card refund taking from it). Filled in for earlier payments by the next
migration."""

import django.db.models.deletion
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('invoices', '0011_lean_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='SurplusMove',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('credit_note', 'Credit note'), ('refund', 'Card refund')], max_length=12, verbose_name='kind')),
                ('amount', models.DecimalField(decimal_places=2, max_digits=14, verbose_name='amount')),
                ('moved_on', models.DateField(verbose_name='moved on')),
                ('created_at', models.DateTimeField(verbose_name='recorded at')),
            ],
            options={
                'verbose_name': 'surplus move',
                'verbose_name_plural': 'surplus moves',
                'ordering': ['payment', 'id'],
            },
        ),
        migrations.AddField(
            model_name='payment',
            name='surplus_at_booking',
            field=models.DecimalField(decimal_places=2, default=Decimal('0'), max_digits=14, verbose_name='surplus at booking'),
        ),
        migrations.AddConstraint(
            model_name='payment',
            constraint=models.CheckConstraint(condition=models.Q(('surplus_at_booking__gte', 0)), name='payment_surplus_at_booking_not_negative'),
        ),
        migrations.AddField(
            model_name='surplusmove',
            name='credit_note',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='surplus_moves', to='invoices.invoice', verbose_name='credit note'),
        ),
        migrations.AddField(
            model_name='surplusmove',
            name='payment',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='surplus_moves', to='invoices.payment', verbose_name='payment'),
        ),
        migrations.AddField(
            model_name='surplusmove',
            name='refund',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='surplus_moves_caused', to='invoices.payment', verbose_name='refund'),
        ),
        migrations.AddConstraint(
            model_name='surplusmove',
            constraint=models.CheckConstraint(condition=models.Q(('amount', 0), _negated=True), name='surplus_move_not_zero'),
        ),
        migrations.AddConstraint(
            model_name='surplusmove',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('credit_note__isnull', False), ('kind', 'credit_note'), ('refund__isnull', True)), models.Q(('credit_note__isnull', True), ('kind', 'refund'), ('refund__isnull', False)), _connector='OR'), name='surplus_move_names_its_cause'),
        ),
    ]
