"""Chat delivery latency across two ASGI processes on Redis, against a bare channels-redis
echo through the same processes in the same run.

    python bench/chat.py [--customers 1000] [--agents 50] [--rate 200] [--seconds 20]
                         [--baseline-seconds 10] [--post socket|http] [--http wsgi|asgi]
                         [--http-workers 4] [--profile]

DATABASE_URL (default postgres://postgres@127.0.0.1:5432/touchpoint_bench_chat) names a
PostgreSQL database this script owns: created if missing, migrated, and emptied on every run
(billing, invoices, offers, chat, users, sessions). REDIS_URL (default
redis://127.0.0.1:6379/11) names a Redis database number it owns: flushed on every run.

Seeded: N customers with one subscription each (COPY), their invoices from the real bill run,
a link (token) per invoice, one conversation per invoice holding the customer's first
message (written in bulk, as the service leaves it), and agents in the support group with a
database session each. As in production (README): two uvicorn processes serve the
websockets of the product's ASGI application (``bench.asgi_echo``: the product's plus the
baseline's echo route), and gunicorn's sync workers (``--http-workers``, 4) the HTTP posts;
``--http asgi`` sends the posts to the uvicorn processes instead (with a connection pool,
``DB_POOL_MAX_SIZE``). All with the product's settings (cache and channel layer on Redis),
except a rate limit that is checked but never hit, on free ports of 127.0.0.1, warmed up by
100 posts. A
client process then connects every customer's socket (half to each process) and every
agent's console (agent j watches invoice j's conversation, from the other process than that
customer's socket), resumes each conversation, and holds them all.

Baseline, same run, the same sockets connected and idle: a bare channels-redis
``group_send`` echo between two clients, one on each process, ``--rate`` frames a second for
``--baseline-seconds``: from a frame's due time to its arrival at the other client.

Measured: customers' messages at a fixed ``--rate`` for ``--seconds``, to a random invoice
each, posted as the page posts them: over the customer's socket while it is open (``--post
socket``, the default: ``{"type": "post", "id", "body"}``, answered ``posted``, sent by the
client process), or by HTTP while it is not (``--post http``: ``/i/<token>/chat/messages/``
with CSRF cookie and header, sent by the main process; with ``--http asgi`` alternating
between the processes). Each body is stamped with the time it was due, so a driver that
falls behind counts against the product. Latency runs from that time until the message
reaches the invoice's customer socket, the watching agent's socket (when one watches), and
every agent's console (the first ``queue`` frame whose summary of the conversation counts
the message): stored, committed, announced on Redis, pushed by a consumer, received; and
until the post's answer. Undelivered: answered and not received by the end (lost, when the
servers keep up; a backlog, when they do not). Bounded: posts not answered 15 s after the
last was due are given up, deliveries are awaited at most 10 s more, then the servers are
stopped. Printed too: the CPU each part used per answered post (the uvicorn processes,
gunicorn and its workers, every PostgreSQL and Redis process of the machine).

Why the product's own paths and not the service called in the driver: the socket's frame
handling, or HTTP's middleware and link look-up, is part of what a post costs; the driver
would compete for the same 2 cores anyway. It is the cheapest part (asyncio), and its lag
behind the schedule is printed.

``--profile`` samples both servers with py-spy (``PY_SPY`` or on PATH) while posting and
prints where their Python time goes, by part of the work.
"""

import argparse
import asyncio
import dataclasses
import json
import math
import multiprocessing
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# This script is bench/chat.py and the app is the package ``chat``: take bench/ off the path
# (the script's own directory comes first) so that ``import chat`` finds the app, and work
# from the repository, where the servers import ``config`` and ``bench.asgi_echo``.
_BENCH = Path(__file__).resolve().parent
ROOT = _BENCH.parent
sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != _BENCH]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

from bench._common import django_setup, machine, postgres_database_ensure  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/touchpoint_bench_chat"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
GOAL_P99_MS = 30.0
PROCESSES = 2
POOL = 8  # keep-alive HTTP connections per server in the driver: PostgreSQL connections too
CONNECTING = 64  # websockets opened at once
DRAIN_SECONDS = 10.0  # at most, after the last post, for deliveries to arrive
PATIENCE_SECONDS = 15.0  # a post not answered this long after the last one was due: given up
WARM_UP_POSTS = 100
WARM_UP_RATE = 50
CONNECT_SECONDS = 900  # at most, for every socket to connect and the baseline to run
ORIGIN_HOST = "127.0.0.1"


# --- what the client process needs --------------------------------------------------------


@dataclass
class Customer:
    token: str
    invoice_id: int
    conversation: int
    last_seq: int
    server: int  # index into ports


@dataclass
class Agent:
    session: str
    conversation: int | None  # the one it watches
    invoice_index: int | None
    last_seq: int
    server: int


@dataclass
class ClientPlan:
    ports: list[int]
    pids: list[int]  # the servers'
    customers: list[Customer]
    agents: list[Agent]
    session_cookie: str
    rate: float
    baseline_seconds: float


