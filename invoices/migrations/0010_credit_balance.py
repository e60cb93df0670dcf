"""Credit balances: what a payment's surplus spent (``Payment.surplus_used``, kept within the
surplus by a check constraint), the ledger of each spending (``CreditUse``), the payment
method ``credit`` and an index of the payments with surplus left; the admin's receivables
overview and unmatched queue (proxies). And two indexes fewer written per payment booked:
the source key's uniqueness as a constraint (without the LIKE index a unique field adds) and
the index of who matched a payment by hand only over those."""

import django.db.models.deletion
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('invoices', '0008_invoice_charges'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='CreditUse',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('amount', models.DecimalField(decimal_places=2, max_digits=14)),
                ('created_at', models.DateTimeField()),
            ],
            options={
                'verbose_name': 'credit balance spent',
                'verbose_name_plural': 'credit balances spent',
                'ordering': ['payment', 'source'],
            },
        ),
        migrations.CreateModel(
            name='Receivables',
            fields=[
            ],
            options={
                'verbose_name': 'receivables overview',
                'verbose_name_plural': 'receivables overview',
                'proxy': True,
                'indexes': [],
                'constraints': [],
            },
            bases=('invoices.invoice',),
        ),
        migrations.CreateModel(
            name='UnmatchedPayment',
            fields=[
            ],
            options={
                'verbose_name': 'unmatched payment',
                'verbose_name_plural': 'unmatched payments',
                'proxy': True,
                'indexes': [],
                'constraints': [],
            },
            bases=('invoices.payment',),
        ),
        migrations.AddField(
            model_name='payment',
            name='surplus_used',
            field=models.DecimalField(decimal_places=2, default=Decimal('0'), max_digits=14),
        ),
        migrations.AlterField(
            model_name='payment',
            name='matched_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='payment',
            name='method',
            field=models.CharField(choices=[('bankgiro', 'Bankgiro'), ('card', 'Card'), ('swish', 'Swish'), ('manual', 'Registered by hand'), ('credit', 'Credit balance')], max_length=10),
        ),
        migrations.AlterField(
            model_name='payment',
            name='source_key',
            field=models.CharField(max_length=120),
        ),
        migrations.AddIndex(
            model_name='payment',
            index=models.Index(condition=models.Q(('matched_by__isnull', False)), fields=['matched_by'], name='payment_matched_by'),
        ),
        migrations.AddConstraint(
            model_name='payment',
            constraint=models.UniqueConstraint(fields=('source_key',), name='payment_source_key_unique'),
        ),
        migrations.AddConstraint(
            model_name='payment',
            constraint=models.CheckConstraint(condition=models.Q(('surplus_used__gte', 0), ('surplus_used__lte', models.F('surplus'))), name='payment_surplus_used_within_surplus'),
        ),
        migrations.AddIndex(
            model_name='payment',
            index=models.Index(condition=models.Q(('status', 'booked'), ('surplus__gt', models.F('surplus_used'))), fields=['invoice'], name='payment_credit_left'),
        ),
        migrations.AddField(
            model_name='credituse',
            name='payment',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='credit_sources', to='invoices.payment'),
        ),
        migrations.AddField(
            model_name='credituse',
            name='source',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='credit_uses', to='invoices.payment'),
        ),
        migrations.AddConstraint(
            model_name='credituse',
            constraint=models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='credit_use_amount_positive'),
        ),
        migrations.AddConstraint(
            model_name='credituse',
            constraint=models.UniqueConstraint(fields=('source', 'payment'), name='credit_use_once'),
        ),
    ]
