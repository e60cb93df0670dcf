"""The customer's page and PDF once dunning has acted: each fee and interest line with its
legal basis, amount and how to avoid the next one; the amount to pay includes them; the date
asked by is the one the last reminder gave."""

from datetime import date

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.test import Client

from dunning.models import DunningCase
from invoices.models import Invoice
from invoices.services.links import invoice_link_create
from invoices.services.pdf import invoice_pdf_html
from tests.dunning.test_steps import DAY_AFTER, FIRST_REMINDER, remind_twice
from tests.invoices.test_page import PAGE_QUERIES_UNCACHED

pytestmark = pytest.mark.django_db


def page(client: Client, invoice: Invoice, language: str = "sv") -> str:
    token = invoice_link_create(invoice=invoice)
    answer = client.get(f"/i/{token}/?lang={language}")
    assert answer.status_code == 200
    return answer.content.decode().replace("\xa0", " ")


def test_the_page_explains_each_fee_and_interest_line(client: Client, invoice, run_on) -> None:
    remind_twice(run_on)
    html = page(client, invoice)
    assert "Tillagt efter förfallodagen" in html
    # the fee: what, why (terms and law), and how to avoid more
    assert "Påminnelseavgift" in html
    assert "Dina villkor tillåter en påminnelseavgift (godkänd den 1 januari 2025)" in html
    assert "lag 1981:739 om ersättning för inkassokostnader" in html
    assert "Betala 360,64 kr senast 4 januari 2027 så tillkommer inget mer." in html
    # the interest: period, rate and its parts, the law, how to stop it
    assert "Dröjsmålsränta 2 december 2026 – 21 december 2026" in html
    assert "10 % per år" in html
    assert "referensränta på 2 %" in html
    assert "räntelagen § 6" in html
    assert "1,64 kr" in html
    # the amount to pay is the invoice with them, by the date the reminder gave
    assert "Att betala" in html
    assert "360,64 kr" in html
    assert "Fakturan förföll först 1 december 2026" in html
    assert "4 januari 2027" in html


def test_the_page_in_english_says_the_same(client: Client, invoice, run_on) -> None:
    remind_twice(run_on)
    html = page(client, invoice, "en")
    assert "Added since the due date" in html
    assert "Pay 360.64 kr by 4 January 2027 and nothing more is added." in html
    assert "Late-payment interest 2 December 2026 – 21 December 2026" in html


def test_a_free_reminder_moves_the_date_the_page_asks_by(client: Client, invoice, run_on) -> None:
    run_on(DAY_AFTER)
    first = page(client, invoice)
    assert "Förfallodatum <strong>1 december 2026</strong>" in first
    run_on(FIRST_REMINDER)
    html = page(client, invoice)
    assert "Förfallodatum <strong>20 december 2026</strong>" in html
    assert "Tillagt efter förfallodagen" not in html  # nothing was added


def test_a_step_discards_the_stored_pdf_so_it_is_rendered_with_the_charges(invoice, run_on) -> None:
    invoice.pdf.save("invoice.pdf", ContentFile(b"%PDF-1.7 as issued"), save=True)
    remind_twice(run_on)
    invoice.refresh_from_db()
    assert invoice.pdf.name == ""


def test_the_pdf_lists_the_charges_and_asks_for_the_amount_now(invoice, run_on) -> None:
    remind_twice(run_on)
    case = DunningCase.objects.get(invoice=invoice)
    html = invoice_pdf_html(invoice, due_date=case.due_date).replace("\xa0", " ")
    assert "Tillagt efter förfallodagen" in html
    assert "Påminnelseavgift" in html
    assert "räntelagen § 6" in html
    assert "Att betala nu" in html
    assert "360,64 kr" in html
    assert date(2027, 1, 4).isoformat() in html  # on the payment slip


def test_an_invoice_without_charges_prints_as_issued(invoice) -> None:
    html = invoice_pdf_html(invoice)
    assert "Tillagt efter förfallodagen" not in html
    assert "Att betala nu" not in html


def test_the_page_of_a_claim_with_charges_keeps_a_constant_query_count(
    client: Client, invoice, run_on, django_assert_max_num_queries
) -> None:
    remind_twice(run_on)
    token = invoice_link_create(invoice=invoice)
    cache.clear()
    # the uncached page with charges: one query more than without (the charges' rows)
    with django_assert_max_num_queries(PAGE_QUERIES_UNCACHED + 1):
        assert client.get(f"/i/{token}/").status_code == 200
