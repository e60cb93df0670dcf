"""Usage records from mediation and other source systems, by JSON batch or CSV file: checked
record by record, each stored once however often it is sent.

The rules, the same for both ways in (in Python for a batch, and for a file where the
database is not PostgreSQL; in SQL for a file on PostgreSQL; the tests hold the two to the
same answers):
- ``source_id``: the source's own id, 1–64 characters, no control characters. A record whose
  id is stored already, or came earlier in the same batch or file, is a duplicate: counted,
  not stored again, not an error (the first one sent is the one kept).
- ``subscription`` (Touchpoint's id) or ``identifier`` (the MSISDN or line id), one of the two.
  An identifier names the subscription with that identifier whose start and end dates hold
  the record's day (``occurred_at`` in Europe/Stockholm); none, or more than one, and the
  record is rejected.
- ``kind``: data, voice or sms. ``quantity``: in the kind's unit (MB, seconds, messages),
  at least 0, at most 3 decimals (trailing zeros aside), a string or a JSON number read as
  Decimal, never a float. ``occurred_at``: ISO 8601 with a time zone. ``country``: empty at
  home, else an ISO 3166 alpha-2 code (either case; stored in capitals).

A rejected record is reported with its position (index in a batch from 0; line in a file, the
header being line 1), its source id and the first rule it breaks (a stable code, the field,
a message); the other records are stored, or, with ``all_or_nothing``, nothing is.

Storing is race-free. On PostgreSQL checked records go into a temporary staging table (by
COPY) and are merged by one ``INSERT … SELECT … ON CONFLICT (source_id) DO NOTHING`` in
source-id order, so two requests with overlapping ids at once wait for each other instead of
deadlocking, and each id is stored once. A CSV file is COPYed into staging as it is and
checked and resolved in SQL, so a month of a large operator loads near COPY's speed.
Elsewhere (SQLite) ``bulk_create(ignore_conflicts=True)``, counted before and after.
"""

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from itertools import islice
from typing import IO, Any
from zoneinfo import ZoneInfo

from django.db import DataError, connection, transaction
from django.db.models import F

from billing.models import Subscription, UsageKind, UsageRecord
from billing.roaming import COUNTRY_CODES
from core.errors import DomainError
from core.lookups import AnyOf

BATCH_LIMIT = 10_000  # records in one JSON request
LISTED_REJECTIONS = 10_000  # rejections named in one answer (``rejected`` counts them all)
CSV_COLUMNS = (
    "source_id", "subscription", "identifier", "kind", "quantity", "occurred_at", "country",
)  # fmt: skip
_REQUIRED_COLUMNS = ("source_id", "kind", "quantity", "occurred_at")
_FIELDS = frozenset(CSV_COLUMNS)
_CHUNK = 10_000  # records checked and staged at a time: memory stays bounded
_COPY_BLOCK = 1 << 20  # bytes of a file sent to COPY at a time
_HEADER_MAX = 1 << 16  # bytes a header line may have
_MERGE_MEMORY = "64MB"  # PostgreSQL's work_mem for checking and merging a file
_SOURCE_ID_MAX = 64  # UsageRecord.source_id
_IDENTIFIER_MAX = 40  # Subscription.identifier
STOCKHOLM = ZoneInfo("Europe/Stockholm")

# Patterns that Python's ``re`` and PostgreSQL's regular expressions read alike: [0-9], never
# \d (both may take \d for any Unicode digit). Python matches them whole; SQL anchors them.
_CONTROL = r"[\x00-\x1f\x7f]"
_SUBSCRIPTION_ID = r"[0-9]{1,18}"
_QUANTITY = r"0*[0-9]{1,11}(?:\.[0-9]{1,3}0*)?"
_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"
_DECIMALS = r"[0-9]+(?:\.[0-9]{1,3}0*)?"
_LOCAL_TIME = (
    r"[12][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
)
_OCCURRED_AT = _LOCAL_TIME + r"(?:Z|[+-](?:0[0-9]|1[0-4])(?::?[0-5][0-9])?)"

_control = re.compile(_CONTROL).search
_subscription_id = re.compile(_SUBSCRIPTION_ID).fullmatch
_quantity = re.compile(_QUANTITY).fullmatch
_number = re.compile(_NUMBER).fullmatch
_decimals = re.compile(_DECIMALS).fullmatch
_local_time = re.compile(_LOCAL_TIME).fullmatch
_occurred_at = re.compile(_OCCURRED_AT).fullmatch

