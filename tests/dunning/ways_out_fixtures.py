"""Helpers the ways-out tests share: a payment booked from a BgMax file, the active policy,
what the outbox holds for an invoice, and a day to be on."""

import importlib
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal

import pytest
import time_machine

from dunning.models import DunningPolicy
from invoices.models import Invoice, OutboundMessage
from invoices.services.payments import bgmax_import
from tests.billing.bgmax_files import Deposit, File, Paid, bgmax_file
from tests.dunning.conftest import STOCKHOLM


@pytest.fixture
def on_20_november() -> Iterator[None]:
    """The clock at noon on 20 November 2026 in Stockholm: eleven days before the due date
    of the invoices made here."""
    with time_machine.travel(datetime(2026, 11, 20, 12, tzinfo=STOCKHOLM)):
        yield


@pytest.fixture
def seeded_policy() -> None:
    """The seeded policy and reference rate, for a transactional test: another one's flush
    may have taken them away (the migration's own seed, which adds only what is missing)."""
    from django.apps import apps

    importlib.import_module("dunning.migrations.0002_default_policy").seed(apps, None)


def pay(invoice: Invoice, amount: str, *, on: date, serial: str) -> None:
    """``amount`` kronor paid by bankgiro on ``on`` with the invoice's OCR reference."""
    ore = int(Decimal(amount) * 100)
    made = File(
        [Deposit([Paid(ore, invoice.ocr or "")], payment_date=f"{on:%Y%m%d}", serial=serial)]
    )
    bgmax_import(data=bgmax_file(made), name=f"pay-{serial}.txt")


def policy(**changes: object) -> DunningPolicy:
    """The active policy (seeded "Standard"), with ``changes`` saved."""
    active = DunningPolicy.objects.get(is_active=True)
    for field, value in changes.items():
        setattr(active, field, value)
    if changes:
        active.save()
    return active


def outbox(invoice: Invoice, channel: str) -> list[OutboundMessage]:
    """The invoice's messages on ``channel``, oldest first."""
    return list(
        OutboundMessage.objects.filter(invoice=invoice, channel=channel).order_by(
            "created_at", "id"
        )
    )
