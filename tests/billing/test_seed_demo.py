"""seed_demo and demo_links: realistic structure, re-runnable, and links that open."""

import re
from datetime import date
from io import StringIO
from urllib.parse import urlsplit

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count
from django.test import Client

from billing.models import Customer, Plan, Subscription, UsageRecord
from chat.selectors import is_support_agent
from invoices.models import Invoice, InvoiceLine, OutboundMessage

# Transactional, as in production: each bill-run chunk commits and delivery runs after commit.
pytestmark = pytest.mark.django_db(transaction=True)

# 23:00 in Stockholm: the seed must use the local date, not UTC's.
TODAY = "2026-11-22T22:00:00+00:00"
CUSTOMERS = 12


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", customers=CUSTOMERS, stdout=out)
    return out.getvalue()


@pytest.fixture
def seeded() -> str:
    with time_machine.travel(TODAY, tick=False):
        return _seed()


def test_seed_issues_six_past_months_with_realistic_structure(seeded: str) -> None:
    # given a demo seeded on 2026-11-22
    # then May–October are invoiced, one invoice per customer and month at most
    periods = sorted(set(Invoice.objects.values_list("period_start", flat=True)))
    assert periods == [date(2026, month, 1) for month in range(5, 11)]
    assert Customer.objects.count() == CUSTOMERS
    assert Invoice.objects.filter(period_start=date(2026, 10, 1)).count() == CUSTOMERS
    # a household: one customer with three mobile numbers
    assert (
        Subscription.objects.filter(plan__kind="mobile")
        .values("customer")
        .annotate(n=Count("id"))
        .filter(n__gte=3)
        .exists()
    )
    # someone paid for data beyond the plan, someone roamed outside the EU/EEA
    assert InvoiceLine.objects.filter(kind="data_overage").exists()
    roaming = InvoiceLine.objects.filter(kind="roaming", amount__gt=0)
    assert roaming.exists()
    assert UsageRecord.objects.filter(country="US").exists()
    # usage is daily aggregates at noon Stockholm time, over six months
    usage = UsageRecord.objects.order_by("occurred_at")
    assert usage.first().occurred_at.date() >= date(2026, 5, 1)
    assert usage.last().occurred_at.date() < date(2026, 11, 22)
    # a plan no longer sold, priced above what new customers pay for more
    legacy = Plan.objects.get(available_for_new_customers=False)
    assert legacy.monthly_fee > Plan.objects.get(code="mobil-10").monthly_fee
    assert Subscription.objects.filter(plan=legacy).exists()
    # every sent invoice is in the outbox; both languages occur
    assert OutboundMessage.objects.count() >= Invoice.objects.count() * 0.8
    assert set(Customer.objects.values_list("language", flat=True)) == {"sv", "en"}
    finance = get_user_model().objects.get(username="finance")
    assert finance.is_staff
    assert not finance.is_superuser
    assert finance.has_perm("invoices.view_invoice")
    assert finance.has_perm("billing.change_billrun")
    support = get_user_model().objects.get(username="support")
    assert is_support_agent(support)
    assert not support.is_superuser
    assert support.has_perm("chat.change_cannedreply")
    assert not support.has_perm("invoices.view_invoice")


def test_running_seed_again_adds_nothing(seeded: str) -> None:
    counts = (Customer.objects.count(), UsageRecord.objects.count(), Invoice.objects.count())
    with time_machine.travel(TODAY, tick=False):
        output = _seed()
    assert "0 created" in output
    assert (
        Customer.objects.count(),
        UsageRecord.objects.count(),
        Invoice.objects.count(),
    ) == counts


def test_demo_links_open_with_200(seeded: str) -> None:
    # when demo_links prints its links
    out = StringIO()
    with time_machine.travel(TODAY, tick=False):
        call_command("demo_links", base_url="http://127.0.0.1:8000", stdout=out)
    output = out.getvalue()
    urls = re.findall(r"http://127\.0\.0\.1:8000/i/[\w-]+/", output)
    # then six stories, each opens
    for story in ("Heavy user", "Light user", "Roamer", "Household", "Binding", "English"):
        assert story in output
    assert len(urls) == 6
    client = Client()
    for url in urls:
        assert client.get(urlsplit(url).path).status_code == 200
    assert "http://127.0.0.1:8000/admin/" in output
    assert "password touchpoint-demo" in output
    # and the support console with its demo agent, who gets in
    assert "http://127.0.0.1:8000/support/  user support, password touchpoint-support" in output
    assert client.login(username="support", password="touchpoint-support")
    assert client.get("/support/").status_code == 200
