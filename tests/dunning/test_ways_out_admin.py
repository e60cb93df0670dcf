"""Finance staff set the ways out on the policy (the plan's fee within the legal cap) and read
what was granted; the admin speaks Swedish."""

from datetime import date
from decimal import Decimal

import pytest
from django.test import Client

from dunning.admin import DunningPolicyForm
from dunning.models import DunningPolicy, GrantedBy
from dunning.services.ways_out import dispute_open, instalment_plan_grant, postponement_grant

pytestmark = pytest.mark.django_db


def form_data(policy: DunningPolicy, **changes: object) -> dict[str, object]:
    data = {field: getattr(policy, field) for field in DunningPolicyForm.Meta.fields}
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("fee", "valid"),
    [("0.00", True), ("170.00", True), ("170.01", False), ("-1.00", False)],
)
def test_the_plan_fee_is_at_most_the_legal_cap(fee: str, valid: bool) -> None:
    policy = DunningPolicy.objects.get(is_active=True)
    form = DunningPolicyForm(data=form_data(policy, instalment_fee=Decimal(fee)), instance=policy)
    assert form.is_valid() is valid
    if not valid and Decimal(fee) > 0:
        assert "Högst 170,00\xa0kr" in form.errors["instalment_fee"][0]


def test_a_plan_has_two_to_six_parts() -> None:
    policy = DunningPolicy.objects.get(is_active=True)
    form = DunningPolicyForm(data=form_data(policy, instalment_max_parts=7), instance=policy)
    assert form.errors["instalment_max_parts"] == ["En plan har 2 till 6 delar."]


def test_the_policy_page_shows_the_ways_out(admin_client: Client) -> None:
    policy = DunningPolicy.objects.get(is_active=True)
    page = admin_client.get(f"/admin/dunning/dunningpolicy/{policy.id}/change/").content.decode()
    assert "Anstånd och delbetalning för kunden" in page
    assert "anstånd högst, dagar efter det aktuella förfallodatumet" in page.lower()


def test_what_was_granted_is_listed_read_only(admin_client: Client, invoice) -> None:
    postponement_grant(
        invoice_id=invoice.id,
        new_due_date=date(2026, 12, 10),
        granted_by=GrantedBy.CUSTOMER,
        today=date(2026, 11, 20),
    )
    plan = instalment_plan_grant(
        invoice_id=invoice.id, parts=2, granted_by=GrantedBy.CUSTOMER, today=date(2026, 11, 20)
    ).row
    dispute = dispute_open(
        invoice_id=invoice.id,
        line_id=invoice.lines.get(kind="fee").id,
        reason="Okänd",
        opened_by=GrantedBy.CUSTOMER,
    ).row
    for path in ("postponement", "instalmentplan", "dispute"):
        listing = admin_client.get(f"/admin/dunning/{path}/")
        assert listing.status_code == 200
        assert invoice.display_number in listing.content.decode()
    shown = admin_client.get(f"/admin/dunning/instalmentplan/{plan.id}/change/").content.decode()
    assert "avbetalningsplan" in shown.lower()
    assert admin_client.get(f"/admin/dunning/dispute/{dispute.id}/change/").status_code == 200
    assert admin_client.get("/admin/dunning/postponement/add/").status_code == 403
