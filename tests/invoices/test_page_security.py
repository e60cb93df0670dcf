"""The invoice link is a capability URL: unknown, expired and revoked links look alike, only a
hash is stored, the page is private, and guessing is rate-limited."""

from datetime import date, timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from invoices.models import Invoice, InvoiceLink
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.links import invoice_link_create, invoice_links_revoke, token_hash
from tests.factories import CustomerFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

# A well-formed token that was never issued (the same length and alphabet as real ones).
UNKNOWN = "x" * 43


@pytest.fixture
def invoice() -> Invoice:
    customer = CustomerFactory(name="Greta Garbo", customer_number="C9999999")
    SubscriptionFactory(customer=customer, identifier="+46701234567")
    run = bill_run_start(period=date(2026, 10, 1), invoice_date=date(2026, 11, 1))
    bill_run_execute(bill_run_id=run.id)
    return Invoice.objects.get(customer=customer)


def _leaks(body: str, invoice: Invoice) -> list[str]:
    secrets = [
        invoice.buyer["name"],
        invoice.buyer["customer_number"],
        invoice.ocr,
        str(invoice.number),
        "+46701234567",
    ]
    return [s for s in secrets if s and s in body]


def test_unknown_token_gets_the_friendly_404_with_nothing_leaked(client: Client, invoice):
    # given an issued invoice with a live link
    invoice_link_create(invoice=invoice)
    # when someone opens a token that was never issued
    response = client.get(f"/i/{UNKNOWN}/")
    # then a friendly 404, naming no invoice, customer or number
    assert response.status_code == 404
    body = response.content.decode()
    assert "We could not find that invoice" in body or "Vi hittade inte fakturan" in body
    assert _leaks(body, invoice) == []


def test_expired_and_revoked_links_answer_exactly_like_an_unknown_one(client: Client, invoice):
    # given one expired and one revoked link to the invoice
    expired = invoice_link_create(invoice=invoice)
    InvoiceLink.objects.filter(token_hash=token_hash(expired)).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    revoked = invoice_link_create(invoice=invoice)
    invoice_links_revoke(invoice_id=invoice.id, reason="leaked")
    # when each is opened, and a never-issued token too
    responses = [client.get(f"/i/{t}/") for t in (UNKNOWN, expired, revoked)]
    # then all three answers are the same 404, byte for byte
    assert [r.status_code for r in responses] == [404, 404, 404]
    assert responses[0].content == responses[1].content == responses[2].content
    assert _leaks(responses[1].content.decode(), invoice) == []


def test_a_link_past_its_lifetime_stops_working(client: Client, invoice, settings):
    token = invoice_link_create(invoice=invoice)
    assert client.get(f"/i/{token}/").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=settings.INVOICE_LINK_TTL_DAYS + 1)):
        assert client.get(f"/i/{token}/").status_code == 404


def test_only_a_hash_of_the_token_is_stored(invoice):
    # when a link is created
    token = invoice_link_create(invoice=invoice)
    # then no column of any link row holds the token, only its SHA-256
    link = InvoiceLink.objects.get()
    row = InvoiceLink.objects.values().get()
    assert all(token not in str(value) for value in row.values())
    assert link.token_hash == token_hash(token) != token


def test_the_page_never_contains_its_own_token(client: Client, invoice):
    # the rendered (and cached) page is shared by every link to the invoice: links are relative
    token = invoice_link_create(invoice=invoice)
    response = client.get(f"/i/{token}/")
    assert response.status_code == 200
    assert token not in response.content.decode()
    assert 'href="invoice.pdf"' in response.content.decode()


@pytest.mark.parametrize("found", [True, False])
def test_page_and_404_are_private_headers(client: Client, invoice, found: bool):
    token = invoice_link_create(invoice=invoice) if found else UNKNOWN
    response = client.get(f"/i/{token}/")
    assert response.status_code == (200 if found else 404)
    assert "noindex" in response["X-Robots-Tag"]
    assert response["Referrer-Policy"] == "strict-origin"
    assert response["Cache-Control"] == "no-store"


def test_guessing_is_rate_limited_with_429(client: Client, invoice, settings):
    # given a limit of three failed look-ups per address
    settings.INVOICE_LINK_GUESS_LIMIT = 3
    # when an address guesses three wrong tokens
    misses = [client.get(f"/i/{c * 43}/").status_code for c in "abc"]
    # then the next request is refused with 429 and Retry-After, even with a valid token
    token = invoice_link_create(invoice=invoice)
    refused = client.get(f"/i/{token}/")
    assert misses == [404, 404, 404]
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(settings.INVOICE_LINK_GUESS_WINDOW_SECONDS)
    assert _leaks(refused.content.decode(), invoice) == []


def test_another_address_is_not_limited_by_someone_elses_guesses(client, invoice, settings):
    settings.INVOICE_LINK_GUESS_LIMIT = 1
    client.get(f"/i/{UNKNOWN}/", REMOTE_ADDR="10.0.0.1")
    token = invoice_link_create(invoice=invoice)
    assert client.get(f"/i/{token}/", REMOTE_ADDR="10.0.0.2").status_code == 200


def test_the_page_does_not_accept_post(client: Client, invoice):
    token = invoice_link_create(invoice=invoice)
    assert client.post(f"/i/{token}/").status_code == 405


def test_old_links_do_not_count_as_guesses(client: Client, invoice, settings):
    # given a customer clicking a revoked link from an old e-mail many times
    settings.INVOICE_LINK_GUESS_LIMIT = 3
    old = invoice_link_create(invoice=invoice)
    invoice_links_revoke(invoice_id=invoice.id, reason="replaced")
    answers = [client.get(f"/i/{old}/").status_code for _ in range(5)]
    # then each gets the 404, and a fresh link from the same address still opens
    fresh = invoice_link_create(invoice=invoice, reason="resent")
    assert answers == [404] * 5
    assert client.get(f"/i/{fresh}/").status_code == 200


def test_behind_a_proxy_guesses_are_counted_per_client(client: Client, invoice, settings):
    # given one trusted proxy in front, which appends the client's address
    settings.TRUSTED_PROXY_COUNT = 1
    settings.INVOICE_LINK_GUESS_LIMIT = 3
    token = invoice_link_create(invoice=invoice)
    for _ in range(3):
        client.get(f"/i/{UNKNOWN}/", HTTP_X_FORWARDED_FOR="203.0.113.9")
    # then that client is refused
    assert client.get(f"/i/{token}/", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    # but another customer behind the same proxy is not, even one claiming the guesser's
    # address further left
    other = client.get(f"/i/{token}/", HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.4")
    assert other.status_code == 200
