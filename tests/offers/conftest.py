"""Fixtures the offer page tests share (a test module's own fixture of the same name wins)."""

import pytest

from tests.offers.page_fixtures import Billed, Catalogue, billed_customer, campaigns, catalogue


@pytest.fixture
def plans() -> Catalogue:
    campaigns()
    return catalogue()


@pytest.fixture
def light_user(plans: Catalogue) -> Billed:
    """Mobil 30 GB at 399 kr, using 2 GB a month, consent in force: offered Mobil 3 GB."""
    return billed_customer(plans.large, consent=True)