@dataclass
class ClientReport:
    connect_seconds: float = 0.0
    echo_ms: list[float] = field(default_factory=list)
    echo_sent: int = 0
    # (k, latency in ms) of bench messages on customer and on watching agents' sockets
    customer: list[tuple[int, float]] = field(default_factory=list)
    watcher: list[tuple[int, float]] = field(default_factory=list)
    # (agent index, invoice index, last_seq, arrival on the monotonic clock)
    queue: list[tuple[int, int, int, float]] = field(default_factory=list)
    queue_frames: int = 0
    posted: list[dict[str, Any]] = field(default_factory=list)  # Posted, with --post socket
    closed_early: int = 0
    cpu_seconds: float = 0.0  # the client process's, during the chat phase


# --- the main process ----------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--rate", type=float, default=200.0, help="messages per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="of posting")
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument(
        "--post",
        choices=("socket", "http"),
        default="socket",
        help="how customers post: over their socket, as the page does while it is open, or by "
        "HTTP, as it does while it is not",
    )
    parser.add_argument(
        "--http",
        choices=("wsgi", "asgi"),
        default="wsgi",
        help="who takes the posts: gunicorn's sync workers, as in production (README), or "
        "the two uvicorn processes",
    )
    parser.add_argument("--http-workers", type=int, default=4, help="gunicorn's, with --http wsgi")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample both servers with py-spy (PY_SPY, else on PATH) while posting",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at PostgreSQL")
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    database = postgres_database_ensure(url)
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": "memory://",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "LOG_LEVEL": "WARNING",
        # the bench's customers write faster than people: the limit is checked, never hit
        "CHAT_CUSTOMER_MESSAGES_PER_MINUTE": "100000",
    }
    django_setup(env)
    import logging

    import redis
    from django.db import connection

    logging.getLogger("kombu").setLevel(logging.ERROR)
    sockets_needed = args.customers + args.agents + 2 * POOL + 100
    raise_open_files(sockets_needed)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
    redis_client = redis.Redis.from_url(redis_url)
    redis_version = redis_client.info("server")["redis_version"]
    print(f"Chat benchmark · {machine()}")
    print(
        f"PostgreSQL {pg_version} (database {database!r}), Redis {redis_version} "
        f"({redis_url}); load average {fmt_load()}"
    )

    started = time.monotonic()
    seeded = seed(args.customers, args.agents)
    queries = count_post_queries(seeded["tokens"][0])
    print(
        f"Seeded {args.customers:,} customers with an invoice and a link, {args.agents} agents "
        f"with a session, one conversation per invoice, in {time.monotonic() - started:.1f} s. "
        f"SQL queries per customer post (in-process, view and service): {queries}"
    )
    connection.close()
    redis_client.flushdb()  # the counters and groups of the in-process posts, earlier runs

    logs = Path(tempfile.mkdtemp(prefix="touchpoint-bench-chat-"))
    server_env = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": "config.settings"}
    server_env["PYTHONPATH"] = str(ROOT)
    if args.http == "asgi":
        # Under ASGI every HTTP request runs in a thread of its own, which keeps no PostgreSQL
        # connection: with CONN_MAX_AGE each request's is left to the garbage collector (at
        # 30 posts/s PostgreSQL ran out of connections), so the processes lend them from a
        # pool. Serving websockets only, they keep the default: the consumers' database
        # calls all run in one thread per process, which keeps its connection.
        server_env["DB_POOL_MAX_SIZE"] = "16"
    servers: list[subprocess.Popen[bytes]] = []
    spies: list[subprocess.Popen[bytes]] = []
    client: multiprocessing.process.BaseProcess | None = None
    try:
        ports = [free_port() for _ in range(PROCESSES)]
        for index, port in enumerate(ports):
            servers.append(serve(port, server_env, logs / f"uvicorn-{index}.log"))
        http_ports = ports
        if args.http == "wsgi":
            http_ports = [free_port()]
            servers.append(
                serve_wsgi(http_ports[0], args.http_workers, server_env, logs / "gunicorn.log")
            )
        listening = ports + (http_ports if args.http == "wsgi" else [])
        for port, server in zip(listening, servers, strict=True):
            wait_ready(port, server, logs)
        print(
            f"Servers: {PROCESSES} uvicorn processes (uvloop, httptools, websockets), "
            f"ports {', '.join(map(str, ports))}"
            + (
                f"; posts to gunicorn, {args.http_workers} sync workers, port {http_ports[0]}"
                if args.http == "wsgi"
                else "; posts to the uvicorn processes too"
            )
            + "; channel layer and cache on Redis"
        )

        # Warm-up: the servers' first requests, on both, through the whole path.
        tokens = seeded["tokens"]
        conversations = dict(enumerate(seeded["conversations"]))
        started = time.monotonic()
        count = min(WARM_UP_POSTS, len(tokens))
        warm = asyncio.run(
            post_at_rate(
                http_ports,
                [(i, tokens[i], i % len(http_ports)) for i in range(count)],
                WARM_UP_RATE,
                "warm-up",
                patience=60,
            )
        )
        failed = [r for r in warm if r.status != 201]
        if failed:
            sys.exit(f"warm-up posts failed: {failures(warm)}\n{server_logs(logs)}")
        for r in warm:
            conversations[r.job] = (r.payload["conversation"], r.payload["seq"])
        print(
            f"Warm-up: {len(warm)} posts by HTTP at {WARM_UP_RATE}/s, in "
            f"{time.monotonic() - started:.1f} s"
        )

        plan = ClientPlan(
            ports=ports,
            pids=[server.pid for server in servers[:PROCESSES]],
            customers=[
                Customer(tokens[i], seeded["invoices"][i], *conversations[i], i % PROCESSES)
                for i in range(len(tokens))
            ],
            agents=[
                Agent(
                    session=session,
                    conversation=conversations[j][0] if j < len(tokens) else None,
                    invoice_index=j if j < len(tokens) else None,
                    last_seq=conversations[j][1] if j < len(tokens) else 0,
                    server=(j + 1) % PROCESSES,  # the other process than its customer's
                )
                for j, session in enumerate(seeded["sessions"])
            ],
            session_cookie=seeded["session_cookie"],
            rate=args.rate,
            baseline_seconds=args.baseline_seconds,
        )
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        client = context.Process(target=client_process, args=(plan, child_end), daemon=True)
        client.start()
        if not parent_end.poll(CONNECT_SECONDS):
            sys.exit(f"the client process did not connect in time\n{server_logs(logs)}")
        state, detail = parent_end.recv()
        if state != "ready":
            sys.exit(f"the client process failed: {detail}\n{server_logs(logs)}")
        connect_seconds, echo_cpu = detail
        print(
            f"Connected {len(plan.customers):,} customer sockets and {len(plan.agents)} agent "
            f"consoles ({len(plan.customers) // PROCESSES:,}+ per process), resumed, in "
            f"{connect_seconds:.1f} s"
        )

        # The chat: posts at a fixed rate to random invoices, alternating processes.
        rng = random.Random(args.seed)
        total = int(args.rate * args.seconds)
        jobs = []
        for k in range(total):
            i = rng.randrange(len(tokens))
            jobs.append((i, tokens[i], k % len(http_ports)))
        cpu_before = [process_cpu(s.pid) for s in servers]
        services_before = services_cpu()
        machine_before = machine_cpu()
        load_before = fmt_load()
        phase_started = time.monotonic()
        spies = profile_start(servers, logs, args.seconds + 2) if args.profile else []
        if args.post == "http":
            results = asyncio.run(
                post_at_rate(http_ports, jobs, args.rate, "bench", patience=PATIENCE_SECONDS)
            )
            ok = [r for r in results if r.status == 201]
            parent_end.send(("drain", expected_deliveries(ok, len(plan.agents))))
        else:
            parent_end.send(("post", [job for job, _token, _server in jobs]))
        wait = args.seconds + PATIENCE_SECONDS + DRAIN_SECONDS + 120
        if not parent_end.poll(wait):
            sys.exit("the client process did not report")
        state, reported = parent_end.recv()
        if state != "report":
            sys.exit(f"the client process failed: {reported}\n{server_logs(logs)}")
        for spy in spies:
            spy.wait(timeout=120)
        report = ClientReport(**reported)
        if args.post == "socket":
            results = [Posted(**posted) for posted in report.posted]
            ok = [r for r in results if r.status == 201]
        phase_seconds = time.monotonic() - phase_started
        cpu_after = [process_cpu(s.pid) for s in servers]
        services_after = services_cpu()
        machine_after = machine_cpu()
        load_after = fmt_load()
        client.join(30)
    finally:
        if client is not None and client.is_alive():
            client.terminate()
            client.join(10)
        for server in servers:
            stop(server)

    # --- the figures ---
    print()
    print(
        f"Baseline: bare channels-redis group_send echo, one client on each process, "
        f"{args.rate:.0f} frames/s for {args.baseline_seconds:.0f} s, with the "
        f"{len(plan.customers) + len(plan.agents):,} sockets connected and idle"
    )
    echo = report.echo_ms
    print(
        f"  {summary(echo)}; {len(echo):,} of {report.echo_sent:,} received; servers used "
        f"{echo_cpu:.2f} CPU-s per s ({echo_cpu / args.rate * 1000:.1f} ms per frame)"
    )

    answered = {r.k for r in ok}  # (a post given up on may still arrive: not counted)
    customer = {k: ms for k, ms in first_arrivals(report.customer).items() if k in answered}
    watcher = {k: ms for k, ms in first_arrivals(report.watcher).items() if k in answered}
    # A console's queue shows each conversation's newest summary, several changes at once
    # when they come close together: a post reaches a console with the first summary of its
    # conversation that counts it (last_seq at least its number).
    shown: dict[tuple[int, int], list[tuple[float, int]]] = {}
    for agent, invoice_index, last_seq, arrived in report.queue:
        shown.setdefault((agent, invoice_index), []).append((arrived, last_seq))
    queue_ms = []
    for r in ok:
        for agent in range(len(plan.agents)):
            arrived = next(
                (t for t, seq in shown.get((agent, r.job), []) if seq >= r.payload["seq"]), None
            )
            if arrived is not None:
                queue_ms.append((arrived - r.due) * 1000)
    watched = [r for r in ok if r.job < len(plan.agents)]
    posting = max(r.done for r in results) - min(r.due for r in results)
    busy = (machine_after[0] - machine_before[0]) / max(machine_after[1] - machine_before[1], 1)
    server_cpu = sum(b - a for a, b in zip(cpu_before, cpu_after, strict=True)) / phase_seconds
    per_post_ms = 1000 * phase_seconds / max(len(ok), 1)
    shares = {
        "uvicorn": sum(cpu_after[i] - cpu_before[i] for i in range(PROCESSES)),
        "gunicorn": sum(cpu_after[i] - cpu_before[i] for i in range(PROCESSES, len(servers))),
        **{name: services_after[name] - services_before[name] for name in services_after},
    }
    how = {
        "socket": "posted over their sockets (as the page does while its socket is open)",
        "http": "POSTed by HTTP"
        + (", alternating processes" if args.http == "asgi" else ", to gunicorn"),
    }[args.post]
    answer = "posted" if args.post == "socket" else "201"
    print(
        f"Chat: customer messages {how}, {args.rate:.0f}/s for {args.seconds:.0f} s to random "
        f"invoices: {len(results):,} sent, {len(ok):,} answered {answer}, "
        f"{len(results) - len(ok)} refused or failed"
        + (f" ({failures(results)})" if len(results) > len(ok) else "")
    )
    http_ms = [(r.done - r.due) * 1000 for r in ok]
    lag_ms = [(r.sent - r.due) * 1000 for r in results if r.sent] or [0.0]
    c_ms = list(customer.values())
    print(f"  customer's socket:   {summary(c_ms)}; undelivered {len(ok) - len(customer)}", end="")
    print(f", duplicates {len(report.customer) - len(first_arrivals(report.customer))}")
    print(
        f"  watching agent:      {summary(list(watcher.values()))}; undelivered "
        f"{len(watched) - len(watcher)} of {len(watched)}"
    )
    print(
        f"  queue, {len(plan.agents)} consoles:   {summary(queue_ms)}; undelivered "
        f"{len(ok) * len(plan.agents) - len(queue_ms):,} of {len(ok) * len(plan.agents):,}; "
        f"{report.queue_frames:,} queue frames"
    )
    print(f"  answer {answer} (stored, committed, announced): {summary(http_ms)}")
    print(
        f"  delivered {len(customer) / posting:,.1f} messages/s to customers over {posting:.1f} s"
        f"; driver lag behind schedule p99 {pct(lag_ms, 99):.1f} ms, max {max(lag_ms):.1f} ms"
    )
    print(
        f"  servers used {server_cpu:.2f} CPU-s per s ("
        f"{server_cpu * phase_seconds / max(len(ok), 1) * 1000:.0f} ms per answered post), "
        f"the client process "
        f"{report.cpu_seconds / phase_seconds:.2f}; the machine's cores were {busy:.0%} busy "
        f"(everyone's); load average {load_before} → {load_after}"
        f"; sockets closed early {report.closed_early}"
    )
    print(
        "  CPU per answered post: "
        + ", ".join(
            f"{name} {seconds / phase_seconds * per_post_ms:.1f} ms"
            for name, seconds in shares.items()
            if seconds >= 0.01  # (gunicorn idles while customers post over their sockets)
        )
    )
    dropped = sum(
        log.read_text(errors="replace").count("over capacity") for log in logs.glob("*.log")
    )
    print(f"  group_sends that found channels over capacity (dropped doorbells): {dropped}")
    if spies:
        profile_report(logs)
    if len(ok) == len(results) and not spies:
        shutil.rmtree(logs, ignore_errors=True)
    else:
        print(f"\nThe servers' logs (and py-spy's samples): {logs}")
    if c_ms and echo:
        ratio = pct(c_ms, 99) / pct(echo, 99)
        verdict = "met" if pct(c_ms, 99) < GOAL_P99_MS else "NOT met"
        print(
            f"Ratio: chat p99 ÷ echo p99 = {ratio:.1f} (p50 {pct(c_ms, 50) / pct(echo, 50):.1f})"
            f"; goal p99 < {GOAL_P99_MS:.0f} ms at {args.rate:.0f} messages/s: {verdict}"
        )


