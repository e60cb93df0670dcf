"""Lookups the apps share."""

from typing import Any

from django.db.models import Lookup
from django.db.models.lookups import In


class AnyOf(Lookup):  # type: ignore[type-arg]
    """``column IN values`` for a batch of thousands: ``AnyOf(F("customer_id"), ids)``.

    On PostgreSQL the values go as one array parameter, ``= ANY(%s)``. As an IN list, the
    2,000-odd ids of a batch took Django, psycopg and the server about 18 µs per id to build,
    parse and plan, some 50 ms in each of a batch's nine queries, against 2–4 ms as one
    array (measured on bench/offers.py's data). Integers and strings go as the array's text
    (``'{1,2,3}'::bigint[]``, ``'{"a","b"}'::text[]``), which Python joins at about a
    twentieth of the cost of psycopg adapting a list element by element (100,000 keys: 0.06
    against 0.3 s, measured for bench/bgmax.py); other values as a list. Elsewhere it is the
    ordinary IN list.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        return In(self.lhs, list(self.rhs)).as_sql(compiler, connection)

    def as_postgresql(self, compiler: Any, connection: Any) -> Any:
        lhs, params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        literal = array_literal(values)
        if literal is None:
            return f"{lhs} = ANY(%s)", (*params, values)
        text, element_type = literal
        return f"{lhs} = ANY(%s::{element_type}[])", (*params, text)


def array_literal(values: list[Any]) -> tuple[str, str] | None:
    """PostgreSQL's text form of an array of ``values`` and its element type, when they are
    all integers (``bigint``) or all strings (``text``); else None. Every string is quoted,
    so commas, braces, blanks and the word NULL in one stay what they are."""
    if all(type(value) is int for value in values):
        return "{" + ",".join(map(str, values)) + "}", "bigint"
    if all(type(value) is str for value in values):
        body = '","'.join(values)
        if '"' in body or "\\" in body:
            body = '","'.join(value.replace("\\", "\\\\").replace('"', '\\"') for value in values)
        return '{"' + body + '"}' if values else "{}", "text"
    return None
