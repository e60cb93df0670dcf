"""Credit balances: what a payment's surplus spent (``Payment.surplus_used``, kept within the
surplus by a check constraint), the ledger of each spending (``CreditUse``), the payment
method ``credit``; and the admin's receivables overview and unmatched queue (proxies)."""

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
                'ordering': ['payment', 'source'],
            },
        ),
        migrations.AddField(
            model_name='payment',
            name='surplus_used',
            field=models.DecimalField(decimal_places=2, default=Decimal('0'), max_digits=14),
        ),
        migrations.AlterField(
            model_name='payment',
            name='method',
            field=models.CharField(choices=[('bankgiro', 'Bankgiro'), ('card', 'Card'), ('swish', 'Swish'), ('manual', 'Registered by hand'), ('credit', 'Credit balance')], max_length=10),
        ),
        migrations.AddConstraint(
            model_name='payment',
            constraint=models.CheckConstraint(condition=models.Q(('surplus_used__gte', 0), ('surplus_used__lte', models.F('surplus'))), name='payment_surplus_used_within_surplus'),
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
    ]
