"""What every browser test shares: Debian Chromium through Playwright, a phone viewport, and
an ASGI live server for what needs websockets (``asgi_live_server``).

Without /usr/bin/chromium these tests skip locally and fail in CI (``tests.conftest.require``).
"""

import asyncio
import logging
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from tests.conftest import require

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# around it are synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
BLOCKING_IMPACTS = {"serious", "critical"}  # axe-core impacts that fail a test


def text_of(locator: Any) -> str:
    """A locator's text as a person reads it: spaces (non-breaking too) run together."""
    return re.sub(r"\s+", " ", locator.inner_text().replace("\xa0", " ")).strip()


def audit(page: Any, context: str | None = None) -> list[dict[str, Any]]:
    """axe-core on the page (or the part ``context`` selects): the serious and critical
    violations, printed."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context=context) if context else Axe().run(page)
    blocking = [v for v in results.response["violations"] if v["impact"] in BLOCKING_IMPACTS]
    for violation in blocking:
        targets = [node["target"] for node in violation["nodes"]]
        print(f"axe {violation['impact']}: {violation['id']} – {violation['help']} – {targets}")
    return blocking


SCREENSHOTS = Path(tempfile.gettempdir())  # screenshots of each step, to look at


@pytest.fixture
def browser() -> Iterator[object]:
    require(Path(CHROMIUM).exists(), f"needs Debian Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def phone(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    yield page
    context.close()


# --- an ASGI server, for what needs websockets (the chat) ------------------------------------
# pytest-django's ``live_server`` is WSGI: no websockets. ``asgi_live_server`` serves
# ``config.asgi:application`` (HTTP and websockets, the origin check, the in-memory channel
# layer) with uvicorn in a thread of the test process, against the test database, as Django's
# LiveServerThread and Channels' ChannelsLiveServerTestCase do. A thread, not a process: the
# in-memory channel layer (and SQLite's in-memory test database) live in this process, so a
# service the test calls through ``asgi_server_call`` reaches the browser's sockets.

_SERVER_LOOPS: dict[str, asyncio.AbstractEventLoop] = {}


@contextmanager
def _database_shared_with_server_threads() -> Iterator[None]:
    """SQLite's in-memory test database exists in this process's one connection: every thread
    (the server's request and socket threads) uses that connection, as Django's
    LiveServerThread arranges for its thread. Other databases: each thread connects itself
    (the test's data is committed: ``transaction=True``)."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield
        return
    connection.ensure_connection()
    connection.inc_thread_sharing()
    # ConnectionHandler keeps connections per thread in ``_connections``; for the server's
    # lifetime every thread finds this one (closing an in-memory SQLite connection is a no-op).
    original = connections._connections
    connections._connections = SimpleNamespace(**{DEFAULT_DB_ALIAS: connection})
    try:
        yield
    finally:
        connections._connections = original
        connection.dec_thread_sharing()


@pytest.fixture
def asgi_live_server(transactional_db: None) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:<port>``) of ``config.asgi:application`` served by
    uvicorn in a thread: pages, static files and websockets (``ws://`` on the same port).

    Use with ``pytest.mark.django_db(transaction=True)``. To change data the browser's sockets
    should hear of (a service that broadcasts after commit), call it through
    ``asgi_server_call``.
    """
    import uvicorn

    from config.asgi import application

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    # log_config=None: uvicorn leaves Django's logging (which masks invoice tokens) alone;
    # but access_log=False empties the uvicorn.access logger's handlers for the whole process,
    # so they are put back (the server itself then writes no access lines)
    access = logging.getLogger("uvicorn.access")
    handlers, propagate = list(access.handlers), access.propagate
    config = uvicorn.Config(
        application, lifespan="off", log_config=None, access_log=False, ws="websockets-sansio"
    )
    access.handlers, access.propagate = handlers, propagate
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def serve() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        _SERVER_LOOPS[url] = loop
        try:
            loop.run_until_complete(server.serve(sockets=[listener]))
        except BaseException as error:  # shown by the fixture, not lost in the thread
            failure.append(error)
        finally:
            loop.close()

    with _database_shared_with_server_threads():
        thread = threading.Thread(target=serve, name="asgi-live-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started and not failure and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            raise RuntimeError(f"the ASGI test server did not start: {failure}")
        try:
            yield url
        finally:
            server.should_exit = True
            thread.join(timeout=15)
            _SERVER_LOOPS.pop(url, None)
            listener.close()


@pytest.fixture
def asgi_server_call(asgi_live_server: str) -> Callable[..., Any]:
    """``call(function, *args, **kwargs)``: run a synchronous function (a service) in the
    ASGI test server's event loop, as a request there would, and return its result. Its
    channel-layer sends (after commit) then reach the sockets the browser holds: the in-memory
    layer belongs to that loop."""
    from asgiref.sync import sync_to_async

    loop = _SERVER_LOOPS[asgi_live_server]

    def call(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        coroutine = sync_to_async(function, thread_sensitive=False)(*args, **kwargs)
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)

    return call