def raise_open_files(needed: int) -> None:
    """Every socket is a file: lift the soft limit towards the hard one (children inherit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, needed + 256)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < needed:
        sys.exit(f"needs {needed} open files, the hard limit is {hard}")


def fmt_load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def services_cpu() -> dict[str, float]:
    """CPU seconds so far of the machine's PostgreSQL and Redis (every process of each)."""
    totals = {"PostgreSQL": 0.0, "Redis": 0.0}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        if name.startswith("postgres"):
            totals["PostgreSQL"] += seconds
        elif name.startswith("redis-server"):
            totals["Redis"] += seconds
    return totals


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process and its children (gunicorn's workers), from
    /proc."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"p50 {pct(values, 50):.1f} ms, p95 {pct(values, 95):.1f} ms, p99 {pct(values, 99):.1f} "
        f"ms, max {max(values):.1f} ms ({len(values):,} samples)"
    )


def failures(results: list["Posted"]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        if r.status != 201:
            key = str(r.status) if r.status else r.error
            counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} × {key}" for key, n in sorted(counts.items()))


def expected_deliveries(ok: list["Posted"], agents: int) -> dict[str, Any]:
    """What the client waits for before it reports: every answered post on its customer's
    socket and, when watched, its agent's; each console's queue counting the newest message
    of each invoice."""
    return {
        "customer": len(ok),
        "watcher": sum(1 for r in ok if r.job < agents),
        "queue": newest_seq(ok),
    }


