"""localstripe (PyPI), a Stripe-compatible server, for the card-payment tests.

The session starts one in a subprocess on a free port (``localstripe_server`` in
tests/conftest.py); each test that pays by card gets Touchpoint's Stripe settings pointed at it
with its data emptied (``stripe_on``). It implements PaymentIntents, customers, card tokens,
refunds, the event list and a stand-in Stripe.js (``/js.stripe.com/v3/``), and can deliver
webhooks itself (``/_config/webhooks/<id>``), signed as Stripe signs them. It keeps no
idempotency keys: tests of a retry look at the key that was sent.
"""

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from invoices.card_gateway import stripe_client

SECRET_KEY = "sk_test_touchpoint"
PUBLISHABLE_KEY = "pk_test_touchpoint"
WEBHOOK_SECRET = "whsec_test_touchpoint"

VISA = "4242424242424242"
DECLINED = "4000000000000341"  # attaches, then the charge is declined
THREE_D_SECURE = "4000002500003155"  # the bank asks the card holder to confirm


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(timeout: float = 20.0) -> tuple[subprocess.Popen[bytes], str] | None:
    """localstripe on a free port: (its process, its base URL), or None when it did not
    answer within ``timeout`` (its output is in the temporary directory, named in the log)."""
    port = _free_port()
    log = Path(tempfile.gettempdir()) / f"localstripe-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=tempfile.gettempdir(),
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/js.stripe.com/v3/", timeout=1):  # noqa: S310
                return process, base
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    process.kill()
    process.wait(timeout=5)
    return None


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _request(base: str, method: str, path: str, data: dict[str, str] | None = None) -> None:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(  # noqa: S310 (our own server on 127.0.0.1)
        f"{base}{path}", data=body, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


def flush(base: str) -> None:
    """Forget every object and event (each test starts with an empty Stripe)."""
    _request(base, "DELETE", "/_config/data")


def webhook_deliver_to(base: str, url: str) -> None:
    """Have localstripe deliver its events to ``url``, signed with ``WEBHOOK_SECRET``."""
    _request(base, "POST", "/_config/webhooks/touchpoint", {"url": url, "secret": WEBHOOK_SECRET})


def webhook_stop(base: str) -> None:
    """Send later events nowhere that answers (localstripe cannot forget a webhook)."""
    webhook_deliver_to(base, "http://127.0.0.1:9/nowhere")


def card_token(number: str = VISA) -> str:
    """A card token, as Stripe.js makes one in the customer's browser."""
    token = stripe_client().v1.tokens.create(
        params={"card": {"number": number, "exp_month": "12", "exp_year": "2030", "cvc": "123"}}
    )
    return str(token.id)


def payment_method(number: str = VISA) -> str:
    """A card's payment method, as Stripe.js makes one from the Payment Element
    (``stripe.createPaymentMethod``)."""
    made = stripe_client().v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    return str(made.id)


def events(kind: str | None = None) -> list[dict[str, Any]]:
    """Stripe's events as they are (oldest first), of one ``kind`` or all."""
    params: dict[str, Any] = {"limit": 100}
    if kind:
        params["type"] = kind
    listing = stripe_client().v1.events.list(params=params)
    return [event.to_dict() for event in listing.auto_paging_iter()]


def signature(payload: bytes, *, timestamp: int, secret: str = WEBHOOK_SECRET) -> str:
    """The Stripe-Signature header for ``payload`` made at ``timestamp``."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def deliver(client: Any, event: dict[str, Any], *, timestamp: int | None = None) -> Any:
    """POST ``event`` to the webhook as Stripe would, signed at ``timestamp`` (now)."""
    payload = json.dumps(event).encode()
    stamp = int(time.time()) if timestamp is None else timestamp
    return client.post(
        "/webhooks/stripe/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature(payload, timestamp=stamp),
    )


def event_of(kind: str, obj_id: str) -> dict[str, Any]:
    """Stripe's (last) event of ``kind`` about the object ``obj_id``."""
    found = [e for e in events(kind) if e["data"]["object"]["id"] == obj_id]
    assert found, f"no {kind} event about {obj_id}"
    return found[-1]
