from datetime import date
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User

from invoices.models import Invoice
from invoices.services.bill_run import bill_run_execute, bill_run_start
from tests.factories import SubscriptionFactory


def issue_october(*subs) -> list[Invoice]:
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    bill_run_execute(bill_run_id=run.id)
    return list(Invoice.objects.order_by("id"))


@pytest.fixture
def invoice() -> Invoice:
    """One customer's October invoice: a 299 kr and a 199.50 kr subscription."""
    sub = SubscriptionFactory(agreed_monthly_price=Decimal("299.00"), customer__name="Anna")
    SubscriptionFactory(customer=sub.customer, agreed_monthly_price=Decimal("199.50"))
    (invoice,) = issue_october()
    return invoice


@pytest.fixture
def two_invoices() -> tuple[Invoice, Invoice]:
    SubscriptionFactory()
    SubscriptionFactory()
    first, second = issue_october()
    return first, second


def make_agent(username: str, *, support: bool = True) -> User:
    user = User.objects.create_user(username, password="pw-for-tests-1", is_staff=True)
    if support:
        group, _ = Group.objects.get_or_create(name=settings.CHAT_SUPPORT_GROUP)
        user.groups.add(group)
    return user


@pytest.fixture
def agent() -> User:
    return make_agent("agnes")


@pytest.fixture
def other_agent() -> User:
    return make_agent("olle")