def newest_seq(posted: list["Posted"]) -> dict[int, int]:
    """Of each invoice posted to, the highest message number."""
    newest: dict[int, int] = {}
    for r in posted:
        newest[r.job] = max(newest.get(r.job, 0), r.payload["seq"])
    return newest


def first_arrivals(arrivals: list[tuple[int, float]]) -> dict[int, float]:
    first: dict[int, float] = {}
    for k, ms in arrivals:
        first.setdefault(k, ms)
    return first


# --- data ----------------------------------------------------------------------------------


def seed(customers: int, agents: int) -> dict[str, Any]:
    """Empty the tables, then customers (COPY), their invoices (the bill run), a link and a
    conversation per invoice, agents in the support group with a database session each."""
    import importlib
    import io

    from django.apps import apps
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, User
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from billing.demo import add_months, catalogue_ensure
    from chat.models import Author, Conversation, Message
    from invoices.models import Invoice
    from invoices.services.bill_run import bill_run_execute, bill_run_start
    from invoices.services.links import invoice_link_create

    call_command("migrate", verbosity=0, interactive=False)
    tables = [
        model._meta.db_table
        for label in ("billing", "invoices", "offers", "chat", "sessions")
        for model in apps.get_app_config(label).get_models()
    ] + ["auth_user", "auth_user_groups"]
    quoted = ", ".join(connection.ops.quote_name(t) for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
    importlib.import_module("invoices.migrations.0002_invoice_series").create_series(apps, None)

    plans = catalogue_ensure()
    plan = plans["mobil-10"]  # one mobile line each: the invoice itself does not matter here
    customers_rows, subscription_rows = io.StringIO(), io.StringIO()
    for cid in range(1, customers + 1):
        customers_rows.write(
            f"{cid}\tC{cid:08d}\tKund {cid}\tc{cid}@example.com\t+4670{cid:07d}\tsv\t"
            f"Storgatan 1\t111 22\tStockholm\temail\tdefault\t2024-01-01 00:00:00+00\n"
        )
        subscription_rows.write(
            f"{cid}\t{cid}\t{plan.id}\t+4673{cid:07d}\t\t{plan.monthly_fee}\t2024-01-01\t\\N\t"
            f"\\N\t1\tactive\n"
        )
    with transaction.atomic(), connection.cursor() as cursor:
        for table, columns, rows in (
            ("billing_customer",
             "id, customer_number, name, email, phone, language, address, postal_code, city, "
             "delivery_method, billing_group, created_at", customers_rows),
            ("billing_subscription",
             "id, customer_id, plan_id, identifier, label, agreed_monthly_price, start_date, "
             "end_date, binding_end, notice_period_months, status", subscription_rows),
        ):  # fmt: skip
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                copy.write(rows.getvalue())
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, customers]
            )

    period = add_months(timezone.localdate().replace(day=1), -1)
    run = bill_run_start(period=period, invoice_date=add_months(period, 1))
    bill_run_execute(bill_run_id=run.id)
    with transaction.atomic():
        tokens = [
            invoice_link_create(invoice=invoice, reason="bench")
            for invoice in Invoice.objects.order_by("id")
        ]
    if len(tokens) != customers:
        sys.exit(f"the bill run issued {len(tokens)} invoices for {customers} customers")

    # One conversation per invoice with the customer's first message, as
    # chat_message_post_customer leaves them (written in bulk: nobody is connected yet).
    now = timezone.now()
    opened = Conversation.objects.bulk_create(
        Conversation(
            invoice_id=invoice.id,
            customer_id=invoice.customer_id,
            language=invoice.language,
            invoice_number=invoice.display_number,
            customer_name=str(invoice.buyer.get("name", "")),
            created_at=now,
            waiting_since=now,
            last_seq=1,
            last_message_at=now,
            customer_read_seq=1,
            customer_seen_at=now,
        )
        for invoice in Invoice.objects.select_related("series").order_by("id")
    )
    Message.objects.bulk_create(
        Message(conversation=c, seq=1, author=Author.CUSTOMER, body="Hej!", created_at=now)
        for c in opened
    )

    group, _ = Group.objects.get_or_create(name=settings.CHAT_SUPPORT_GROUP)
    sessions = []
    for n in range(agents):
        # no usable password: hashing 50 real ones would take longer than the rest
        user = User.objects.create(
            username=f"agent{n}",
            first_name=f"Agent {n}",
            is_staff=True,
            password=make_password(None),
        )
        user.groups.add(group)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        sessions.append(session.session_key)
    return {
        "tokens": tokens,
        "invoices": [c.invoice_id for c in opened],
        "conversations": [(c.id, 1) for c in opened],
        "sessions": sessions,
        "session_cookie": settings.SESSION_COOKIE_NAME,
    }


