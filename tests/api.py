"""An API client as a source system calls the API: by a key of its own with the scopes given."""

import itertools

from rest_framework.test import APIClient

from core.api_keys import api_key_create

_NAMES = itertools.count()


def keyed(*scopes: str) -> APIClient:
    made = api_key_create(name=f"System {next(_NAMES)}", scopes=list(scopes))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {made.secret}")
    return api