_KINDS = frozenset(UsageKind.values)
# Every spelling of a country code that is taken (se, Se, sE, SE), and what is stored.
_COUNTRIES = {
    spelling: code
    for code in COUNTRY_CODES
    for spelling in {code, code.lower(), code[0] + code[1].lower(), code[0].lower() + code[1]}
}

# Why a record is rejected: code → (field, message). Messages may name the record's
# subscription, identifier and day, the unknown fields' names, or the fields on a line.
_REASONS: dict[str, tuple[str, str]] = {
    "record_not_an_object": ("record", "A record is a JSON object."),
    "record_unknown_field": (
        "record",
        "Unknown field {names}: a record has source_id, subscription or identifier, kind, "
        "quantity, occurred_at and country.",
    ),
    "record_field_count": ("record", "This line has {found} fields; the header has {expected}."),
    "source_id_required": ("source_id", "source_id is required."),
    "source_id_invalid": ("source_id", "source_id is text of 1–64 characters."),
    "source_id_too_long": ("source_id", "source_id has at most 64 characters."),
    "source_id_control_character": (
        "source_id",
        "source_id may not contain control characters (tab, line break…).",
    ),
    "subscription_required": (
        "subscription",
        "Name the subscription: subscription (Touchpoint's id) or identifier (its MSISDN or "
        "line id).",
    ),
    "subscription_and_identifier": ("subscription", "Send subscription or identifier, not both."),
    "subscription_invalid": (
        "subscription",
        "subscription is Touchpoint's subscription id, a whole number.",
    ),
    "subscription_unknown": ("subscription", "No subscription has id {subscription}."),
    "identifier_invalid": ("identifier", "identifier is text of 1–40 characters."),
    "identifier_too_long": ("identifier", "identifier has at most 40 characters."),
    "identifier_control_character": (
        "identifier",
        "identifier may not contain control characters (tab, line break…).",
    ),
    "identifier_unknown": ("identifier", "No subscription has identifier {identifier} on {day}."),
    "identifier_ambiguous": (
        "identifier",
        "More than one subscription has identifier {identifier} on {day}: send subscription "
        "(Touchpoint's id) instead.",
    ),
    "kind_required": ("kind", "kind is required: data, voice or sms."),
    "kind_invalid": ("kind", "kind is data, voice or sms."),
    "quantity_required": ("quantity", "quantity is required."),
    "quantity_invalid": (
        "quantity",
        "quantity is a decimal number such as 12.5 (a string, or a JSON number).",
    ),
    "quantity_negative": ("quantity", "quantity may not be negative."),
    "quantity_too_many_decimals": ("quantity", "quantity has at most 3 decimals."),
    "quantity_too_large": ("quantity", "quantity has at most 11 digits before the decimal point."),
    "occurred_at_required": ("occurred_at", "occurred_at is required."),
    "occurred_at_invalid": (
        "occurred_at",
        "occurred_at is an ISO 8601 date and time with a time zone, such as "
        "2026-11-03T14:05:00+01:00.",
    ),
    "occurred_at_naive": (
        "occurred_at",
        "occurred_at needs a time zone: Z or an offset such as +01:00.",
    ),
    "country_invalid": (
        "country",
        "country is empty (at home) or an ISO 3166 alpha-2 code such as DE.",
    ),
}


@dataclass(frozen=True)
class UsageRejection:
    position: int  # index in the batch (from 0), or line in the file (the header is line 1)
    source_id: str | None  # as sent (cut at 64 characters), None when missing
    code: str
    field: str
    message: str


@dataclass(frozen=True)
class UsageIngested:
    """What one batch or file did. ``received`` = stored + duplicates + rejected, except when
    ``refused`` (``all_or_nothing`` and something was rejected): then nothing is stored and
    stored and duplicates are 0."""

    position: str  # what ``UsageRejection.position`` is: "index" (a batch) or "line" (a file)
    received: int
    stored: int
    duplicates: int
    rejected: int
    rejections: list[UsageRejection]  # the first LISTED_REJECTIONS, in order
    refused: bool


class _WrongFieldCount:
    """A CSV line whose number of fields is not the header's (and its source id, if the
    line reaches that column)."""

    def __init__(self, found: int, expected: int, source_id: str | None) -> None:
        self.found, self.expected, self.source_id = found, expected, source_id


