"""The chat across two ASGI server processes sharing PostgreSQL and Redis, as in production:
a message posted to one process reaches the sockets held by the other.

Two real uvicorn processes serve ``config.asgi:application`` against the test database that
pytest-django created (the test's data is committed: ``transaction=True``) and the same
Redis. The channel layer's settings that keep sockets alive on Redis are pinned here too.
Needs PostgreSQL and Redis: skipped locally without DATABASE_URL and REDIS_URL, failed in CI
(``tests.conftest.require``).
"""

import asyncio
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection
from django.test import Client

from invoices.services.links import invoice_link_create
from tests.conftest import require

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 30  # for a server to answer /healthz (Django's import takes 1–3 s)
FRAME_SECONDS = 5  # for an expected frame to arrive


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _test_database_url() -> str:
    """The database this test's data is committed to (pytest-django's ``test_...``)."""
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{quote(db['USER'], safe='')}{password}@{host}{port}/{db['NAME']}"


def _get(server: Server, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def _stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    """Two uvicorn processes on free ports of 127.0.0.1, started together, stopped after."""
    require(
        connection.vendor == "postgresql" and bool(settings.REDIS_URL),
        "needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL",
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DB_CONN_MAX_AGE": "0",  # nothing left connected to the test database afterwards
        "LOG_LEVEL": "WARNING",
    }
    started: list[Server] = []
    logs = Path(tempfile.mkdtemp(prefix="chat-processes-"))
    try:
        for name in ("a", "b"):
            port = _free_port()
            log = logs / f"{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", "config.asgi:application",
                     "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off",
                     "--no-access-log", "--timeout-graceful-shutdown", "2"],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            started.append(Server(port, process, log))
        deadline = time.monotonic() + START_SECONDS
        for server in started:
            while True:
                if server.process.poll() is not None:
                    pytest.fail(f"uvicorn exited with {server.process.returncode}:\n"
                                f"{server.output()}")  # fmt: skip
                try:
                    if _get(server, "/healthz") == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"uvicorn did not answer /healthz in {START_SECONDS} s:\n"
                                f"{server.output()}")  # fmt: skip
                time.sleep(0.1)
        yield started[0], started[1]
    finally:
        for server in started:
            _stop(server)
        shutil.rmtree(logs, ignore_errors=True)


def _post_message(server: Server, token: str, body: str) -> dict[str, Any]:
    """What the page's script does: POST with the CSRF cookie and the same token in the
    X-CSRFToken header, from the server's own origin."""
    csrf = secrets.token_hex(16)  # 32 characters: a valid unmasked CSRF secret
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=FRAME_SECONDS)
    try:
        conn.request(
            "POST",
            f"/i/{token}/chat/messages/",
            body=f"body={quote(body)}",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "Origin": server.http,
                "Cookie": f"{settings.CSRF_COOKIE_NAME}={csrf}",
                "X-CSRFToken": csrf,
            },
        )
        response = conn.getresponse()
        text = response.read().decode()
    finally:
        conn.close()
    assert response.status == 201, (response.status, text[:500], server.output())
    return dict(json.loads(text))


async def _next(ws: Any, kind: str, server: Server) -> dict[str, Any]:
    """The next frame of ``kind`` (summaries and the like may come between)."""
    from websockets.exceptions import ConnectionClosed

    deadline = time.monotonic() + FRAME_SECONDS
    while True:
        left = deadline - time.monotonic()
        try:
            frame = dict(json.loads(await asyncio.wait_for(ws.recv(), timeout=max(left, 0.01))))
        except (TimeoutError, ConnectionClosed) as error:
            pytest.fail(f"no {kind!r} frame within {FRAME_SECONDS} s ({error!r}); server log:\n"
                        f"{server.output()}")  # fmt: skip
        if frame["type"] == kind:
            return frame


def test_a_message_posted_to_one_process_reaches_sockets_on_the_other(
    servers, invoice, agent
) -> None:
    from websockets.asyncio.client import connect

    a, b = servers
    token = invoice_link_create(invoice=invoice)
    client = Client()
    client.force_login(agent)  # the staff session, committed to the test database
    session = client.cookies[settings.SESSION_COOKIE_NAME].value

    async def scenario() -> None:
        # given an agent's console on process B, then the customer's page with its socket on A
        async with connect(
            f"{b.ws}/ws/support/",
            origin=b.http,
            additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"},
            open_timeout=FRAME_SECONDS,
        ) as console:
            assert (await _next(console, "hello", b))["agent_id"] == agent.pk
            async with connect(
                f"{a.ws}/ws/chat/{token}/", origin=a.http, open_timeout=FRAME_SECONDS
            ) as page:
                # (the agent's presence, written by B, is what A tells the page)
                assert (await _next(page, "hello", a))["agents_online"] is True
                # when the customer's message is posted by HTTP to process B
                posted = await asyncio.to_thread(_post_message, b, token, "Varför 299 kr?")
                # then the socket on process A gets it, stored with its number
                message = await _next(page, "message", a)
                assert (message["seq"], message["body"], message["conversation"]) == (
                    1,
                    "Varför 299 kr?",
                    posted["conversation"],
                )
                # and the console on B sees the conversation waiting in the queue
                (queued,) = (await _next(console, "queue", b))["conversations"]
                assert (queued["id"], queued["status"], queued["unread"]) == (
                    posted["conversation"],
                    "waiting",
                    1,
                )
                # and the other way round: posted to A, the console on B hears it too
                await asyncio.to_thread(_post_message, a, token, "Och 199,50 kr?")
                (queued,) = (await _next(console, "queue", b))["conversations"]
                assert queued["last_seq"] == 2
                assert (await _next(page, "message", a))["seq"] == 2

    async_to_sync(scenario)()
