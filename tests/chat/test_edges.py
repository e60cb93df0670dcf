"""The chat's edges against abuse: CSRF on the customer's posts, the console's login
throttle, the client address a websocket is counted under, and reading numbers from input."""

import re
from uuid import uuid4

import pytest
from django.core.cache import cache
from django.test import Client

from chat.models import Message
from chat.parsing import parse_int
from chat.throttle import _redis, counted
from invoices.guard import scope_client_address
from invoices.services.links import invoice_link_create

pytestmark = pytest.mark.django_db


def test_a_chat_post_needs_the_pages_csrf_token(invoice) -> None:
    token = invoice_link_create(invoice=invoice)
    client = Client(enforce_csrf_checks=True)
    page = client.get(f"/i/{token}/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert csrf
    # without the token (another site's form) the post is refused and nothing is stored
    refused = client.post(f"/i/{token}/chat/messages/", {"body": "Hej"})
    assert refused.status_code == 403
    assert not Message.objects.exists()
    # with the page's token it is stored
    accepted = client.post(
        f"/i/{token}/chat/messages/",
        {"body": "Hej", "csrfmiddlewaretoken": csrf.group(1)},
        HTTP_ACCEPT="application/json",
    )
    assert accepted.status_code == 201
    assert Message.objects.get().body == "Hej"


def test_login_attempts_are_limited_per_address(agent, settings) -> None:
    settings.SUPPORT_LOGIN_ATTEMPTS = 3
    client = Client()
    wrong = {"username": "agnes", "password": "not-the-password"}
    for _ in range(3):
        assert client.post("/support/login/", wrong).status_code == 200  # the form, again
    # then that address is refused, in the browser's language, even with the right password
    refused = client.post("/support/login/", {"username": "agnes", "password": "pw-for-tests-1"})
    assert refused.status_code == 429
    assert refused.content.decode() == "För många försök. Vänta några minuter och försök igen."
    assert refused["Retry-After"] == str(settings.SUPPORT_LOGIN_WINDOW_SECONDS)
    english = client.post("/support/login/", wrong, HTTP_ACCEPT_LANGUAGE="en")
    assert english.content.decode() == "Too many attempts. Wait a few minutes and try again."
    # showing the form is not an attempt, and another address may still log in
    assert client.get("/support/login/").status_code == 200
    other = Client(REMOTE_ADDR="198.51.100.7").post(
        "/support/login/", {"username": "agnes", "password": "pw-for-tests-1"}
    )
    assert other.status_code == 302


def test_a_websockets_address_follows_the_same_rule_as_a_requests(settings) -> None:
    scope = {
        "client": ("10.0.0.2", 43210),  # the proxy
        "headers": [
            (b"origin", b"http://127.0.0.1:8000"),
            (b"x-forwarded-for", b"198.51.100.4, 203.0.113.9"),
        ],
    }
    settings.TRUSTED_PROXY_COUNT = 0
    assert scope_client_address(scope) == "10.0.0.2"  # no proxy trusted: the peer
    settings.TRUSTED_PROXY_COUNT = 1
    assert scope_client_address(scope) == "203.0.113.9"  # what our proxy appended
    settings.TRUSTED_PROXY_COUNT = 3
    assert scope_client_address(scope) == "10.0.0.2"  # fewer entries than proxies
    assert scope_client_address({"headers": []}) == "unknown"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", 42),
        (42, 42),
        (" 7 ", 7),
        ("-3", -3),
        (None, None),
        ("", None),
        ("x", None),
        ("4.2", None),
        (4.0, None),
        ("9" * 30, None),  # no id of ours: not an error from the database
    ],
)
def test_numbers_from_input(value: object, expected: int | None) -> None:
    assert parse_int(value) == expected


def test_a_count_allows_its_limit_in_a_window_that_expires() -> None:
    key = f"test-count:{uuid4().hex}"
    # the limit, then no more in the same window
    assert [counted(key, 3, 60) for _ in range(4)] == [True, True, True, False]
    client = _redis()
    if client is not None:
        # on Redis: one key, counted under the cache's prefix, that expires with its window
        name = cache.make_key(key)
        assert int(client.get(name)) == 4
        assert 0 < client.ttl(name) <= 60
        client.delete(name)


def test_a_message_sent_again_by_http_is_found_even_past_the_rate_limit(invoice, settings) -> None:
    from chat.services import chat_message_post_customer

    settings.CHAT_CUSTOMER_MESSAGES_PER_MINUTE = 1
    token = invoice_link_create(invoice=invoice)
    # given a message stored from the socket, the minute's limit used up by it
    first = chat_message_post_customer(invoice_id=invoice.id, body="Hej", client_id="m-1")
    # when the page, which heard no answer, sends it again by HTTP with its id
    again = Client().post(
        f"/i/{token}/chat/messages/",
        {"body": "Hej", "client_id": "m-1"},
        HTTP_ACCEPT="application/json",
    )
    # then it gets the stored message, not a refusal, and nothing is stored twice
    assert again.status_code == 201
    assert again.json()["seq"] == first.seq == 1
    assert Message.objects.count() == 1