# A checked record ready to store: position, source_id, subscription id, kind, quantity (text),
# occurred_at (text), country, then occurred_at parsed. The first seven are the staging
# table's columns.
_Row = tuple[int, str, int, str, str, str, str, datetime]
# Checked but not resolved: source_id, subscription id or None, identifier or None, kind,
# quantity, occurred_at (text), occurred_at parsed, country.
_Checked = tuple[str, int | None, str | None, str, str, str, datetime, str]


def usage_records_ingest(*, records: Iterable[Any], all_or_nothing: bool = False) -> UsageIngested:
    """Check and store a batch of usage records (dicts as decoded from JSON, fractions as
    Decimal); rejections name each record's index. The caller bounds the batch
    (``BATCH_LIMIT`` for the API); any length works, checked ``_CHUNK`` at a time."""
    return _ingest(enumerate(records), all_or_nothing=all_or_nothing, position="index")


def usage_csv_ingest(*, stream: IO[bytes], all_or_nothing: bool = False) -> UsageIngested:
    """Check and store a CSV file of usage records (UTF-8, comma-separated, a header naming
    the columns of ``CSV_COLUMNS`` in any order; see the module for the rules): read as a
    stream, never whole into memory. Rejections name each record's line.

    On PostgreSQL the file goes by COPY into a staging table and is checked there; a file
    COPY cannot read as one record a line (a line with more or fewer fields than the header,
    a blank line, a quoted line break) is read again the other way, with the same answers,
    so ``stream`` must be seekable there.

    Raises ``DomainError(code="usage_file_invalid")``, nothing stored, for a file that is not
    CSV with a usable header, or not UTF-8."""
    columns = _csv_header(stream)
    if connection.vendor == "postgresql":
        ingested = _csv_ingest_by_copy(stream, columns, all_or_nothing)
        if ingested is not None:
            return ingested
        stream.seek(0)
        _csv_header(stream)
    return _ingest(_csv_records(stream, columns), all_or_nothing=all_or_nothing, position="line")


def _ingest(
    records: Iterable[tuple[int, Any]], *, all_or_nothing: bool, position: str
) -> UsageIngested:
    received, rejected = 0, 0
    listed: list[UsageRejection] = []
    with transaction.atomic():
        store = _PostgresStore() if connection.vendor == "postgresql" else _ModelStore()
        records = iter(records)
        while chunk := list(islice(records, _CHUNK)):
            rows, rejections = _check_chunk(chunk)
            received += len(chunk)
            rejected += len(rejections)
            listed.extend(rejections[: LISTED_REJECTIONS - len(listed)])
            if not (all_or_nothing and rejected):  # else only checked, to name what is wrong
                store.add(rows)
        refused = all_or_nothing and rejected > 0
        staged, stored = store.finish(merge=not refused)
    return UsageIngested(
        position=position,
        received=received,
        stored=stored,
        duplicates=staged - stored,
        rejected=rejected,
        rejections=listed,
        refused=refused,
    )


def _check(record: Any) -> str | _Checked:
    """The first rule ``record`` breaks (its code), or its values ready to resolve. Plain
    Python, in the order of the fields, so that a batch of 10,000 checks in milliseconds."""
    if type(record) is not dict:
        return "record_not_an_object"
    if not record.keys() <= _FIELDS:
        return "record_unknown_field"
    get = record.get
    source_id = get("source_id")
    if source_id is None or source_id == "":
        return "source_id_required"
    if type(source_id) is not str:
        return "source_id_invalid"
    if len(source_id) > _SOURCE_ID_MAX:
        return "source_id_too_long"
    if _control(source_id):
        return "source_id_control_character"
    subscription = get("subscription")
    identifier = get("identifier")
    if subscription is None or subscription == "":
        if identifier is None or identifier == "":
            return "subscription_required"
        subscription = None
        if type(identifier) is not str:
            return "identifier_invalid"
        if len(identifier) > _IDENTIFIER_MAX:
            return "identifier_too_long"
        if _control(identifier):
            return "identifier_control_character"
    elif identifier is not None and identifier != "":
        return "subscription_and_identifier"
    elif type(subscription) is int:  # (not a bool)
        if not 0 <= subscription < 10**18:
            return "subscription_invalid"
        identifier = None
    elif type(subscription) is str and _subscription_id(subscription):
        subscription, identifier = int(subscription), None
    else:
        return "subscription_invalid"
    kind = get("kind")
    if kind is None or kind == "":
        return "kind_required"
    if type(kind) is not str or kind not in _KINDS:
        return "kind_invalid"
    quantity = get("quantity")
    if quantity is None or quantity == "":
        return "quantity_required"
    if type(quantity) is int:
        quantity = str(quantity)
    elif type(quantity) is Decimal:
        quantity = format(quantity, "f")
    elif type(quantity) is not str:
        return "quantity_invalid"
    if not _quantity(quantity):
        return _quantity_problem(quantity)
    occurred_at = get("occurred_at")
    if occurred_at is None or occurred_at == "":
        return "occurred_at_required"
    if type(occurred_at) is not str:
        return "occurred_at_invalid"
    if not _occurred_at(occurred_at):
        return "occurred_at_naive" if _local_time(occurred_at) else "occurred_at_invalid"
    try:
        at = datetime.fromisoformat(occurred_at)
    except ValueError:  # a day the month does not have
        return "occurred_at_invalid"
    country = get("country")
    if country is None or country == "":
        country = ""
    elif type(country) is not str or country not in _COUNTRIES:
        return "country_invalid"
    else:
        country = _COUNTRIES[country]
    return (source_id, subscription, identifier, kind, quantity, occurred_at, at, country)


