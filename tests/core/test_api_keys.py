"""API keys of the source systems: shown once, stored as a hash, scoped, throttled per key,
revocable; made and revoked by staff in the admin."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from core.api_keys import api_key_create, api_key_lookup, api_key_revoke, key_hash
from core.errors import DomainError
from core.models import ApiKey

pytestmark = pytest.mark.django_db
URL = "/api/v1/payments/bgmax-imports/"  # any endpoint guarded by a scope


def bearer(secret: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api


def test_a_key_is_stored_only_as_its_hash_and_runs_as_its_own_account() -> None:
    made = api_key_create(name="CRM", scopes=["read", "billing:write"])
    assert made.secret.startswith(f"tp_{made.key.prefix}_")
    assert len(made.secret) > 40
    stored = ApiKey.objects.get()
    assert stored.key_hash == key_hash(made.secret)
    assert made.secret not in str(list(ApiKey.objects.values_list()))
    assert (stored.user.is_staff, stored.user.has_usable_password()) == (False, False)
    assert api_key_lookup(made.secret) == stored


@pytest.mark.parametrize(
    ("name", "scopes", "code"),
    [
        ("", ["read"], "api_key_name_missing"),
        ("CRM", [], "api_scope_missing"),
        ("CRM", ["read", "admin"], "api_scope_unknown"),
    ],
)
def test_a_key_needs_a_name_and_known_scopes(name: str, scopes: list[str], code: str) -> None:
    with pytest.raises(DomainError) as refused:
        api_key_create(name=name, scopes=scopes)
    assert refused.value.code == code
    assert not ApiKey.objects.exists()


def test_one_key_per_system_name() -> None:
    api_key_create(name="CRM", scopes=["read"])
    with pytest.raises(DomainError, match="A key named CRM exists"):
        api_key_create(name="CRM", scopes=["read"])


def test_unknown_malformed_and_revoked_keys_are_refused_with_401() -> None:
    made = api_key_create(name="Bank", scopes=["payments:write"])
    assert bearer("tp_00000000_not-a-key").post(URL, {}).status_code == 401
    garbled = APIClient()
    garbled.credentials(HTTP_AUTHORIZATION="Bearer two words")
    assert garbled.post(URL, {}).status_code == 401
    # a live key gets past authentication (its request then fails validation: no file)
    assert bearer(made.secret).post(URL, {}).status_code == 400
    api_key_revoke(key_id=made.key.id)
    refused = bearer(made.secret).post(URL, {})
    assert refused.status_code == 401
    assert refused.json()["message"] == "This API key is unknown or revoked."


def test_each_key_is_throttled_at_its_own_rate() -> None:
    slow = api_key_create(name="Bank", scopes=["payments:write"], rate_per_minute=2)
    other = api_key_create(name="Mediation", scopes=["payments:write"], rate_per_minute=2)
    answers = [bearer(slow.secret).post(URL, {}).status_code for _ in range(3)]
    assert answers == [400, 400, 429]
    # another key has its own count
    assert bearer(other.secret).post(URL, {}).status_code == 400


def test_staff_make_a_key_that_is_shown_once_and_revoke_it(admin_client: Client) -> None:
    made = admin_client.post(
        "/admin/core/apikey/add/",
        {"name": "Mediation", "scopes": ["usage:write", "read"], "rate_per_minute": "600"},
    )
    page = made.content.decode()
    assert "no-store" in made["Cache-Control"]
    key = ApiKey.objects.get(name="Mediation")
    secret = page.split('id="api-key"')[1].split(">", 1)[1].split("<", 1)[0]
    assert key_hash(secret) == key.key_hash
    assert "Kopiera den nu" in page
    # the list shows the prefix, never the key
    listed = admin_client.get("/admin/core/apikey/").content.decode()
    assert key.prefix in listed
    assert secret not in listed
    # revoking asks first, then the key opens nothing
    asked = admin_client.get(f"/admin/core/apikey/{key.id}/revoke/").content.decode()
    assert "Bekräfta" in asked
    key.refresh_from_db()
    assert key.revoked_at is None
    admin_client.post(f"/admin/core/apikey/{key.id}/revoke/")
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api_key_lookup(secret) is None


def test_the_admin_refuses_a_key_without_scopes_saying_so(admin_client: Client) -> None:
    page = admin_client.post("/admin/core/apikey/add/", {"name": "CRM", "rate_per_minute": "600"})
    assert page.status_code == 200
    assert "errorlist" in page.content.decode()
    assert not ApiKey.objects.exists()


def test_staff_without_the_permission_cannot_make_keys(client: Client) -> None:
    clerk = User.objects.create_user("clerk", password="x", is_staff=True)
    client.force_login(clerk)
    assert client.get("/admin/core/apikey/add/").status_code == 403
