"""Finance staff's dunning admin (in Swedish): the policy and its steps checked against the
law, the reference rates, the confirmed handover, and what each step sent and earned."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from dunning.admin import WAYS_OUT_FIELDS
from dunning.models import CaseStage, DunningCase, DunningPolicy, DunningStep, ReferenceRate
from invoices.models import InvoiceStatus
from tests.dunning.test_collection import READY, run_to

pytestmark = pytest.mark.django_db

POLICY_URL = "/admin/dunning/dunningpolicy/{}/change/"


def policy_form(policy: DunningPolicy, **step_changes: dict[str, object]) -> dict[str, object]:
    """The change form of ``policy`` as the admin posts it, with ``step_changes`` by
    position ("1": {"fee": "80.00"}) applied to its steps."""
    steps = list(policy.steps.order_by("position"))
    data: dict[str, object] = {
        "name": policy.name,
        "is_active": "on" if policy.is_active else "",
        "friendly_notice_enabled": "on" if policy.friendly_notice_enabled else "",
        "friendly_notice_days_before": policy.friendly_notice_days_before,
        "charge_interest": "on" if policy.charge_interest else "",
        "collection_after_days": policy.collection_after_days,
        # the customer's ways out, as they stand
        **{
            field: ("on" if value else "") if isinstance(value, bool) else value
            for field in WAYS_OUT_FIELDS
            for value in [getattr(policy, field)]
        },
        "steps-TOTAL_FORMS": len(steps),
        "steps-INITIAL_FORMS": len(steps),
        "steps-MIN_NUM_FORMS": 0,
        "steps-MAX_NUM_FORMS": 1000,
    }
    for index, step in enumerate(steps):
        fields = {
            "id": step.id,
            "policy": policy.id,
            "position": step.position,
            "kind": step.kind,
            "days_after_due": step.days_after_due,
            "charge_fee": "on" if step.charge_fee else "",
            "fee": str(step.fee),
            "due_date_shift_days": step.due_date_shift_days,
            **step_changes.get(str(step.position), {}),
        }
        data.update({f"steps-{index}-{key}": value for key, value in fields.items()})
    return data


@pytest.fixture
def policy() -> DunningPolicy:
    return DunningPolicy.objects.get(is_active=True)


def text(response) -> str:
    return response.content.decode().replace("\xa0", " ")


def test_the_seeded_policy_is_listed_with_its_steps(admin_client: Client) -> None:
    page = text(admin_client.get("/admin/dunning/dunningpolicy/"))
    assert "Påminnelse +5 → Påminnelse +1, 60,00 kr → Sista påminnelse +1" in page
    assert "Vad varje steg skickade och tjänade" in page


def test_a_step_is_changed_and_saved(admin_client: Client, policy) -> None:
    data = policy_form(policy, **{"1": {"days_after_due": 7, "due_date_shift_days": 21}})
    answer = admin_client.post(POLICY_URL.format(policy.id), data)
    assert answer.status_code == 302
    first = DunningStep.objects.get(policy=policy, position=1)
    assert (first.days_after_due, first.due_date_shift_days) == (7, 21)


def test_a_fee_above_the_legal_cap_is_refused_naming_the_cap(admin_client: Client, policy) -> None:
    data = policy_form(policy, **{"2": {"fee": "80.00"}})
    page = text(admin_client.post(POLICY_URL.format(policy.id), data))
    assert "Högst 60,00 kr: lagen begränsar påminnelseavgiften" in page
    assert DunningStep.objects.get(policy=policy, position=2).fee == Decimal("60.00")


def test_a_fee_without_the_fee_box_ticked_is_refused(admin_client: Client, policy) -> None:
    data = policy_form(policy, **{"1": {"fee": "30.00"}})
    page = text(admin_client.post(POLICY_URL.format(policy.id), data))
    assert "Kryssa i ”påminnelseavgift”" in page


def test_a_negative_shift_is_refused(admin_client: Client, policy) -> None:
    data = policy_form(policy, **{"1": {"due_date_shift_days": -1}})
    answer = admin_client.post(POLICY_URL.format(policy.id), data)
    assert answer.status_code == 200  # the form again, with its error
    assert DunningStep.objects.get(policy=policy, position=1).due_date_shift_days == 14


def test_the_final_notice_must_come_last(admin_client: Client, policy) -> None:
    data = policy_form(policy, **{"3": {"position": 0}})
    page = text(admin_client.post(POLICY_URL.format(policy.id), data))
    assert "Den sista påminnelsen kommer sist" in page


def test_two_steps_with_a_fee_are_refused(admin_client: Client, policy) -> None:
    data = policy_form(policy, **{"1": {"charge_fee": "on", "fee": "60.00"}})
    page = text(admin_client.post(POLICY_URL.format(policy.id), data))
    assert "Bara ett steg får ha påminnelseavgift" in page


def test_only_one_policy_is_active(admin_client: Client) -> None:
    data = {
        "name": "Sträng",
        "is_active": "on",
        "friendly_notice_days_before": 3,
        "collection_after_days": 1,
        "steps-TOTAL_FORMS": 0,
        "steps-INITIAL_FORMS": 0,
        "steps-MIN_NUM_FORMS": 0,
        "steps-MAX_NUM_FORMS": 1000,
    }
    answer = admin_client.post("/admin/dunning/dunningpolicy/add/", data)
    assert answer.status_code == 200
    assert DunningPolicy.objects.filter(is_active=True).count() == 1


def test_staff_without_the_permission_cannot_change_the_policy(client: Client, policy) -> None:
    clerk = User.objects.create_user("clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_dunningpolicy"))
    client.force_login(clerk)
    answer = client.post(POLICY_URL.format(policy.id), policy_form(policy, **{"2": {"fee": "1"}}))
    assert answer.status_code == 403
    assert DunningStep.objects.get(policy=policy, position=2).fee == Decimal("60.00")


def test_reference_rates_show_the_interest_they_make(admin_client: Client) -> None:
    ReferenceRate.objects.create(valid_from=date(2027, 1, 1), rate=Decimal("2.25"))
    page = text(admin_client.get("/admin/dunning/referencerate/"))
    assert "10,25 %" in page


def test_a_reference_rate_twice_from_the_same_day_is_refused(admin_client: Client) -> None:
    data = {"valid_from": "2025-07-01", "rate": "1.75", "source": "Riksbanken"}
    answer = admin_client.post("/admin/dunning/referencerate/add/", data)
    assert answer.status_code == 200
    assert ReferenceRate.objects.count() == 1


# --- the handover ------------------------------------------------------------------------------


@pytest.fixture
def ready(invoice, run_on) -> DunningCase:
    run_to(run_on, READY)
    return DunningCase.objects.get(invoice=invoice)


@pytest.fixture
def finance(client: Client, ready) -> Client:
    """A superuser signed in on the day the case became ready (a session from before the
    clock moved would have expired)."""
    client.force_login(User.objects.create_superuser("finance"))
    return client


def handover(client: Client, case: DunningCase, **extra: str):
    data = {"action": "hand_to_collection", "_selected_action": [case.id], **extra}
    return client.post("/admin/dunning/dunningcase/", data)


def test_the_handover_asks_for_confirmation_showing_what_is_owed(finance: Client, ready) -> None:
    page = text(handover(finance, ready))
    assert "Lämna 1 fordran till inkasso" in page
    assert "299,00 kr" in page
    assert "60,00 kr" in page
    ready.refresh_from_db()
    assert ready.stage == CaseStage.COLLECTION_READY  # nothing handed over yet
    # when confirmed
    answer = handover(finance, ready, confirmed="yes")
    assert answer.status_code == 302
    ready.invoice.refresh_from_db()
    assert ready.invoice.status == InvoiceStatus.COLLECTION


def test_the_handover_page_says_why_a_claim_may_not_go_yet(client: Client, invoice, run_on) -> None:
    run_to(run_on, date(2027, 1, 5))
    case = DunningCase.objects.get(invoice=invoice)
    client.force_login(User.objects.create_superuser("finance"))
    page = text(handover(client, case))
    assert "Inte tillåtet:" in page
    assert "2027-01-20" in page
    assert "Lämna 1 fordran" not in page


def test_staff_who_may_only_view_cases_cannot_hand_over(client: Client, ready) -> None:
    clerk = User.objects.create_user("clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_dunningcase"))
    client.force_login(clerk)
    assert "hand_to_collection" not in text(client.get("/admin/dunning/dunningcase/"))
    handover(client, ready, confirmed="yes")
    ready.invoice.refresh_from_db()
    assert ready.invoice.status == InvoiceStatus.OVERDUE


def test_a_case_shows_what_holds_it(finance: Client, ready) -> None:
    from tests.dunning.test_steps import dispute

    dispute(ready.invoice, "25.00")
    page = text(finance.get(f"/admin/dunning/dunningcase/{ready.id}/change/"))
    assert "25,00 kr bestritt" in page


# --- what each step sent and earned ----------------------------------------------------------


def test_the_report_counts_and_sums_each_step_per_month(finance: Client) -> None:
    page = text(finance.get("/admin/dunning/dunningaction/report/"))
    assert "Vad varje steg i policyn skickade och tjänade" in page
    # December: the friendly notice was not sent (the run began after it), two reminders;
    # January: the final notice with its interest
    assert "2026-12" in page
    assert "2027-01" in page
    assert "Påminnelse 2" in page
    assert "Sista påminnelse" in page
    assert "60,00 kr" in page  # the fee the second reminder earned
    assert "61,64 kr" in page  # … with its interest


def test_the_report_needs_the_permission_to_view_actions(client: Client) -> None:
    client.force_login(User.objects.create_user("clerk", is_staff=True))
    assert client.get("/admin/dunning/dunningaction/report/").status_code == 403