def _quantity_problem(quantity: str) -> str:
    if not _number(quantity):
        return "quantity_invalid"
    if quantity.startswith("-"):
        return "quantity_negative"
    if not _decimals(quantity):
        return "quantity_too_many_decimals"
    return "quantity_too_large"


def _check_chunk(chunk: list[tuple[int, Any]]) -> tuple[list[_Row], list[UsageRejection]]:
    """Check each record, then resolve the subscriptions they name (two queries for the
    chunk); the rows to store and the rejections, both in order."""
    checked: list[tuple[int, _Checked]] = []
    rejections: list[UsageRejection] = []
    for position, record in chunk:
        if type(record) is _WrongFieldCount:
            rejections.append(
                _rejection(
                    position,
                    record.source_id,
                    "record_field_count",
                    found=record.found,
                    expected=record.expected,
                )
            )
            continue
        result = _check(record)
        if type(result) is str:
            names = ""
            if result == "record_unknown_field":
                names = ", ".join(sorted(map(str, record.keys() - _FIELDS)))
            source_id = record.get("source_id") if type(record) is dict else None
            rejections.append(_rejection(position, source_id, result, names=names))
        else:
            checked.append((position, result))  # type: ignore[arg-type]
    rows: list[_Row] = []
    known = _subscriptions_known({c[1] for _, c in checked if c[1] is not None})
    spans = _subscriptions_by_identifier({c[2] for _, c in checked if c[2] is not None})
    named: dict[tuple[str, date], int | str] = {}  # (identifier, day): the id, or why not
    listed = len(rejections)
    for position, (source_id, id_, identifier, kind, quantity, text, at, country) in checked:
        if identifier is not None:
            day = at.astimezone(STOCKHOLM).date()
            found = named.get((identifier, day))
            if found is None:
                found = named[identifier, day] = _subscription_on(spans.get(identifier, ()), day)
            if type(found) is str:
                rejections.append(
                    _rejection(position, source_id, found, identifier=identifier, day=day)
                )
                continue
            id_ = found  # type: ignore[assignment]
        elif id_ not in known:
            code = "subscription_unknown"
            rejections.append(_rejection(position, source_id, code, subscription=id_))
            continue
        rows.append((position, source_id, id_, kind, quantity, text, country, at))  # type: ignore[arg-type]
    if len(rejections) > listed:  # resolving rejected some: in order of position again
        rejections.sort(key=lambda rejection: rejection.position)
    return rows, rejections


def _subscription_on(spans: Iterable[tuple[int, date, date | None]], day: date) -> int | str:
    """The id of the one subscription among ``spans`` that holds ``day``, or the code of why
    there is none."""
    found = [id_ for id_, start, end in spans if start <= day and (end is None or end >= day)]
    if len(found) == 1:
        return found[0]
    return "identifier_ambiguous" if found else "identifier_unknown"


def _subscriptions_known(ids: set[int]) -> set[int]:
    known: set[int] = set()
    for part in _slices(sorted(ids)):
        known.update(Subscription.objects.filter(AnyOf(F("id"), part)).values_list("id", flat=True))
    return known


def _subscriptions_by_identifier(
    identifiers: set[str],
) -> dict[str, list[tuple[int, date, date | None]]]:
    """Every subscription that ever had one of ``identifiers``, with its dates."""
    spans: dict[str, list[tuple[int, date, date | None]]] = {}
    for part in _slices(sorted(identifiers)):
        for identifier, id_, start, end in Subscription.objects.filter(
            AnyOf(F("identifier"), part)
        ).values_list("identifier", "id", "start_date", "end_date"):
            spans.setdefault(identifier, []).append((id_, start, end))
    return spans


