from decimal import Decimal

import pytest

from invoices.models import Invoice
from tests.chat.conftest import issue_october
from tests.factories import SubscriptionFactory


@pytest.fixture
def invoice() -> Invoice:
    """One customer's October invoice of 299 kr (due 1 December 2026)."""
    SubscriptionFactory(agreed_monthly_price=Decimal("299.00"))
    (issued,) = issue_october()
    return issued
