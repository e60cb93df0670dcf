"""API keys: made (the secret shown once), looked up by their hash, revoked.

A key reads ``tp_<prefix>_<secret>``: the prefix (random, not secret) names the key in lists
and logs; the whole key's SHA-256 is all that is stored. 256 bits of randomness make a
salted or slow hash unnecessary: nobody guesses such a key from its digest.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from core.errors import DomainError
from core.models import ApiKey, ApiScope

KEY_START = "tp_"
# ``last_used_at`` is written at most once per key in this many seconds, not per request.
LAST_USED_EVERY = 60


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class MadeKey:
    key: ApiKey
    secret: str  # the whole key, to show once; never stored


@transaction.atomic
def api_key_create(
    *, name: str, scopes: list[str], rate_per_minute: int = 600, by: User | None = None
) -> MadeKey:
    """A key for one source system, with the account its requests run as."""
    name = name.strip()
    if not name:
        raise DomainError(code="api_key_name_missing", message="Name the system the key is for.")
    unknown = sorted(set(scopes) - set(ApiScope.values))
    if unknown:
        raise DomainError(code="api_scope_unknown", message=f"Unknown scope: {', '.join(unknown)}")
    if not scopes:
        raise DomainError(code="api_scope_missing", message="Give the key at least one scope.")
    if ApiKey.objects.filter(name=name).exists():
        raise DomainError(code="api_key_name_taken", message=f"A key named {name} exists.")
    prefix = secrets.token_hex(4)
    secret = f"{KEY_START}{prefix}_{secrets.token_urlsafe(32)}"
    account = User(username=f"api-{slugify(name)[:100]}-{prefix}", is_staff=False)
    account.set_unusable_password()
    account.save()
    made = ApiKey.objects.create(
        name=name,
        prefix=prefix,
        key_hash=key_hash(secret),
        scopes=sorted(set(scopes)),
        rate_per_minute=rate_per_minute,
        user=account,
        created_at=timezone.now(),
        created_by=by,
    )
    return MadeKey(key=made, secret=secret)


def api_key_revoke(*, key_id: int) -> ApiKey:
    """From now on the key opens nothing; its account is kept for the record."""
    key = ApiKey.objects.get(id=key_id)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def api_key_lookup(secret: str) -> ApiKey | None:
    """The live key ``secret`` is, or None (unknown, malformed or revoked alike)."""
    if not secret.startswith(KEY_START) or len(secret) > 100:
        return None
    digest = key_hash(secret)
    key = ApiKey.objects.select_related("user").filter(key_hash=digest).first()
    if key is None or not hmac.compare_digest(key.key_hash, digest) or not key.is_live:
        return None
    if cache.add(f"api-key-used:{key.id}", 1, timeout=LAST_USED_EVERY):
        ApiKey.objects.filter(id=key.id).update(last_used_at=timezone.now())
    return key