def count_post_queries(token: str) -> int:
    """SQL queries of one customer post through the view, in-process, in a conversation
    (the link, the locks, the message, the conversation, the payload; the broadcast is not
    SQL). The invoice's conversation then has one message more."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = Client().post(
            f"/i/{token}/chat/messages/", {"body": "count"}, HTTP_ACCEPT="application/json"
        )
    if response.status_code != 201:
        sys.exit(f"an in-process post answered {response.status_code}")
    return len(queries)


# --- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench.asgi_echo:application",
             "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off",
             "--no-access-log", "--log-level", "warning",
             # the driver's keep-alive connections wait between the warm-up and the run
             "--timeout-keep-alive", "300"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def serve_wsgi(port: int, workers: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def wait_ready(port: int, process: subprocess.Popen[bytes], logs: Path) -> None:
    import http.client

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"a server exited with {process.returncode}\n{server_logs(logs)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"a server did not answer /healthz in time\n{server_logs(logs)}")


def server_logs(logs: Path) -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
        for log in sorted(logs.glob("*.log"))
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server this script started (its own process group), and wait for it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- where the servers' time goes -----------------------------------------------------------


def profile_start(
    servers: list[subprocess.Popen[bytes]], logs: Path, seconds: float
) -> list[subprocess.Popen[bytes]]:
    """py-spy on each server for ``seconds``, 100 samples/s, of the thread holding the GIL
    (so: where the Python CPU goes, not where threads wait)."""
    spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if not spy:
        sys.exit("--profile needs py-spy: put it on PATH or name it in PY_SPY")
    spies = []
    for index, server in enumerate(servers):
        command = [spy, "record", "--pid", str(server.pid), "--duration", str(int(seconds)),
                   "--rate", "100", "--format", "raw", "--nonblocking", "--gil",
                   "--subprocesses",
                   "--output", str(logs / f"profile-{index}.txt")]  # fmt: skip
        spies.append(
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
    return spies


# What a sample is spent on: the first of these whose marker is in its stack (leaf first).
_DJANGO = (
    "BaseHandler",
    "ASGIHandler",
    "Middleware",
    "SyncToAsync",
    "AsyncToSync",
    "CurrentThreadExecutor",
    "Thread.start",
    "_worker",
)
PROFILE_PARTS = [
    ("post: PostgreSQL connect (one per request)", ("get_new_connection",)),
    ("post: link look-up (invoice_link_lookup)", ("invoice_link_lookup",)),
    ("post: the service (chat_message_post_customer)", ("chat_message_post_customer",)),
    ("channel layer: group_send", ("group_send",)),
    ("channel layer: receive", ("RedisChannelLayer.receive", "receive_single", "_clean_receive")),
    ("consumers: chat_event → send_json", ("chat_event",)),
    ("websockets (uvicorn's protocol)", ("websockets_impl", "websockets_sansio_impl")),
    ("post: the rest of the request (middleware, sync ↔ async hand-offs, response)", _DJANGO),
    ("consumers: the rest (dispatch)", ("await_many_dispatch", "AsyncConsumer")),
    ("Redis client, other", ("redis/",)),
    ("HTTP (uvicorn, httptools)", ("httptools_impl", "h11_impl")),
]


def profile_report(logs: Path, top: int = 20) -> None:
    """Both servers' samples: by part of the work, then the functions with the largest own
    (leaf) share."""
    parts: dict[str, int] = {}
    leaf: dict[str, int] = {}
    total = 0
    for path in sorted(logs.glob("profile-*.txt")):
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = stack.split(";")
            label = next(
                (
                    label
                    for label, markers in PROFILE_PARTS
                    if any(marker in frame for frame in frames for marker in markers)
                ),
                "other (the event loop itself, …)",
            )
            parts[label] = parts.get(label, 0) + n
            name = frames[-1].split(" (", 1)[0]
            where = frames[-1].rsplit("/", 1)[-1] if "/" in frames[-1] else ""
            key = f"{name} ({where}" if where else name
            leaf[key] = leaf.get(key, 0) + n
    if not total:
        print("  (py-spy recorded nothing)")
        return
    print(f"\nWhere the servers' Python time goes (py-spy --gil, {total:,} samples):")
    for label, n in sorted(parts.items(), key=lambda item: -item[1]):
        print(f"  {n / total:6.1%}  {label}")
    print("  own time, top functions:")
    for key, n in sorted(leaf.items(), key=lambda item: -item[1])[:top]:
        print(f"    {n / total:6.1%}  {key}")


# --- the HTTP driver -----------------------------------------------------------------------


@dataclass
class Posted:
    k: int
    job: int  # the invoice's index
    due: float  # monotonic clock, also in the body
    sent: float = 0.0
    done: float = 0.0
    status: int = 0  # 0: no answer (``error`` says why)
    error: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


class KeepAlive:
    """One HTTP/1.1 keep-alive connection: the driver's requests, no more."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        reader = self.reader
        if reader is None:
            raise ConnectionError("not connected")
        self.writer.write(raw)
        await self.writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        closing = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
            elif name.strip().lower() == "connection":
                closing = value.strip().lower() == "close"
        body = await reader.readexactly(length)
        if closing:  # gunicorn's sync workers answer one request per connection
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def post_at_rate(
    ports: list[int], jobs: list[tuple[int, str, int]], rate: float, label: str, patience: float
) -> list[Posted]:
    """POST ``jobs`` (invoice index, token, server index) at ``rate`` per second, each body
    saying ``<label> <k> <due>``; at most POOL requests in flight per server. What is not
    answered ``patience`` seconds after the last post was due is given up (status 0)."""
    import secrets
    from urllib.parse import quote

    pools: list[asyncio.Queue[KeepAlive]] = []
    for port in ports:
        pool: asyncio.Queue[KeepAlive] = asyncio.Queue()
        for _ in range(POOL):
            pool.put_nowait(KeepAlive(port))
        pools.append(pool)
    csrf = secrets.token_hex(16)
    results: list[Posted] = []

    async def one(k: int, job: int, token: str, server: int, due: float) -> None:
        posted = Posted(k=k, job=job, due=due)
        results.append(posted)
        body = f"body={quote(f'{label} {k} {due:.6f}')}".encode()
        port = ports[server]
        raw = (
            f"POST /i/{token}/chat/messages/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Origin: http://{ORIGIN_HOST}:{port}\r\nAccept: application/json\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n"
            f"Cookie: csrftoken={csrf}\r\nX-CSRFToken: {csrf}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        try:
            conn = await pools[server].get()
        except asyncio.CancelledError:
            posted.error, posted.done = "not sent in time", time.monotonic()
            return
        try:
            posted.sent = time.monotonic()
            status, answer = await conn.request(raw)
            posted.status = status
            if status == 201:
                posted.payload = json.loads(answer)
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            posted.error = type(error).__name__
            conn.close()
        except asyncio.CancelledError:
            posted.error = "not answered in time"
            conn.close()
        finally:
            posted.done = time.monotonic()
            pools[server].put_nowait(conn)

    tasks = []
    start = time.monotonic() + 0.2
    for k, (job, token, server) in enumerate(jobs):
        due = start + k / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(k, job, token, server, due)))
    if tasks:
        last_due = start + (len(jobs) - 1) / rate
        _done, pending = await asyncio.wait(
            tasks, timeout=max(0.0, last_due + patience - time.monotonic())
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for pool in pools:
        while not pool.empty():
            pool.get_nowait().close()
    return sorted(results, key=lambda r: r.k)


# --- the client process: every socket ------------------------------------------------------


def client_process(plan: ClientPlan, pipe: Any) -> None:
    try:
        import uvloop

        uvloop.run(clients(plan, pipe))
    except Exception as error:
        pipe.send(("error", repr(error)))
        raise


async def clients(plan: ClientPlan, pipe: Any) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    report = ClientReport()
    recording = {"on": True}
    sockets: list[Any] = []
    readers: list[asyncio.Task[None]] = []
    gate = asyncio.Semaphore(CONNECTING)

    def ws_url(server: int, path: str) -> tuple[str, str]:
        port = plan.ports[server]
        return f"ws://127.0.0.1:{port}{path}", f"http://{ORIGIN_HOST}:{port}"

    async def until(ws: Any, kind: str) -> dict[str, Any]:
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
            if frame["type"] == kind:
                return dict(frame)

    async def read(ws: Any, agent: int | None) -> None:
        try:
            async for raw in ws:
                now = time.monotonic()
                if not recording["on"]:
                    continue
                frame = json.loads(raw)
                kind = frame["type"]
                if kind == "message":
                    words = frame["body"].split(" ")
                    if words[0] == "bench":
                        target = report.customer if agent is None else report.watcher
                        target.append((int(words[1]), (now - float(words[2])) * 1000))
                elif kind in {"posted", "post_refused"} and frame["id"] in posts:
                    posted = posts[frame["id"]]
                    posted.done = now
                    if kind == "posted":
                        posted.status = 201
                        posted.payload = {
                            "conversation": frame["conversation"],
                            "seq": frame["seq"],
                        }
                    else:
                        posted.status, posted.error = 400, frame["code"]
                elif kind == "queue" and agent is not None:
                    report.queue_frames += 1
                    for shown in frame["conversations"]:
                        invoice_index = invoice_of.get(shown["invoice"])
                        if invoice_index is not None:
                            report.queue.append((agent, invoice_index, shown["last_seq"], now))
                            key = (agent, invoice_index)
                            queue_newest[key] = max(queue_newest.get(key, 0), shown["last_seq"])
        except ConnectionClosed:
            if recording["on"]:
                report.closed_early += 1

    invoice_of = {customer.invoice_id: index for index, customer in enumerate(plan.customers)}
    customer_ws: dict[int, Any] = {}  # invoice index: its customer's socket
    posts: dict[str, Posted] = {}  # the post's id: what came of it (--post socket)
    queue_newest: dict[tuple[int, int], int] = {}  # (agent, invoice index): newest last_seq

    async def open_customer(index: int, customer: Customer) -> None:
        url, origin = ws_url(customer.server, f"/ws/chat/{customer.token}/")
        async with gate:
            ws = await connect(url, origin=origin, open_timeout=60, ping_interval=None)
            await until(ws, "hello")
            # resume one message back: the answer proves the socket follows the conversation
            await ws.send(
                json.dumps(
                    {
                        "type": "resume",
                        "conversation": customer.conversation,
                        "after": customer.last_seq - 1,
                    }
                )
            )
            await until(ws, "message")
        sockets.append(ws)
        customer_ws[index] = ws
        readers.append(asyncio.create_task(read(ws, None)))

    async def open_agent(index: int, agent: Agent) -> None:
        url, origin = ws_url(agent.server, "/ws/support/")
        async with gate:
            ws = await connect(
                url,
                origin=origin,
                additional_headers={"Cookie": f"{plan.session_cookie}={agent.session}"},
                open_timeout=60,
                ping_interval=None,
            )
            await until(ws, "hello")
            if agent.conversation is not None:
                await ws.send(
                    json.dumps(
                        {
                            "type": "watch",
                            "conversation": agent.conversation,
                            "after": agent.last_seq - 1,
                        }
                    )
                )
                await until(ws, "message")
        sockets.append(ws)
        readers.append(asyncio.create_task(read(ws, index)))

    started = time.monotonic()
    await asyncio.gather(*(open_customer(i, c) for i, c in enumerate(plan.customers)))
    await asyncio.gather(*(open_agent(j, a) for j, a in enumerate(plan.agents)))
    report.connect_seconds = time.monotonic() - started
    await asyncio.sleep(0.5)

    echo_cpu = await echo_baseline(plan, report)
    await asyncio.to_thread(pipe.send, ("ready", (report.connect_seconds, echo_cpu)))

    # the chat phase: record until everything is posted (by the main process, or here)
    cpu = time.process_time()
    command, detail = await asyncio.to_thread(pipe.recv)
    if command == "post":
        await post_over_sockets(detail, plan.rate, customer_ws, posts)
        report.posted = [dataclasses.asdict(p) for p in sorted(posts.values(), key=lambda p: p.k)]
        expected = expected_deliveries(
            [p for p in posts.values() if p.status == 201], len(plan.agents)
        )
    else:
        expected = detail
    deadline = time.monotonic() + DRAIN_SECONDS

    def queues_behind() -> bool:
        return any(
            queue_newest.get((agent, invoice_index), 0) < seq
            for agent in range(len(plan.agents))
            for invoice_index, seq in expected["queue"].items()
        )

    while time.monotonic() < deadline and (
        len(first_arrivals(report.customer)) < expected["customer"]
        or len(first_arrivals(report.watcher)) < expected["watcher"]
        or queues_behind()
    ):
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.3)  # duplicates, if any, would come now
    report.cpu_seconds = time.process_time() - cpu
    recording["on"] = False
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    for task in readers:
        task.cancel()
    # plain data: the spawned process's classes live in its ``__mp_main__``
    await asyncio.to_thread(pipe.send, ("report", dataclasses.asdict(report)))


