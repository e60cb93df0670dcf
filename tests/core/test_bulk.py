"""Rows written in bulk: ids reserved before the rows exist, the rows that refer to them
written first (foreign keys are checked at commit), on SQLite and PostgreSQL alike."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from billing.models import Plan, PlanPrice
from core.bulk import ids_reserve, insert_rows

pytestmark = pytest.mark.django_db(transaction=True)


def plan(code: str) -> dict[str, object]:
    return {"code": code, "name": code, "monthly_fee": Decimal("199.00")}


def price(plan_id: int) -> dict[str, object]:
    return {"plan_id": plan_id, "monthly_fee": Decimal("199.00"), "valid_from": date(2026, 1, 1)}


def test_rows_that_refer_to_reserved_ids_go_in_first() -> None:
    with transaction.atomic():
        ids = ids_reserve(Plan, 3)
        insert_rows(PlanPrice, [price(plan_id) for plan_id in ids])
        assert insert_rows(Plan, [plan(f"p{n}") for n in range(3)], ids=ids) == ids
    assert sorted(Plan.objects.values_list("id", flat=True)) == ids
    assert {p.plan_id for p in PlanPrice.objects.all()} == set(ids)


def test_a_reference_to_a_reserved_id_never_written_fails_at_commit() -> None:
    def reserve_and_refer() -> None:
        with transaction.atomic():
            (plan_id,) = ids_reserve(Plan, 1)
            insert_rows(PlanPrice, [price(plan_id)])

    with pytest.raises(IntegrityError):
        reserve_and_refer()
    assert PlanPrice.objects.count() == 0


def test_reserved_ids_are_never_handed_out_again() -> None:
    # ids reserved and then not used (a rolled-back chunk, or one left unused) are skipped
    with transaction.atomic():
        unused = ids_reserve(Plan, 2)
    with transaction.atomic():
        taken = ids_reserve(Plan, 2)
        again = ids_reserve(Plan, 1)  # a second reservation before any row is written
    created = Plan.objects.create(**plan("next"))
    assert len(set(unused + taken + again + [created.id])) == 6
    assert min(taken) > max(unused)
    assert again[0] > max(taken)
    assert created.id > again[0]


def test_the_number_of_ids_must_match_the_rows() -> None:
    with transaction.atomic(), pytest.raises(ValueError, match="2 ids for 1 rows"):
        insert_rows(Plan, [plan("p")], ids=[1, 2])
