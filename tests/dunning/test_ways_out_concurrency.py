"""Grants that arrive at the same moment, on PostgreSQL: the invoice's row lock lets one grant
through; the others return it (the same request) or are refused (another one), and one
receipt goes."""

import threading
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.db import connection

from core.errors import DomainError
from dunning.models import GrantedBy, Instalment, InstalmentPlan, Postponement
from dunning.services.ways_out import dispute_open, instalment_plan_grant, postponement_grant
from invoices.models import InvoiceLink
from tests.dunning.conftest import DUE, make_invoice
from tests.dunning.ways_out_fixtures import seeded_policy  # noqa: F401

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("seeded_policy"),
]

TODAY = date(2026, 11, 10)


def at_once(calls: list[Callable[[], Any]]) -> tuple[list[Any], list[BaseException]]:
    """Run ``calls`` in threads released together; their results and errors."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results.append(call())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_one_postponement_of_three_double_clicks_and_another_tab(postgres) -> None:
    # given an invoice due 1 December
    invoice = make_invoice()

    def postpone(key: str, day: date) -> Callable[[], Any]:
        return lambda: postponement_grant(
            invoice_id=invoice.id,
            new_due_date=day,
            granted_by=GrantedBy.CUSTOMER,
            idempotency_key=key,
            today=TODAY,
        )

    # when the same form arrives three times at once, and another tab asks for another day
    results, errors = at_once(
        [postpone("page:a", date(2026, 12, 20))] * 3 + [postpone("page:b", date(2026, 12, 24))]
    )
    # then one postponement stands, one receipt went, and any refusal is the stable one
    postponement = Postponement.objects.get()
    assert sum(result.created for result in results) == 1
    assert {result.row.id for result in results} == {postponement.id}
    assert all(isinstance(e, DomainError) and e.code == "already_postponed" for e in errors)
    assert len(results) + len(errors) == 4
    assert InvoiceLink.objects.filter(invoice=invoice, reason="postponement").count() == 1
    assert postponement.new_due_date > DUE


def test_one_plan_of_simultaneous_grants(postgres) -> None:
    invoice = make_invoice()

    def split(key: str, parts: int) -> Callable[[], Any]:
        return lambda: instalment_plan_grant(
            invoice_id=invoice.id,
            parts=parts,
            granted_by=GrantedBy.CUSTOMER,
            idempotency_key=key,
            today=TODAY,
        )

    results, errors = at_once([split("page:a", 3), split("page:a", 3), split("page:b", 4)])
    plan = InstalmentPlan.objects.get()
    assert sum(result.created for result in results) == 1
    assert {result.row.id for result in results} == {plan.id}
    assert all(isinstance(e, DomainError) and e.code == "instalment_plan_active" for e in errors)
    assert Instalment.objects.filter(plan=plan).count() == plan.parts
    assert InvoiceLink.objects.filter(invoice=invoice, reason="instalment_plan").count() == 1


def test_one_dispute_of_a_line_disputed_twice_at_once(postgres) -> None:
    invoice = make_invoice()
    line = invoice.lines.get(kind="fee")

    def dispute(key: str) -> Callable[[], Any]:
        return lambda: dispute_open(
            invoice_id=invoice.id,
            line_id=line.id,
            reason="Not mine",
            opened_by=GrantedBy.CUSTOMER,
            idempotency_key=key,
        )

    results, errors = at_once([dispute("page:a"), dispute("page:b"), dispute("page:a")])
    assert errors == []
    assert sum(result.created for result in results) == 1
    assert len({result.row.id for result in results}) == 1