async def post_over_sockets(
    jobs: list[int], rate: float, customer_ws: dict[int, Any], posts: dict[str, Posted]
) -> None:
    """Post ``jobs`` (invoice indexes) at ``rate`` per second over each invoice's customer
    socket, as the page does while its socket is open; each body says ``bench <k> <due>``.
    Answers (``posted``, ``post_refused``) are recorded by the socket's reader; what is not
    answered PATIENCE_SECONDS after the last post was due is given up (status 0)."""
    start = time.monotonic() + 0.2
    for k, job in enumerate(jobs):
        due = start + k / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        post_id = f"bench-{k}"
        posted = posts[post_id] = Posted(k=k, job=job, due=due, sent=time.monotonic())
        try:
            await customer_ws[job].send(
                json.dumps({"type": "post", "id": post_id, "body": f"bench {k} {due:.6f}"})
            )
        except Exception as error:  # the socket closed: counted as not answered
            posted.error, posted.done = type(error).__name__, time.monotonic()
    deadline = start + len(jobs) / rate + PATIENCE_SECONDS
    while time.monotonic() < deadline and any(p.done == 0.0 for p in posts.values()):
        await asyncio.sleep(0.05)
    for posted in posts.values():
        if posted.done == 0.0:
            posted.error, posted.done = "not answered in time", time.monotonic()


