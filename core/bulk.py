"""Insert many rows at once: PostgreSQL COPY where available, ``bulk_create`` elsewhere.

A bill run writes hundreds of thousands of rows; COPY writes them at several times the
speed of a multi-row INSERT and skips building a model instance per row. Rows are dicts
keyed by attname (``customer_id``, not ``customer``), or tuples in the order of the
attnames given as ``columns``; a field left out takes its model default, exactly as
``Model(**row)`` would.
"""

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection, models

_SEQUENCE_IDS = "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)"


def insert_rows(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]] | Sequence[tuple[Any, ...]],
    *,
    returning_ids: bool = True,
    columns: Sequence[str] | None = None,
) -> list[int]:
    """Insert ``rows`` into ``model``'s table and return their new ids, in order (an empty
    list with ``returning_ids=False``: the table's own sequence numbers them, one query
    fewer). With ``columns``, each row is a tuple of those attnames' values: no dict per
    row, for the largest batches."""
    if not rows:
        return []
    if connection.vendor == "postgresql":
        if columns is not None:
            return _copy_tuples(model, columns, rows, returning_ids)  # type: ignore[arg-type]
        return _copy_rows(model, rows, returning_ids)  # type: ignore[arg-type]
    named = rows if columns is None else [dict(zip(columns, row, strict=True)) for row in rows]
    created = model._default_manager.bulk_create([model(**row) for row in named])  # type: ignore[arg-type]
    return [obj.pk for obj in created] if returning_ids else []


def _copy_rows(
    model: type[models.Model], rows: Sequence[dict[str, Any]], returning_ids: bool
) -> list[int]:
    from psycopg.types.json import Jsonb

    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    is_json = [isinstance(f, models.JSONField) for f in fields]
    defaults = [f.get_default() for f in fields]
    table = connection.ops.quote_name(meta.db_table)
    columns = [connection.ops.quote_name(f.column or f.attname) for f in fields]
    with connection.cursor() as cursor:
        ids: list[int] = []
        if returning_ids:
            cursor.execute(_SEQUENCE_IDS, [meta.db_table, len(rows)])
            ids = [row[0] for row in cursor.fetchall()]
            columns.insert(0, connection.ops.quote_name("id"))  # Django's BigAutoField
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for index, row in enumerate(rows):
                values: list[Any] = [ids[index]] if returning_ids else []
                for field, json, default in zip(fields, is_json, defaults, strict=True):
                    value = row.get(field.attname, default)
                    values.append(Jsonb(value) if json and value is not None else value)
                copy.write_row(values)
    return ids


def _copy_tuples(
    model: type[models.Model],
    names: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    returning_ids: bool,
) -> list[int]:
    """COPY of rows given as tuples of ``names``' values, the other fields' defaults after
    them. Plain values only: a JSON field must be named in a dict row."""
    meta = model._meta
    by_attname = {f.attname: f for f in meta.concrete_fields}
    given = [by_attname[name] for name in names]
    rest = [f for f in meta.concrete_fields if not f.primary_key and f.attname not in names]
    if any(isinstance(f, models.JSONField) for f in [*given, *rest]):
        raise ValueError(f"{model.__name__} has a JSON field: insert it as dict rows")
    defaults = tuple(f.get_default() for f in rest)
    quote = connection.ops.quote_name
    columns = [quote(f.column or f.attname) for f in [*given, *rest]]
    with connection.cursor() as cursor:
        ids: list[int] = []
        if returning_ids:
            cursor.execute(_SEQUENCE_IDS, [meta.db_table, len(rows)])
            ids = [row[0] for row in cursor.fetchall()]
            columns.insert(0, quote("id"))
        raw = cursor.cursor
        with raw.copy(f"COPY {quote(meta.db_table)} ({', '.join(columns)}) FROM STDIN") as copy:
            if returning_ids:
                for row_id, row in zip(ids, rows, strict=True):
                    copy.write_row((row_id, *row, *defaults))
            else:
                for row in rows:
                    copy.write_row((*row, *defaults))
    return ids


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Pause CPython's cycle collector while a batch builds its rows.

    A batch of hundreds of thousands of rows allocates as many objects (parsed records,
    Decimals, row tuples) that live until it ends and form no reference cycles. The
    collector, triggered again and again as they are allocated, walks all of them each time
    it runs a full collection: a quarter of the CPU time of booking 100,000 payments
    (bench/bgmax.py). Reference counting frees everything as usual meanwhile; cycles made
    elsewhere in the process during the pause are collected once it ends. Safe with threads:
    whoever finds the collector running when they start turns it back on when they end.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