def _slices(values: list[Any]) -> Iterator[list[Any]]:
    """``values`` in parts small enough for the database's limit on query parameters."""
    size = connection.features.max_query_params or len(values) or 1
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _rejection(position: int, source_id: Any, code: str, **params: Any) -> UsageRejection:
    field, message = _REASONS[code]
    if source_id == "":
        source_id = None
    elif source_id is not None:
        source_id = str(source_id)
        if len(source_id) > _SOURCE_ID_MAX:
            source_id = source_id[:_SOURCE_ID_MAX] + "…"
    return UsageRejection(
        position=position,
        source_id=source_id,
        code=code,
        field=field,
        message=message.format(**params) if params else message,
    )


# --- Storing -------------------------------------------------------------------------------

_USAGE_TABLE = UsageRecord._meta.db_table


# New records into the usage table in source-id order: one statement, so two merges with
# overlapping ids wait for each other instead of deadlocking, and the first of an id repeated
# in the batch or file is the one kept. ``{rows}`` names the checked rows.
_INSERT_NEW = """
INSERT INTO billing_usagerecord (source_id, subscription_id, kind, quantity, occurred_at, country)
SELECT source_id, subscription_id, kind, quantity::numeric, occurred_at, country
FROM {rows}
ORDER BY source_id COLLATE "C", line
ON CONFLICT (source_id) DO NOTHING
"""


