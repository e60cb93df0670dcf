"""Paying an invoice by card: an attempt with its idempotency key saved before Stripe is
called, a PaymentIntent for what is open, and the page's card form and endpoint. Against
localstripe (tests/localstripe.py) through the real Stripe SDK."""

from decimal import Decimal

import pytest
import stripe
from django.test import Client

from core.errors import DomainError
from invoices.card_gateway import stripe_client, to_ore
from invoices.models import CardPayment, CardPaymentStatus, InvoiceStatus, Payment
from invoices.services.card_payments import card_payment_start
from invoices.services.links import invoice_link_create
from invoices.services.payments import bgmax_import, invoice_balance
from tests import localstripe
from tests.billing.bgmax_files import Deposit, File, Paid, bgmax_file

pytestmark = pytest.mark.django_db


def intent_of(attempt: CardPayment) -> stripe.PaymentIntent:
    return stripe_client().v1.payment_intents.retrieve(str(attempt.payment_intent_id))


def test_a_card_pays_what_is_open_through_a_payment_intent(stripe_on, invoice) -> None:
    started = card_payment_start(invoice_id=invoice.id, card_token=localstripe.card_token())
    attempt = started.attempt
    # a PaymentIntent for the open amount, in öre, confirmed with the card
    intent = intent_of(attempt)
    assert (intent.amount, intent.currency, intent.status) == (
        to_ore(invoice.total),
        "sek",
        "succeeded",
    )
    assert intent.metadata["touchpoint_card_payment"] == attempt.idempotency_key
    assert (attempt.amount, attempt.status) == (invoice.total, CardPaymentStatus.SUCCEEDED)
    assert len(attempt.idempotency_key) == 32
    # nothing is booked until Stripe's event says so (tests/invoices/test_stripe_webhooks.py)
    assert not Payment.objects.exists()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.ISSUED


def test_a_part_paid_invoice_is_paid_by_card_for_the_rest(stripe_on, invoice) -> None:
    deposit = File([Deposit([Paid(10000, invoice.ocr)])])  # 100 kr by bankgiro
    bgmax_import(data=bgmax_file(deposit), name="a.txt")
    invoice.refresh_from_db()
    attempt = card_payment_start(invoice_id=invoice.id, card_token=localstripe.card_token()).attempt
    assert attempt.amount == invoice.total - Decimal("100.00") == invoice_balance(invoice).open
    assert intent_of(attempt).amount == to_ore(attempt.amount)


def test_the_key_is_saved_before_stripe_is_called_and_a_retry_sends_it_again(
    stripe_on, invoice, monkeypatch
) -> None:
    from stripe._payment_intent_service import PaymentIntentService

    create = PaymentIntentService.create
    sent: list[str] = []

    def times_out_first(self, params=None, options=None):
        sent.append(options["idempotency_key"])
        # the attempt and its key were committed before the call
        assert CardPayment.objects.filter(idempotency_key=options["idempotency_key"]).exists()
        if len(sent) == 1:
            raise stripe.APIConnectionError("Request timed out")
        return create(self, params, options)

    monkeypatch.setattr(PaymentIntentService, "create", times_out_first)
    token = localstripe.card_token()
    with pytest.raises(DomainError) as unavailable:
        card_payment_start(invoice_id=invoice.id, card_token=token)
    assert unavailable.value.code == "card_payment_unavailable"
    waiting = CardPayment.objects.get()
    assert (waiting.status, waiting.payment_intent_id) == (CardPaymentStatus.CREATED, None)
    # when the customer tries again (a new token from the page), the same attempt is sent
    # with the same key and the card it was started with
    again = card_payment_start(invoice_id=invoice.id, card_token=localstripe.card_token()).attempt
    assert again.id == waiting.id
    assert sent == [waiting.idempotency_key, waiting.idempotency_key]
    assert again.card_token == token
    assert again.status == CardPaymentStatus.SUCCEEDED
    assert CardPayment.objects.count() == 1


def test_a_second_click_while_an_attempt_is_live_gets_that_attempt(stripe_on, invoice) -> None:
    first = card_payment_start(invoice_id=invoice.id, card_token=localstripe.card_token())
    second = card_payment_start(invoice_id=invoice.id, card_token=localstripe.card_token())
    assert second.attempt.id == first.attempt.id
    assert second.attempt.payment_intent_id == first.attempt.payment_intent_id
    intents = stripe_client().v1.payment_intents.list(params={"limit": 100}).data
    assert len(intents) == 1


def test_a_declined_card_fails_the_attempt_and_the_next_try_starts_another(
    stripe_on, invoice
) -> None:
    declined = card_payment_start(
        invoice_id=invoice.id, card_token=localstripe.card_token(localstripe.DECLINED)
    ).attempt
    assert (declined.status, declined.failure_code) == (CardPaymentStatus.FAILED, "card_declined")
    retry = card_payment_start(invoice_id=invoice.id, card_token=localstripe.card_token()).attempt
    assert retry.id != declined.id
    assert retry.status == CardPaymentStatus.SUCCEEDED


def test_a_card_whose_bank_asks_the_holder_gets_the_client_secret(stripe_on, invoice) -> None:
    started = card_payment_start(
        invoice_id=invoice.id, card_token=localstripe.card_token(localstripe.THREE_D_SECURE)
    )
    assert started.attempt.status == CardPaymentStatus.REQUIRES_ACTION
    assert started.client_secret.startswith(f"{started.attempt.payment_intent_id}_secret_")
    # a second click asks the bank's question again, for the same PaymentIntent
    again = card_payment_start(invoice_id=invoice.id, card_token="")
    assert again.attempt.id == started.attempt.id
    assert again.client_secret == started.client_secret


