import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_configure(config: pytest.Config) -> None:
    from core.management.commands.compiletranslations import compile_translations

    if compile_translations(Path(__file__).resolve().parent.parent):
        # Django may have loaded the catalogues already (pytest-django sets it up first):
        # forget them so the freshly compiled ones are read.
        from django.utils.translation import trans_real

        trans_real._translations = {}
        trans_real._default = None


def require(condition: bool, reason: str) -> None:
    """Skip locally when a service is absent; in CI (CI=true) the same absence fails."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


# Real-world sample files shared by the team (Bankgirot's BgMax examples), never copied in.
FIXTURES = Path(
    os.environ.get("TOUCHPOINT_FIXTURES", Path(__file__).resolve().parents[2] / "shared/fixtures")
)


def shared_fixture(*parts: str) -> Path:
    """A sample file of ``../shared/fixtures`` (``TOUCHPOINT_FIXTURES``): skipped where the
    folder is absent, failed in CI."""
    path = FIXTURES.joinpath(*parts)
    require(path.exists(), f"needs the shared sample files: {path} (TOUCHPOINT_FIXTURES)")
    return path


@pytest.fixture
def postgres() -> None:
    require(connection.vendor == "postgresql", "needs PostgreSQL: set DATABASE_URL")


@pytest.fixture(autouse=True)
def _isolated_media(tmp_path: Path, settings: settings) -> None:  # type: ignore[valid-type]
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def sms_outbox() -> list[tuple[str, str]]:
    from core.sms import LocmemSmsBackend

    LocmemSmsBackend.outbox = []
    return LocmemSmsBackend.outbox


@pytest.fixture(autouse=True)
def _locmem_sms(settings: settings) -> None:  # type: ignore[valid-type]
    settings.SMS_BACKEND = "core.sms.LocmemSmsBackend"


# --- card payments: localstripe --------------------------------------------------------------


@pytest.fixture(scope="session")
def localstripe_server() -> Iterator[str]:
    """The base URL of a localstripe (PyPI) run by this test session: skipped locally when it
    cannot start, failed in CI."""
    from tests import localstripe

    started = localstripe.start()
    require(started is not None, "needs localstripe (pip install localstripe) to start")
    assert started is not None
    process, base = started
    yield base
    localstripe.stop(process)


@pytest.fixture
def stripe_on(settings: settings, localstripe_server: str) -> str:  # type: ignore[valid-type]
    """Card payments on, against the session's localstripe, emptied for this test."""
    from tests import localstripe

    settings.STRIPE_SECRET_KEY = localstripe.SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = localstripe.PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = localstripe.WEBHOOK_SECRET
    settings.STRIPE_API_BASE = localstripe_server
    settings.STRIPE_JS_URL = f"{localstripe_server}/js.stripe.com/v3/"
    localstripe.flush(localstripe_server)
    return localstripe_server