class _PostgresStore:
    """Checked rows COPYed into a temporary staging table; merged once, at the end, in one
    statement (one statement, so in one source-id order)."""

    def __init__(self) -> None:
        self.staged = 0
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE usage_staged (line bigint, source_id text, "
                "subscription_id bigint, kind text, quantity numeric, occurred_at timestamptz, "
                "country text) ON COMMIT DROP"
            )

    def add(self, rows: list[_Row]) -> None:
        if not rows:
            return
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy("COPY usage_staged FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row[:7])
        self.staged += len(rows)

    def finish(self, *, merge: bool) -> tuple[int, int]:
        with connection.cursor() as cursor:
            stored = 0
            if merge:
                cursor.execute(_INSERT_NEW.format(rows="usage_staged"))
                stored = cursor.rowcount
            cursor.execute("DROP TABLE usage_staged")
        return (self.staged, stored) if merge else (0, 0)


class _ModelStore:
    """``bulk_create(ignore_conflicts=True)`` chunk by chunk, the stored ones counted by
    their ids before and after; not merging rolls the caller's transaction back."""

    def __init__(self) -> None:
        self.staged = self.stored = 0

    def add(self, rows: list[_Row]) -> None:
        ids = sorted({row[1] for row in rows})
        before = self._count(ids)
        UsageRecord.objects.bulk_create(
            [
                UsageRecord(
                    source_id=source_id,
                    subscription_id=subscription,
                    kind=kind,
                    quantity=Decimal(quantity),
                    occurred_at=at,
                    country=country,
                )
                for _, source_id, subscription, kind, quantity, _, country, at in rows
            ],
            ignore_conflicts=True,
            batch_size=500,
        )
        self.stored += self._count(ids) - before
        self.staged += len(rows)

    @staticmethod
    def _count(ids: list[str]) -> int:
        return sum(UsageRecord.objects.filter(source_id__in=part).count() for part in _slices(ids))

    def finish(self, *, merge: bool) -> tuple[int, int]:
        if not merge:
            transaction.set_rollback(True)
            return 0, 0
        return self.staged, self.stored


# --- CSV -----------------------------------------------------------------------------------


def _file_invalid(message: str) -> DomainError:
    return DomainError(code="usage_file_invalid", message=message)


def _csv_header(stream: IO[bytes]) -> list[str]:
    """Read line 1 and return its column names, checked."""
    raw = stream.readline(_HEADER_MAX)
    if len(raw) == _HEADER_MAX and not raw.endswith(b"\n"):
        raise _file_invalid("Line 1 is too long for a header.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _file_invalid("Line 1 is not UTF-8.") from None
    if not text.strip():
        raise _file_invalid(
            "The file is empty: line 1 names the columns, e.g. "
            "source_id,identifier,kind,quantity,occurred_at,country."
        )
    try:
        columns = [name.strip() for name in next(csv.reader([text], strict=True))]
    except csv.Error as error:
        raise _file_invalid(f"Line 1 is not CSV: {error}.") from None
    allowed = ", ".join(CSV_COLUMNS)
    for name in columns:
        if name not in _FIELDS:
            raise _file_invalid(f"Unknown column {name!r} on line 1; the columns are {allowed}.")
        if columns.count(name) > 1:
            raise _file_invalid(f"Column {name!r} comes twice on line 1.")
    missing = [name for name in _REQUIRED_COLUMNS if name not in columns]
    if "subscription" not in columns and "identifier" not in columns:
        missing.append("subscription or identifier")
    if missing:
        raise _file_invalid(f"Line 1 lacks the column(s) {', '.join(missing)}.")
    return columns


def _csv_records(stream: IO[bytes], columns: list[str]) -> Iterator[tuple[int, Any]]:
    """The records after the header as (line, record); blank lines skipped."""
    line = 1

    def lines() -> Iterator[str]:
        nonlocal line
        for raw in stream:
            line += 1
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                raise _file_invalid(f"Line {line} is not UTF-8.") from None

    width = len(columns)
    at = columns.index("source_id")
    reader = csv.reader(lines(), strict=True)
    try:
        for fields in reader:
            if not fields:
                continue
            if len(fields) != width:
                source_id = fields[at] if at < len(fields) else None
                yield line, _WrongFieldCount(len(fields), width, source_id)
            else:
                yield line, dict(zip(columns, fields, strict=True))
    except csv.Error as error:
        raise _file_invalid(f"Line {line} is not CSV: {error}.") from None


def _csv_ingest_by_copy(
    stream: IO[bytes], columns: list[str], all_or_nothing: bool
) -> UsageIngested | None:
    """The file after its header by COPY into a staging table, then checked, resolved and
    merged in SQL, in one statement that also keeps the rejected lines. None when COPY could
    not take the file as one record a line (then nothing is done)."""
    import psycopg

    with transaction.atomic(), connection.cursor() as cursor:
        try:
            with transaction.atomic():
                cursor.execute(
                    "CREATE TEMP TABLE usage_upload (line bigint GENERATED ALWAYS AS IDENTITY "
                    "(START WITH 2), "
                    + ", ".join(f"{name} text" for name in CSV_COLUMNS)
                    + ") ON COMMIT DROP"
                )
                newlines, last = 0, b"\n"
                with cursor.cursor.copy(
                    f"COPY usage_upload ({', '.join(columns)}) FROM STDIN "
                    "(FORMAT csv, ENCODING 'UTF8')"
                ) as copy:
                    while block := stream.read(_COPY_BLOCK):
                        copy.write(block)
                        newlines += block.count(b"\n")
                        last = block[-1:]
                received = cursor.cursor.rowcount
        except psycopg.DataError:  # a line of other width, a blank line, not UTF-8…
            return None
        if received != newlines + (last != b"\n"):  # a quoted line break, or COPY's "\."
            cursor.execute("DROP TABLE usage_upload")
            return None
        # The planner counts the per-line subqueries as if every line ran them and would
        # compile the statement (JIT) for longer than it runs; the merge sorts in memory.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(f"SET LOCAL work_mem = '{_MERGE_MEMORY}'")
        cursor.execute(
            "CREATE TEMP TABLE usage_rejected (line bigint, source_id text, code text, "
            "subscription text, identifier text, day date) ON COMMIT DROP"
        )
        with transaction.atomic():  # undone when all or nothing and a line was rejected
            try:
                with transaction.atomic():
                    cursor.execute(_MERGE_UPLOAD_SQL, _check_sql_params(quick=True))
            except DataError:  # a date the quick test let through is out of range
                cursor.execute(_MERGE_UPLOAD_SQL, _check_sql_params(quick=False))
            stored = cursor.rowcount
            cursor.execute("SELECT count(*) FROM usage_rejected")
            (rejected,) = cursor.fetchone()
            cursor.execute(
                "SELECT line, source_id, code, subscription, identifier, day "
                "FROM usage_rejected ORDER BY line LIMIT %s",
                [LISTED_REJECTIONS],
            )
            listed = [
                _rejection(line, source_id, code, subscription=sub, identifier=ident, day=day)
                for line, source_id, code, sub, ident, day in cursor.fetchall()
            ]
            refused = all_or_nothing and rejected > 0
            if refused:
                transaction.set_rollback(True)
        cursor.execute("DROP TABLE usage_upload, usage_rejected")
    return UsageIngested(
        position="line",
        received=received,
        stored=0 if refused else stored,
        duplicates=0 if refused else received - rejected - stored,
        rejected=rejected,
        rejections=listed,
        refused=refused,
    )


def _check_sql_params(*, quick: bool) -> dict[str, Any]:
    return {
        "quick": quick,
        "control": _CONTROL,
        "source_id_max": _SOURCE_ID_MAX,
        "identifier_max": _IDENTIFIER_MAX,
        "subscription_id": f"^{_SUBSCRIPTION_ID}$",
        "quantity": f"^{_QUANTITY}$",
        "number": f"^{_NUMBER}$",
        "decimals": f"^{_DECIMALS}$",
        "local_time": f"^{_LOCAL_TIME}$",
        "occurred_at": f"^{_OCCURRED_AT}$",
        "countries": sorted(_COUNTRIES),
        "kinds": sorted(_KINDS),
    }


# ``_check`` and ``_check_chunk`` in SQL, rule for rule, over the staged file, and the merge:
# each line's first broken rule (``code``, NULL when none) and its values typed; the rejected
# lines kept in ``usage_rejected``, the others merged.
#
# A line first meets a quick test that passes only lines keeping every rule: the common shape
# of occurred_at (2026-11-03T14:05:00+01:00, or Z) by LIKE and one regular expression with
# few states, where the exact expression costs PostgreSQL several times more a line. The test
# leaves the month, day, hour and offset to the cast of occurred_at, which raises on a value
# out of range: then the statement runs again without the quick test (``quick``). It refuses
# what the cast would take and the rules do not (hour 24, second 60, offset 15 h). A line the
# quick test does not pass goes through the rules one by one, in ``_check``'s order, to find
# the first it breaks, or none (the test leaves out rare valid forms, like leading zeros).
#
# A subscription named by identifier is looked up among the subscriptions with that
# identifier (one hash join; a number used by more than one subscription over time is
# resolved per line by its day). Subqueries with OFFSET 0 are computed once per line.
_CHECKED_SQL = r"""
SELECT t.line, t.source_id, t.sub AS subscription, t.ident AS identifier, t.kind,
       t.quantity, t.ts AS occurred_at, t.day,
       upper(coalesce(t.country, '')) AS country,
       CASE
         WHEN t.code IS NOT NULL THEN t.code
         WHEN t.sub_id IS NOT NULL THEN
           CASE WHEN known.id IS NULL THEN 'subscription_unknown' END
         WHEN one.n IS NULL THEN 'identifier_unknown'
         WHEN one.n = 1 THEN
           CASE WHEN one.start_date <= t.day AND (one.end_date IS NULL OR one.end_date >= t.day)
                THEN NULL ELSE 'identifier_unknown' END
         ELSE
           (SELECT CASE count(*) WHEN 0 THEN 'identifier_unknown' WHEN 1 THEN NULL
                   ELSE 'identifier_ambiguous' END
            FROM billing_subscription b
            WHERE b.identifier = t.ident AND b.start_date <= t.day
              AND (b.end_date IS NULL OR b.end_date >= t.day))
       END AS code,
       CASE
         WHEN t.code IS NOT NULL THEN NULL
         WHEN t.sub_id IS NOT NULL THEN known.id
         WHEN one.n = 1 THEN one.id
         ELSE (SELECT min(b.id) FROM billing_subscription b
               WHERE b.identifier = t.ident AND b.start_date <= t.day
                 AND (b.end_date IS NULL OR b.end_date >= t.day))
       END AS subscription_id
FROM (
  SELECT g.*,
         CASE WHEN g.ident IS NOT NULL
              THEN (g.ts AT TIME ZONE 'Europe/Stockholm')::date END AS day
  FROM (
    SELECT f.*,
           CASE WHEN f.code IS NULL AND f.sub IS NOT NULL THEN f.sub::bigint END AS sub_id,
           CASE WHEN f.code IS NULL THEN f.occurred_at::timestamptz END AS ts
    FROM (
      SELECT u.*,
        CASE
          WHEN %(quick)s
           AND length(u.source_id) <= %(source_id_max)s AND u.source_id !~ %(control)s
           AND CASE WHEN u.sub IS NULL
                    THEN length(u.ident) <= %(identifier_max)s AND u.ident !~ %(control)s
                    ELSE u.ident IS NULL AND u.sub ~ '^[0-9]+$' AND length(u.sub) <= 18 END
           AND u.kind = ANY(%(kinds)s)
           AND u.quantity ~ '^[0-9]+(?:\.[0-9]+)?$'
           AND CASE strpos(u.quantity, '.') WHEN 0 THEN length(u.quantity) <= 11
                    ELSE strpos(u.quantity, '.') <= 12
                         AND length(u.quantity) - strpos(u.quantity, '.') <= 3 END
           AND (u.occurred_at LIKE '____-__-__T__:__:__+__:__'
                OR u.occurred_at LIKE '____-__-__T__:__:__-__:__'
                OR u.occurred_at LIKE '____-__-__T__:__:__Z')
           AND u.occurred_at ~ '^[0-9]+-[0-9]+-[0-9]+T[0-9]+:[0-9]+:[0-9]+(?:Z|[-+][0-9]+:[0-9]+)$'
           AND (u.occurred_at LIKE '1%%' OR u.occurred_at LIKE '2%%')
           AND u.occurred_at NOT LIKE '___________24%%'
           AND u.occurred_at NOT LIKE '_________________60%%'
           AND u.occurred_at NOT LIKE '____________________15%%'
           AND (u.country IS NULL OR u.country = ANY(%(countries)s))
          THEN NULL
          WHEN u.source_id IS NULL THEN 'source_id_required'
          WHEN length(u.source_id) > %(source_id_max)s THEN 'source_id_too_long'
          WHEN u.source_id ~ %(control)s THEN 'source_id_control_character'
          WHEN u.sub IS NOT NULL AND u.ident IS NOT NULL THEN 'subscription_and_identifier'
          WHEN u.sub IS NULL AND u.ident IS NULL THEN 'subscription_required'
          WHEN u.sub !~ %(subscription_id)s THEN 'subscription_invalid'
          WHEN length(u.ident) > %(identifier_max)s THEN 'identifier_too_long'
          WHEN u.ident ~ %(control)s THEN 'identifier_control_character'
          WHEN u.kind IS NULL THEN 'kind_required'
          WHEN NOT u.kind = ANY(%(kinds)s) THEN 'kind_invalid'
          WHEN u.quantity IS NULL THEN 'quantity_required'
          WHEN u.quantity !~ %(quantity)s THEN
            CASE
              WHEN u.quantity !~ %(number)s THEN 'quantity_invalid'
              WHEN left(u.quantity, 1) = '-' THEN 'quantity_negative'
              WHEN u.quantity !~ %(decimals)s THEN 'quantity_too_many_decimals'
              ELSE 'quantity_too_large'
            END
          WHEN u.occurred_at IS NULL THEN 'occurred_at_required'
          WHEN u.occurred_at !~ %(occurred_at)s THEN
            CASE WHEN u.occurred_at ~ %(local_time)s THEN 'occurred_at_naive'
                 ELSE 'occurred_at_invalid' END
          WHEN substr(u.occurred_at, 9, 2) > '28'
               AND substr(u.occurred_at, 9, 2)::int > extract(day FROM
                 make_date(substr(u.occurred_at, 1, 4)::int,
                           substr(u.occurred_at, 6, 2)::int, 1)
                 + interval '1 month - 1 day') THEN 'occurred_at_invalid'
          WHEN u.country IS NOT NULL AND NOT u.country = ANY(%(countries)s)
            THEN 'country_invalid'
        END AS code
      FROM (
        SELECT line, nullif(source_id, '') AS source_id, nullif(subscription, '') AS sub,
               nullif(identifier, '') AS ident, nullif(kind, '') AS kind,
               nullif(quantity, '') AS quantity, nullif(occurred_at, '') AS occurred_at,
               nullif(country, '') AS country
        FROM usage_upload
      ) u
      OFFSET 0
    ) f
    OFFSET 0
  ) g
  OFFSET 0
) t
LEFT JOIN billing_subscription known ON known.id = t.sub_id
LEFT JOIN (
  SELECT identifier, count(*) AS n, min(id) AS id, min(start_date) AS start_date,
         min(end_date) AS end_date
  FROM billing_subscription GROUP BY identifier
) one ON one.identifier = t.ident AND t.code IS NULL
"""
_MERGE_UPLOAD_SQL = (
    f"WITH checked AS ({_CHECKED_SQL}), rejected AS ("  # noqa: S608 - this module's constants
    "INSERT INTO usage_rejected SELECT line, source_id, code, subscription, identifier, day "
    "FROM checked WHERE code IS NOT NULL)" + _INSERT_NEW.format(rows="checked WHERE code IS NULL")
)
