"""Credit balances: what a payment's surplus spent (``Payment.surplus_used``, kept within the
surplus by a check constraint), the ledger of each spending (``CreditUse``), the payment
method ``credit`` and an index of the payments with surplus left; the admin's receivables
overview and unmatched queue (proxies). And two indexes fewer written per payment booked:
the source key's uniqueness as a constraint (without the LIKE index a unique field adds) and
the index of who matched a payment by hand only over those. And the Swedish names of the
invoices' and payments' fields the finance lists show (no change to the tables)."""

import django.db.models.deletion
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0005_bill_run_chunks'),
        ('invoices', '0009_card_payments'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='CreditUse',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('amount', models.DecimalField(decimal_places=2, max_digits=14, verbose_name='amount')),
                ('created_at', models.DateTimeField(verbose_name='spent at')),
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
        migrations.AlterModelOptions(
            name='invoice',
            options={'ordering': ['-invoice_date', '-number'], 'verbose_name': 'invoice', 'verbose_name_plural': 'invoices'},
        ),
        migrations.AlterModelOptions(
            name='payment',
            options={'ordering': ['-booked_at', '-id'], 'verbose_name': 'payment', 'verbose_name_plural': 'payments'},
        ),
        migrations.AddField(
            model_name='payment',
            name='surplus_used',
            field=models.DecimalField(decimal_places=2, default=Decimal('0'), max_digits=14, verbose_name='surplus spent'),
        ),
        migrations.AlterField(
            model_name='invoice',
            name='customer',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='invoices', to='billing.customer', verbose_name='customer'),
        ),
        migrations.AlterField(
            model_name='invoice',
            name='due_date',
            field=models.DateField(verbose_name='due date'),
        ),
        migrations.AlterField(
            model_name='invoice',
            name='invoice_date',
            field=models.DateField(verbose_name='invoice date'),
        ),
        migrations.AlterField(
            model_name='invoice',
            name='kind',
            field=models.CharField(choices=[('invoice', 'Invoice'), ('credit_note', 'Credit note')], default='invoice', max_length=12, verbose_name='kind'),
        ),
        migrations.AlterField(
            model_name='invoice',
            name='period_start',
            field=models.DateField(verbose_name='period start'),
        ),
        migrations.AlterField(
            model_name='invoice',
            name='status',
            field=models.CharField(choices=[('issued', 'Issued'), ('partly_paid', 'Partly paid'), ('paid', 'Paid'), ('overdue', 'Overdue'), ('credited', 'Credited'), ('collection', 'Handed to collection')], default='issued', max_length=12, verbose_name='status'),
        ),
        migrations.AlterField(
            model_name='invoice',
            name='total',
            field=models.DecimalField(decimal_places=2, max_digits=14, verbose_name='total'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='amount',
            field=models.DecimalField(decimal_places=2, max_digits=14, verbose_name='amount'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='bgmax_import',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='rows', to='invoices.bgmaximport', verbose_name='BgMax file'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='booked_at',
            field=models.DateTimeField(verbose_name='booked at'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='currency',
            field=models.CharField(default='SEK', max_length=3, verbose_name='currency'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='invoice',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='payments', to='invoices.invoice', verbose_name='invoice'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='matched_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='matched at'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='matched_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='matched by'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='method',
            field=models.CharField(choices=[('bankgiro', 'Bankgiro'), ('card', 'Card'), ('swish', 'Swish'), ('manual', 'Registered by hand'), ('credit', 'Credit balance')], max_length=10, verbose_name='method'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='paid_on',
            field=models.DateField(verbose_name='paid on'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='payer',
            field=models.CharField(blank=True, max_length=120, verbose_name='payer'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='record',
            field=models.PositiveIntegerField(blank=True, help_text='In the BgMax file', null=True, verbose_name='record'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='reference',
            field=models.CharField(blank=True, max_length=35, verbose_name='reference'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='source_key',
            field=models.CharField(max_length=120, verbose_name='source key'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='status',
            field=models.CharField(choices=[('booked', 'Booked'), ('unmatched', 'Unmatched')], max_length=10, verbose_name='status'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='surplus',
            field=models.DecimalField(decimal_places=2, default=Decimal('0'), max_digits=14, verbose_name='surplus'),
        ),
        migrations.AddIndex(
            model_name='payment',
            index=models.Index(condition=models.Q(('matched_by__isnull', False)), fields=['matched_by'], name='payment_matched_by'),
        ),
        migrations.AddIndex(
            model_name='payment',
            index=models.Index(condition=models.Q(('status', 'booked'), ('surplus__gt', models.F('surplus_used'))), fields=['invoice'], name='payment_credit_left'),
        ),
        migrations.AddConstraint(
            model_name='payment',
            constraint=models.UniqueConstraint(fields=('source_key',), name='payment_source_key_unique'),
        ),
        migrations.AddConstraint(
            model_name='payment',
            constraint=models.CheckConstraint(condition=models.Q(('surplus_used__gte', 0), ('surplus_used__lte', models.F('surplus'))), name='payment_surplus_used_within_surplus'),
        ),
        migrations.AddField(
            model_name='credituse',
            name='payment',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='credit_sources', to='invoices.payment', verbose_name='to'),
        ),
        migrations.AddField(
            model_name='credituse',
            name='source',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='credit_uses', to='invoices.payment', verbose_name='from'),
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
