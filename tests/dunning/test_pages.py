"""The customer's ways out on the invoice page: "Need more time?", postponing, paying in parts
and disputing a line, each read, confirmed (CSRF, safe to repeat) and receipted, behind the
same link checks as the invoice page."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from chat.models import Author, Conversation, Message
from dunning.models import Dispute, DisputeStatus, GrantedBy, InstalmentPlan, Postponement
from dunning.services.ways_out import postponement_grant
from invoices.models import Invoice, InvoiceLink, InvoiceStatus
from invoices.services.credit_notes import credit_note_issue
from invoices.services.links import invoice_link_create, token_hash
from tests.dunning.conftest import make_invoice
from tests.dunning.ways_out_fixtures import on_20_november, policy  # noqa: F401
from tests.offers.page_fixtures import hidden, text

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_20_november")]

TODAY = date(2026, 11, 20)


@pytest.fixture
def invoice() -> Invoice:
    """299 kr due 1 December 2026, in English."""
    return make_invoice(language="en")


@pytest.fixture
def token(invoice: Invoice) -> str:
    return invoice_link_create(invoice=invoice)


def page(client: Client, token: str, path: str = "") -> str:
    response = client.get(f"/i/{token}/{path}")
    assert response.status_code == 200, response.status_code
    return text(response)


# --- "Need more time?" on the invoice page -------------------------------------------------------


def test_an_unpaid_invoice_offers_to_postpone_and_to_pay_in_parts(client, token) -> None:
    shown = page(client, token)
    assert "Need more time?" in shown
    assert "Move the due date once, to 31 December 2026 at the latest. It is free." in shown
    assert "Split 299.00 kr into 2 to 6 monthly parts." in shown
    html = client.get(f"/i/{token}/").content.decode()
    assert 'href="postpone/?lang=en"' in html
    assert 'href="instalments/?lang=en"' in html


def test_the_policy_decides_what_is_offered(client, token) -> None:
    policy(postponement_enabled=False, instalment_fee=Decimal("49.00"), instalment_max_parts=4)
    shown = page(client, token)
    assert "Postpone the payment" not in shown
    assert "Split 299.00 kr into 2 to 4 monthly parts." in shown
    assert "A fee of 49.00 kr for the plan is included in the parts" in shown
    policy(instalments_enabled=False)
    assert "Need more time?" not in page(client, token)


@pytest.mark.parametrize("status", [InvoiceStatus.PAID, InvoiceStatus.COLLECTION])
def test_nothing_is_offered_once_paid_or_with_collection(client, invoice, token, status) -> None:
    invoice.status = status
    invoice.save(update_fields=["status"])
    shown = page(client, token)
    assert "Need more time?" not in shown
    assert "I don’t recognise this" not in shown


def test_a_credit_note_offers_nothing(client, invoice) -> None:
    note = credit_note_issue(invoice_id=invoice.id, reason="Goodwill")
    shown = page(client, invoice_link_create(invoice=note))
    assert "Need more time?" not in shown
    assert client.get(f"/i/{invoice_link_create(invoice=note)}/postpone/").status_code == 404


def test_each_line_can_be_disputed(client, invoice, token) -> None:
    line = invoice.lines.get(kind="fee")
    html = client.get(f"/i/{token}/").content.decode()
    assert f'href="dispute/{line.id}/?lang=en"' in html
    assert "I don’t recognise this" in text(client.get(f"/i/{token}/"))


# --- postpone -------------------------------------------------------------------------------------


def test_postponing_reads_the_terms_confirms_and_shows_the_receipt(client, token) -> None:
    # when the customer opens "Choose a new due date"
    response = client.get(f"/i/{token}/postpone/?lang=en")
    shown = text(response)
    # then they read the window and the terms before anything is decided
    assert "A day from 2 December 2026 to 31 December 2026." in shown
    assert "The postponement is free." in shown
    assert not Postponement.objects.exists()
    html = response.content.decode()
    assert 'min="2026-12-02" max="2026-12-31"' in html
    assert response["Cache-Control"] == "no-store"
    # when they confirm a day
    key = hidden(response, "idempotency_key")
    form = {"new_due_date": "2026-12-24", "idempotency_key": key}
    done = client.post(f"/i/{token}/postpone/?lang=en", form)
    # then the receipt says the new due date, and the invoice page too
    assert done.status_code == 302
    assert done["Location"] == "done/?lang=en"
    receipt = page(client, token, "postpone/done/?lang=en")
    assert "Your new due date is 24 December 2026" in receipt
    assert "Due date before 1 December 2026" in receipt
    invoice_page = page(client, token, "?lang=en")
    assert "You have postponed the payment to 24 December 2026." in invoice_page
    assert "Due date 24 December 2026" in invoice_page
    # and posting the same form again changes nothing
    again = client.post(f"/i/{token}/postpone/?lang=en", form)
    assert again["Location"] == "done/?lang=en"
    assert Postponement.objects.count() == 1
    # the page now leads to the receipt
    assert client.get(f"/i/{token}/postpone/?lang=en")["Location"] == "done/?lang=en"


@pytest.mark.parametrize(
    ("posted", "status", "said"),
    [
        ("", 400, "Choose the new due date."),
        ("24/12/2026", 400, "Write the date as year-month-day"),
        ("2027-01-02", 409, "Choose a day from 2 December 2026 to 31 December 2026."),
    ],
)
def test_a_wrong_day_is_said_on_the_page(client, token, posted, status, said) -> None:
    key = hidden(client.get(f"/i/{token}/postpone/?lang=en"), "idempotency_key")
    response = client.post(
        f"/i/{token}/postpone/?lang=en", {"new_due_date": posted, "idempotency_key": key}
    )
    assert response.status_code == status
    assert said in text(response)
    assert 'aria-invalid="true"' in response.content.decode()
    assert hidden(response, "idempotency_key") == key  # the retry is the same request
    assert not Postponement.objects.exists()


def test_the_confirmation_needs_the_csrf_token(invoice, token) -> None:
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        f"/i/{token}/postpone/", {"new_due_date": "2026-12-24", "idempotency_key": "a" * 32}
    )
    assert response.status_code == 403
    assert not Postponement.objects.exists()


def test_an_expired_link_opens_no_way_out(client, invoice, token) -> None:
    InvoiceLink.objects.filter(token_hash=token_hash(token)).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    for path in ("postpone/", "postpone/done/", "instalments/"):
        assert client.get(f"/i/{token}/{path}").status_code == 404
    response = client.post(
        f"/i/{token}/postpone/", {"new_due_date": "2026-12-24", "idempotency_key": "a" * 32}
    )
    assert response.status_code == 404
    assert not Postponement.objects.exists()


def test_no_receipt_before_a_postponement(client, token) -> None:
    assert client.get(f"/i/{token}/postpone/done/").status_code == 404


def test_an_agents_postponement_shows_on_the_page(client, invoice, token) -> None:
    from django.contrib.auth.models import User

    agent = User.objects.create_user("agnes")
    postponement_grant(
        invoice_id=invoice.id,
        new_due_date=date(2026, 12, 15),
        granted_by=GrantedBy.AGENT,
        granted_by_user=agent,
        today=TODAY,
    )
    receipt = page(client, token, "postpone/done/?lang=en")
    assert "Customer support has postponed the payment, as you agreed." in receipt


# --- pay in parts -------------------------------------------------------------------------------


def test_paying_in_parts_shows_the_parts_and_the_fee_before_confirming(client, token) -> None:
    policy(instalment_fee=Decimal("30.00"))
    # when the customer opens the page and chooses 4 parts
    response = client.get(f"/i/{token}/instalments/?lang=en&parts=4")
    shown = text(response)
    # then the parts, their days and the fee are there, and nothing is made yet
    assert "Part Pay by Amount" in shown
    assert "1 4 December 2026 83.00 kr" in shown
    assert "4 4 March 2027 82.00 kr" in shown
    assert "In all 329.00 kr" in shown
    assert "A fee of 30.00 kr for the plan is included in the parts" in shown
    assert "Confirm the plan in 4 parts" in shown
    assert 'aria-current="true">4 parts' in response.content.decode()
    assert not InstalmentPlan.objects.exists()
    # when they confirm
    done = client.post(
        f"/i/{token}/instalments/?lang=en",
        {
            "parts": "4",
            "total": hidden(response, "total"),
            "idempotency_key": hidden(response, "idempotency_key"),
        },
    )
    # then the plan is made, and its receipt lists the parts
    plan = InstalmentPlan.objects.get()
    assert done["Location"] == f"{plan.id}/?lang=en"
    receipt = page(client, token, f"instalments/{plan.id}/?lang=en")
    assert "Your plan in 4 parts" in receipt
    assert "1 4 December 2026 83.00 kr Next" in receipt
    # and the invoice page shows it, and offers no other plan
    invoice_page = page(client, token, "?lang=en")
    assert "You pay 329.00 kr in 4 parts." in invoice_page
    assert "Part 1, by 4 December 2026 83.00 kr Next" in invoice_page
    assert "Split " not in invoice_page
    # "How to pay" asks for the next part by its day; the fee is on the invoice
    assert "Next part 83.00 kr Due date 4 December 2026" in invoice_page
    assert "Added to the invoice Instalment plan fee 30.00 kr" in invoice_page
    assert "Amount to pay 329.00 kr" in invoice_page


def test_a_changed_amount_is_shown_again(client, token) -> None:
    response = client.get(f"/i/{token}/instalments/?lang=en&parts=2")
    posted = client.post(
        f"/i/{token}/instalments/?lang=en",
        {"parts": "2", "total": "250.00", "idempotency_key": hidden(response, "idempotency_key")},
    )
    assert posted.status_code == 409
    assert "What is left to pay has changed since you opened the page." in text(posted)
    assert not InstalmentPlan.objects.exists()


def test_below_the_policys_amount_the_page_says_so(client, token) -> None:
    policy(instalment_min_amount=Decimal("500.00"))
    shown = page(client, token, "instalments/?lang=en")
    assert "Payment in parts is offered from 500.00 kr." in shown
    assert "Confirm the plan" not in shown


def test_a_plan_of_another_invoice_is_not_found(client, token) -> None:
    other = make_invoice()
    from dunning.services.ways_out import instalment_plan_grant

    plan = instalment_plan_grant(
        invoice_id=other.id, parts=2, granted_by=GrantedBy.CUSTOMER, today=TODAY
    ).row
    assert client.get(f"/i/{token}/instalments/{plan.id}/").status_code == 404


# --- "I don't recognise this" --------------------------------------------------------------------


def test_disputing_a_line_pauses_it_and_opens_the_chat_with_the_line_quoted(
    client, invoice, token
) -> None:
    line = invoice.lines.get(kind="fee")
    title = line.text("en")["title"]
    # when the customer opens "I don't recognise this" on the line
    response = client.get(f"/i/{token}/dispute/{line.id}/?lang=en")
    shown = text(response)
    assert title in shown
    assert "No reminder asks for these 299.00 kr while customer support looks into it." in shown
    # and says what is wrong, and confirms
    done = client.post(
        f"/i/{token}/dispute/{line.id}/?lang=en",
        {
            "reason": "I cancelled this in August",
            "idempotency_key": hidden(response, "idempotency_key"),
        },
    )
    # then back to the invoice's chat
    assert done.status_code == 302
    assert done["Location"] == "../../?lang=en#chat"
    dispute = Dispute.objects.get()
    assert (dispute.line_id, dispute.amount, dispute.status) == (
        line.id,
        Decimal("299.00"),
        DisputeStatus.OPEN,
    )
    # where their words quote the line, and a system message says what happens
    conversation = Conversation.objects.get(invoice=invoice)
    assert dispute.conversation_id == conversation.id
    said, system = Message.objects.filter(conversation=conversation).order_by("seq")
    assert (said.author, said.body, said.line_id) == (
        Author.CUSTOMER,
        "I cancelled this in August",
        line.id,
    )
    assert said.quote["title"] == title
    assert system.author == Author.SYSTEM
    assert "No reminder asks for this amount" in system.body
    invoice_page = page(client, token, "?lang=en")
    assert f"“{title}”, 299.00 kr, since 20 November 2026" in invoice_page
    assert "About the line: " + title in invoice_page
    # and a second click goes to the same chat, with nothing new
    again = client.post(
        f"/i/{token}/dispute/{line.id}/?lang=en",
        {"reason": "I cancelled this in August", "idempotency_key": "b" * 32},
    )
    assert again["Location"] == "../../?lang=en#chat"
    assert Dispute.objects.count() == 1
    assert Message.objects.count() == 2
    # the dispute page now says it stands
    assert "You dispute this line since 20 November 2026." in page(
        client, token, f"dispute/{line.id}/?lang=en"
    )


def test_a_dispute_needs_a_reason(client, invoice, token) -> None:
    line = invoice.lines.get(kind="fee")
    response = client.get(f"/i/{token}/dispute/{line.id}/?lang=en")
    posted = client.post(
        f"/i/{token}/dispute/{line.id}/?lang=en",
        {"reason": "  ", "idempotency_key": hidden(response, "idempotency_key")},
    )
    assert posted.status_code == 400
    assert "Tell us in a few words what is wrong." in text(posted)
    assert not Dispute.objects.exists()
    assert not Conversation.objects.exists()


def test_a_line_of_another_invoice_is_not_found(client, token) -> None:
    other = make_invoice()
    line = other.lines.get(kind="fee")
    assert client.get(f"/i/{token}/dispute/{line.id}/").status_code == 404
    response = client.post(
        f"/i/{token}/dispute/{line.id}/", {"reason": "x", "idempotency_key": "a" * 32}
    )
    assert response.status_code == 404
    assert not Dispute.objects.exists()


def test_swedish_pages_speak_swedish(client) -> None:
    invoice = make_invoice(language="sv")
    token = invoice_link_create(invoice=invoice)
    assert "Behöver du mer tid?" in page(client, token)
    assert "Skjut upp betalningen" in page(client, token, "postpone/")
    assert "Betala i delar" in page(client, token, "instalments/")
    line = invoice.lines.get(kind="fee")
    assert "Jag känner inte igen det här" in page(client, token, f"dispute/{line.id}/")