def test_an_invoice_with_nothing_open_cannot_be_paid_by_card(stripe_on, invoice) -> None:
    bgmax_import(data=bgmax_file(File([Deposit([Paid(29900, invoice.ocr)])])), name="a.txt")
    with pytest.raises(DomainError) as refused:
        card_payment_start(invoice_id=invoice.id, card_token=localstripe.card_token())
    assert refused.value.code == "invoice_not_payable"
    assert not CardPayment.objects.exists()


def test_without_stripe_keys_there_is_no_card_payment(settings, invoice) -> None:
    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(DomainError) as refused:
        card_payment_start(invoice_id=invoice.id, card_token="tok_x")
    assert refused.value.code == "card_payments_off"


# --- the page --------------------------------------------------------------------------------


def test_the_page_offers_card_payment_only_when_stripe_is_set_up(
    client: Client, settings, stripe_on, invoice
) -> None:
    token = invoice_link_create(invoice=invoice)
    page = client.get(f"/i/{token}/?lang=en").content.decode()
    assert 'id="card-pay"' in page
    assert "Pay 299.00\xa0kr by card" in page
    assert f'"js": "{stripe_on}/js.stripe.com/v3/"' in page
    assert "data-payments-live" in page
    # the card form posts with the CSRF cookie the page sets
    assert "csrftoken" in client.cookies
    settings.STRIPE_PUBLISHABLE_KEY = ""
    without = client.get(f"/i/{token}/?lang=en").content.decode()
    assert 'id="card-pay"' not in without
    assert "data-payments-live" in without  # the summary still follows payments


def test_the_card_endpoint_answers_the_attempts_status(stripe_on, invoice) -> None:
    client = Client(enforce_csrf_checks=True)
    token = invoice_link_create(invoice=invoice)
    client.get(f"/i/{token}/")
    csrf = client.cookies["csrftoken"].value
    answer = client.post(
        f"/i/{token}/pay/card/",
        {"token": localstripe.card_token()},
        HTTP_X_CSRFTOKEN=csrf,
        HTTP_ACCEPT="application/json",
    )
    assert answer.status_code == 200
    assert answer.json() == {"status": "succeeded"}
    assert answer["Cache-Control"] == "no-store"


def test_the_card_endpoint_says_a_declined_card_in_the_invoices_language(
    client: Client, stripe_on, invoice
) -> None:
    token = invoice_link_create(invoice=invoice)
    answer = client.post(
        f"/i/{token}/pay/card/", {"token": localstripe.card_token(localstripe.DECLINED)}
    )
    assert answer.json() == {
        "status": "failed",
        "code": "card_declined",
        "message": "Kortbetalningen gick inte igenom. Försök igen eller använd ett annat kort.",
    }


def test_the_card_endpoint_refuses_without_csrf_token_and_for_unknown_links(
    stripe_on, invoice
) -> None:
    client = Client(enforce_csrf_checks=True)
    token = invoice_link_create(invoice=invoice)
    assert client.post(f"/i/{token}/pay/card/", {"token": "tok_x"}).status_code == 403
    assert Client().post(f"/i/{'x' * 43}/pay/card/", {"token": "tok_x"}).status_code == 404
    assert Client().get(f"/i/{token}/pay/card/").status_code == 405
    assert not CardPayment.objects.exists()


def test_the_card_endpoint_says_when_nothing_is_open(client: Client, stripe_on, invoice) -> None:
    bgmax_import(data=bgmax_file(File([Deposit([Paid(29900, invoice.ocr)])])), name="a.txt")
    token = invoice_link_create(invoice=invoice)
    answer = client.post(f"/i/{token}/pay/card/?lang=en", {"token": "tok_x"})
    assert answer.status_code == 409
    assert answer.json() == {
        "code": "invoice_not_payable",
        "message": "There is nothing to pay by card on this invoice.",
    }


def test_the_summary_alone_is_what_the_page_shows(
    client: Client, invoice, django_assert_num_queries
) -> None:
    token = invoice_link_create(invoice=invoice)
    bgmax_import(data=bgmax_file(File([Deposit([Paid(10000, invoice.ocr)])])), name="a.txt")
    # the link (with its invoice), the balance, and what dunning asks by now (the claim, the
    # policy: a moved due date, an instalment plan's part)
    with django_assert_num_queries(4):
        summary = client.get(f"/i/{token}/summary/?lang=en")
    assert summary.status_code == 200
    text = summary.content.decode().replace("\xa0", " ")
    assert text.lstrip().startswith('<section class="card summary" id="summary"')
    assert "We have received 100.00 kr; 199.00 kr is left to pay." in text
    assert summary["X-Robots-Tag"] == "noindex, nofollow"
    assert client.get(f"/i/{'x' * 43}/summary/").status_code == 404


def test_a_payment_method_from_the_payment_element_pays_without_a_customer(
    stripe_on, invoice
) -> None:
    method = localstripe.payment_method()
    attempt = card_payment_start(invoice_id=invoice.id, card_token=method).attempt
    intent = intent_of(attempt)
    assert (intent.status, intent.payment_method, intent.amount) == (
        "succeeded",
        method,
        to_ore(invoice.total),
    )
    assert attempt.stripe_customer_id in {None, ""}
    assert attempt.status == CardPaymentStatus.SUCCEEDED


def test_a_declined_card_from_the_payment_element_fails_the_attempt(stripe_on, invoice) -> None:
    method = localstripe.payment_method(localstripe.DECLINED)
    attempt = card_payment_start(invoice_id=invoice.id, card_token=method).attempt
    assert attempt.status == CardPaymentStatus.FAILED
    assert attempt.failure_code
