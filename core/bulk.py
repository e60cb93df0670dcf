"""Insert many rows at once: PostgreSQL COPY where available, ``bulk_create`` elsewhere.

A bill run writes hundreds of thousands of rows; COPY writes them at several times the
speed of a multi-row INSERT and skips building a model instance per row. Rows are dicts
keyed by attname (``customer_id``, not ``customer``), or tuples in the order of the
attnames given as ``columns``; a field left out takes its model default, exactly as
``Model(**row)`` would.
"""

import gc
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection, models, transaction

_SEQUENCE_IDS = "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)"


def ids_reserve(model: type[models.Model], count: int) -> list[int]:
    """``count`` new ids of ``model``'s table, taken from its sequence as an insert would
    take them, for rows written later in this transaction (``insert_rows(ids=...)``): rows
    that refer to them can be written first, foreign keys being checked at commit. An id
    reserved and not used is skipped, as after a rolled-back insert.

    On PostgreSQL, the table's identity sequence. On SQLite, its AUTOINCREMENT counter
    (``sqlite_sequence``), moved on under the write lock the transaction holds from its
    start (``transaction_mode`` IMMEDIATE): no other writer can take the same ids.
    """
    if count <= 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_SEQUENCE_IDS, [table, count])
            return [row[0] for row in cursor.fetchall()]
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("reserve ids inside the transaction that inserts them")
        quoted = connection.ops.quote_name(table)
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        found = cursor.fetchone()
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {quoted}")  # noqa: S608 (a table name)
        last = max(found[0] if found else 0, cursor.fetchone()[0])
        if found:
            cursor.execute(
                "UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [last + count, table]
            )
        else:
            cursor.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, last + count]
            )
    return list(range(last + 1, last + count + 1))


def insert_rows(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]] | Sequence[tuple[Any, ...]],
    *,
    returning_ids: bool = True,
    columns: Sequence[str] | None = None,
    ids: Sequence[int] | None = None,
) -> list[int]:
    """Insert ``rows`` into ``model``'s table and return their new ids, in order (an empty
    list with ``returning_ids=False``: the table's own sequence numbers them, one query
    fewer). With ``columns``, each row is a tuple of those attnames' values: no dict per
    row, for the largest batches. With ``ids`` (from ``ids_reserve``), the rows take those
    ids, one each, in order."""
    if not rows:
        return []
    if ids is not None and len(ids) != len(rows):
        raise ValueError(f"{len(ids)} ids for {len(rows)} rows")
    if connection.vendor == "postgresql":
        if ids is None and returning_ids:
            ids = ids_reserve(model, len(rows))
        if columns is not None:
            return _copy_tuples(model, columns, rows, ids)  # type: ignore[arg-type]
        return _copy_rows(model, rows, ids)  # type: ignore[arg-type]
    named = rows if columns is None else [dict(zip(columns, row, strict=True)) for row in rows]
    if ids is not None:
        named = [{**row, "id": row_id} for row, row_id in zip(named, ids, strict=True)]  # type: ignore[dict-item]
    created = model._default_manager.bulk_create([model(**row) for row in named])  # type: ignore[arg-type]
    return [obj.pk for obj in created] if returning_ids else []


def _copy_rows(
    model: type[models.Model], rows: Sequence[dict[str, Any]], ids: Sequence[int] | None
) -> list[int]:
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    # each row's values by attname (or the field's default)
    plain = [(f.attname, f.get_default()) for f in fields]
    json_at = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    table = connection.ops.quote_name(meta.db_table)
    columns = [connection.ops.quote_name(f.column or f.attname) for f in fields]
    if ids is not None:
        columns.insert(0, connection.ops.quote_name("id"))  # Django's BigAutoField
    # JSON as text, each object encoded once: rows of a batch share some (the seller, a
    # line text repeated for thousands of customers). The rows hold them alive meanwhile,
    # so an id is not reused for another object before the batch is written.
    encoded: dict[int, str] = {}
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for index, row in enumerate(rows):
                get = row.get
                values = [get(name, default) for name, default in plain]
                for at in json_at:
                    value = values[at]
                    if value is not None:
                        text = encoded.get(id(value))
                        if text is None:
                            text = encoded[id(value)] = json.dumps(value)
                        values[at] = text
                if ids is not None:
                    values.insert(0, ids[index])
                copy.write_row(values)
    return list(ids or [])


def _copy_tuples(
    model: type[models.Model],
    names: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    ids: Sequence[int] | None,
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
    if ids is not None:
        columns.insert(0, quote("id"))
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY {quote(meta.db_table)} ({', '.join(columns)}) FROM STDIN") as copy:
            if ids is not None:
                for row_id, row in zip(ids, rows, strict=True):
                    copy.write_row((row_id, *row, *defaults))
            else:
                for row in rows:
                    copy.write_row((*row, *defaults))
    return list(ids or [])


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