async def echo_baseline(plan: ClientPlan, report: ClientReport) -> float:
    """Two echo clients, one on each process, frames alternately one way and the other."""
    from websockets.asyncio.client import connect

    ends = []
    for n, server in ((1, 0), (2, 1)):
        port = plan.ports[server]
        ends.append(
            await connect(
                f"ws://127.0.0.1:{port}/ws/bench-echo/{n}/",
                origin=f"http://{ORIGIN_HOST}:{port}",
                ping_interval=None,
            )
        )
    received: list[float] = []
    warm = {"left": 50}

    async def read(ws: Any) -> None:
        async for raw in ws:
            now = time.monotonic()
            frame = json.loads(raw)
            if frame["k"] < 0:
                warm["left"] -= 1
            else:
                received.append((now - frame["t"]) * 1000)

    readers = [asyncio.create_task(read(ws)) for ws in ends]
    for k in range(50):  # warm-up, not measured
        await ends[k % 2].send(json.dumps({"to": 2 - k % 2, "k": -1 - k, "t": 0}))
        await asyncio.sleep(0.01)
    total = int(plan.rate * plan.baseline_seconds)
    cpu_before = [process_cpu(pid) for pid in plan.pids]
    started = time.monotonic()
    start = started + 0.2
    for k in range(total):
        due = start + k / plan.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        # the frame carries its due time: a late sender counts against the echo
        await ends[k % 2].send(json.dumps({"to": 2 - k % 2, "k": k, "t": due}))
    deadline = time.monotonic() + 5
    while len(received) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    seconds = time.monotonic() - started
    cpu_after = [process_cpu(pid) for pid in plan.pids]
    for ws in ends:
        await ws.close()
    for task in readers:
        task.cancel()
    report.echo_ms, report.echo_sent = received, total
    return sum(b - a for a, b in zip(cpu_before, cpu_after, strict=True)) / seconds


if __name__ == "__main__":
    main()
