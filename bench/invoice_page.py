"""Invoice-page throughput and latency, against a bare Django template view in the same run.

    python bench/invoice_page.py [--requests 6000] [--seconds 20] [--no-uvicorn]

Seeds a fresh embedded demo (SQLite in a temporary TOUCHPOINT_VAR_DIR), picks the latest
invoice with the most lines, and serves the product with gunicorn (2 sync workers, the
machine has 2 cores) on a free port of 127.0.0.1, with ``bench.settings_bench``: the
product's settings plus one bare TemplateView route. A load generator in separate processes
(2 processes × 16 threads = concurrency 32, http.client, a new connection per request as
gunicorn's sync workers close each one) sends a bounded number of requests, for at most a
bounded time, only to 127.0.0.1: first to the invoice page, then to the bare view.
Then the same under uvicorn, one process.
"""

import argparse
import http.client
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from io import StringIO
from multiprocessing import get_context

from _common import ROOT, django_setup, machine

PROCESSES = 2
THREADS = 16  # per process: concurrency 32 in all
WARMUP_REQUESTS = 100
GOAL_RATIO = 0.25
SETTINGS = "bench.settings_bench"


@dataclass
class LoadResult:
    ok: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    client_cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _one(port: int, path: str) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, (time.perf_counter() - started) * 1000
    finally:
        conn.close()


def _load_process(port: int, path: str, requests: int, seconds: float) -> LoadResult:
    """One load-generator process: THREADS threads share ``requests``, stop at ``seconds``."""
    lock = threading.Lock()
    left = [requests]
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            try:
                status, ms = _one(port, path)
            except OSError:
                status, ms = 0, 0.0
            with lock:
                if status == 200:
                    latencies.append(ms)
                else:
                    errors[0] += 1

    cpu = time.process_time()
    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return LoadResult(len(latencies), errors[0], elapsed, latencies, time.process_time() - cpu)


def drive(port: int, path: str, requests: int, seconds: float) -> LoadResult:
    """Warm up, then load ``path`` at concurrency PROCESSES × THREADS."""
    for _ in range(WARMUP_REQUESTS):
        _one(port, path)
    with ProcessPoolExecutor(PROCESSES, mp_context=get_context("fork")) as pool:
        parts = list(
            pool.map(
                _load_process,
                [port] * PROCESSES,
                [path] * PROCESSES,
                [requests // PROCESSES] * PROCESSES,
                [seconds] * PROCESSES,
            )
        )
    return LoadResult(
        ok=sum(p.ok for p in parts),
        errors=sum(p.errors for p in parts),
        seconds=max(p.seconds for p in parts),
        latencies_ms=[ms for p in parts for ms in p.latencies_ms],
        client_cpu_seconds=sum(p.client_cpu_seconds for p in parts),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited with {process.returncode}")
        try:
            if _one(port, "/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    sys.exit("the server did not answer /healthz in time")


def serve(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_ready(port, process)
    return process


def stop(process: subprocess.Popen) -> None:
    """Stop the server this script started (its own process group), and wait for it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def report(label: str, result: LoadResult) -> str:
    return (
        f"  {label}: {result.per_second:,.0f} req/s, p50 {result.percentile(50):.1f} ms, "
        f"p99 {result.percentile(99):.1f} ms ({result.ok:,} ok, {result.errors} errors, "
        f"{result.seconds:.1f} s; load generator used {result.client_cpu_seconds:.1f} CPU-s)"
    )


def measure(
    name: str,
    command: list[str],
    env: dict[str, str],
    port: int,
    page: str,
    args: argparse.Namespace,
) -> tuple[LoadResult, LoadResult]:
    server = serve(command, env, port)
    try:
        page_result = drive(port, page, args.requests, args.seconds)
        bare_result = drive(port, "/bench/bare/", args.requests, args.seconds)
    finally:
        stop(server)
    ratio = page_result.per_second / bare_result.per_second if bare_result.per_second else 0
    verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
    print(name)
    print(report("invoice page      ", page_result))
    print(report("bare template view", bare_result))
    print(f"  ratio page ÷ bare: {ratio:.0%} (goal ≥ {GOAL_RATIO:.0%}: {verdict})")
    return page_result, bare_result


def seed(customers: int) -> tuple[str, str, int, int]:
    """Seed the demo, pick the latest invoice with the most lines, make a link, and count
    the page's SQL queries in-process (first open, then a later one)."""
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from invoices.models import Invoice
    from invoices.services.links import invoice_link_create

    call_command("migrate", verbosity=0, interactive=False)
    call_command("seed_demo", customers=customers, stdout=StringIO())
    latest = Invoice.objects.order_by("-period_start").values_list("period_start", flat=True)[0]
    invoice = (
        Invoice.objects.filter(period_start=latest)
        .annotate(n=Count("lines"))
        .order_by("-n", "id")
        .select_related("series")
        .first()
    )
    token = invoice_link_create(invoice=invoice, reason="bench")
    path = f"/i/{token}/"
    client = Client()
    counts = []
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            status = client.get(path).status_code
        if status != 200:
            sys.exit(f"{path} answered {status} in-process")
        counts.append(len(queries))
    described = f"invoice {invoice.display_number}, {invoice.n} lines, {len(invoice.subscriptions)}"
    described += " subscriptions"
    connection.close()
    return path, described, counts[0], counts[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=6000, help="per server and view")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most, per measurement")
    parser.add_argument("--customers", type=int, default=50, help="demo customers to seed")
    parser.add_argument("--no-uvicorn", action="store_true", help="gunicorn only")
    args = parser.parse_args()

    var_dir = tempfile.mkdtemp(prefix="touchpoint-bench-")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "TOUCHPOINT_VAR_DIR": var_dir,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DATABASE_URL", None)  # the embedded SQLite demo in var_dir
    # In-process only (seeding, counting queries): no collected static files, no broker host.
    warnings.filterwarnings("ignore", message="No directory at")
    try:
        django_setup({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "TOUCHPOINT_VAR_DIR")})
        logging.getLogger("kombu").setLevel(logging.ERROR)
        os.environ.pop("DATABASE_URL", None)
        started = time.monotonic()
        page, described, first_queries, later_queries = seed(args.customers)
        print(f"Invoice page benchmark · {machine()}")
        print(
            f"Embedded demo (SQLite, {args.customers} customers, seeded in "
            f"{time.monotonic() - started:.0f} s); page {described}"
        )
        print(f"SQL queries per page: {first_queries} on first open, {later_queries} after")
        print(
            f"Load: {PROCESSES} processes × {THREADS} threads = concurrency "
            f"{PROCESSES * THREADS}, at most {args.requests:,} requests or {args.seconds:.0f} s "
            f"per measurement, after {WARMUP_REQUESTS} warm-up requests"
        )
        venv = ROOT / ".venv" / "bin"
        port = free_port()
        measure(
            "gunicorn, 2 sync workers (WSGI):",
            [
                str(venv / "gunicorn"),
                "config.wsgi:application",
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
            ],
            env,
            port,
            page,
            args,
        )
        if not args.no_uvicorn:
            port = free_port()
            measure(
                "uvicorn, 1 process (ASGI):",
                [
                    str(venv / "uvicorn"),
                    "config.asgi:application",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                env,
                port,
                page,
                args,
            )
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
