"""Shared by the benchmarks: the repository on sys.path, databases, Django set-up, the machine."""

import io
import os
import platform
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/touchpoint_bench"


def repo_on_path() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def postgres_database_ensure(url: str) -> str:
    """Create the database named in ``url`` if it is missing; returns its name."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def postgres_url(default: str) -> tuple[str, str]:
    """``DATABASE_URL`` (else ``default``), which must name PostgreSQL, and its database's
    name, the database created if it is missing."""
    url = os.environ.get("DATABASE_URL", default)
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at PostgreSQL")
    return url, postgres_database_ensure(url)


def copy_text(table: str, columns: list[str], lines: io.StringIO) -> None:
    """COPY ``lines`` (tab-separated text) into ``table``'s ``columns``, through Django's
    connection."""
    from django.db import connection

    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        copy.write(lines.getvalue())


def django_setup(env: dict[str, str]) -> None:
    """Set the environment the settings module reads, then set Django up."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    repo_on_path()
    import django

    django.setup()


def machine() -> str:
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "n/a"
