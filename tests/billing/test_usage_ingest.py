"""Usage ingestion (``billing.usage_ingest``): the rules each record is checked by, the same for
a JSON batch and a CSV file (on PostgreSQL a file is checked in SQL, so every rule runs
through both ways in), duplicates, subscriptions named by identifier, all or nothing, files
COPY cannot take, and two overlapping batches at once."""

import csv
import io
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, connections, transaction

from billing import usage_ingest
from billing.models import Subscription, UsageRecord
from billing.usage_ingest import UsageIngested, usage_csv_ingest, usage_records_ingest
from core.errors import DomainError
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

COLUMNS = ["source_id", "subscription", "identifier", "kind", "quantity", "occurred_at", "country"]


@pytest.fixture
def subscription() -> Subscription:
    return SubscriptionFactory(identifier="46701234567", start_date=date(2025, 1, 1))


def record(**values: Any) -> dict[str, Any]:
    """A valid record of 12.5 MB of data at home on the ``subscription`` fixture's number;
    ``values`` override, None leaves a field out."""
    given: dict[str, Any] = {
        "source_id": "med-1",
        "identifier": "46701234567",
        "kind": "data",
        "quantity": "12.5",
        "occurred_at": "2026-11-03T14:05:00+01:00",
        "country": "",
    }
    given.update(values)
    return {name: value for name, value in given.items() if value is not None}


def csv_file(records: list[dict[str, Any]], columns: list[str] = COLUMNS) -> io.BytesIO:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in records:
        writer.writerow(["" if row.get(name) is None else row[name] for name in columns])
    return io.BytesIO(text.getvalue().encode())


def by_batch(records: list[dict[str, Any]], **options: Any) -> UsageIngested:
    return usage_records_ingest(records=records, **options)


def by_file(records: list[dict[str, Any]], **options: Any) -> UsageIngested:
    return usage_csv_ingest(stream=csv_file(records), **options)


# A batch, and a file (checked in SQL on PostgreSQL): every rule must answer the same in both.
WAYS_IN = [pytest.param(by_batch, id="batch"), pytest.param(by_file, id="file")]
Ingest = Callable[..., UsageIngested]


def position(ingest: Ingest, index: int) -> int:
    """Where the record at ``index`` is said to be: its index in a batch, its line in a file."""
    return index if ingest is by_batch else index + 2


@pytest.mark.parametrize("ingest", WAYS_IN)
def test_good_records_are_stored_with_their_values(ingest: Ingest, subscription) -> None:
    other = SubscriptionFactory()
    result = ingest(
        [
            record(source_id="a", quantity="512.250", country="de"),
            record(
                source_id="b",
                identifier=None,
                subscription=str(other.id),
                kind="voice",
                quantity="61",
                occurred_at="2026-11-03T13:05Z",
            ),
        ]
    )
    assert (result.received, result.stored, result.duplicates, result.rejected) == (2, 2, 0, 0)
    assert result.rejections == []
    a, b = UsageRecord.objects.order_by("source_id")
    assert (a.subscription_id, a.kind, a.quantity, a.country) == (
        subscription.id,
        "data",
        Decimal("512.250"),
        "DE",
    )
    assert a.occurred_at == datetime(2026, 11, 3, 13, 5, tzinfo=UTC)
    assert (b.subscription_id, b.kind, b.quantity, b.country) == (other.id, "voice", 61, "")
    assert b.occurred_at == datetime(2026, 11, 3, 13, 5, tzinfo=UTC)


REJECTED = [
    # (what the record has, the code, the field)
    ({"source_id": ""}, "source_id_required", "source_id"),
    ({"source_id": "x" * 65}, "source_id_too_long", "source_id"),
    ({"source_id": "med\t1"}, "source_id_control_character", "source_id"),
    ({"subscription": "1"}, "subscription_and_identifier", "subscription"),
    ({"identifier": ""}, "subscription_required", "subscription"),
    ({"identifier": "", "subscription": "12a"}, "subscription_invalid", "subscription"),
    ({"identifier": "", "subscription": "-3"}, "subscription_invalid", "subscription"),
    ({"identifier": "4" * 41}, "identifier_too_long", "identifier"),
    ({"identifier": "4670\x011"}, "identifier_control_character", "identifier"),
    ({"kind": ""}, "kind_required", "kind"),
    ({"kind": "Data"}, "kind_invalid", "kind"),
    ({"kind": "mms"}, "kind_invalid", "kind"),
    ({"quantity": ""}, "quantity_required", "quantity"),
    ({"quantity": "twelve"}, "quantity_invalid", "quantity"),
    ({"quantity": "1e3"}, "quantity_invalid", "quantity"),
    ({"quantity": "12,5"}, "quantity_invalid", "quantity"),
    ({"quantity": " 12.5"}, "quantity_invalid", "quantity"),
    ({"quantity": "12."}, "quantity_invalid", "quantity"),
    ({"quantity": "١٢"}, "quantity_invalid", "quantity"),  # digits, but not 0-9
    ({"quantity": "-0.5"}, "quantity_negative", "quantity"),
    ({"quantity": "1.2345"}, "quantity_too_many_decimals", "quantity"),
    ({"quantity": "-1.2345"}, "quantity_negative", "quantity"),
    ({"quantity": "123456789012"}, "quantity_too_large", "quantity"),
    ({"occurred_at": ""}, "occurred_at_required", "occurred_at"),
    ({"occurred_at": "2026-11-03T14:05:00"}, "occurred_at_naive", "occurred_at"),
    ({"occurred_at": "2026-11-03 14:05"}, "occurred_at_naive", "occurred_at"),
    ({"occurred_at": "2026-11-03"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "2026-02-29T10:00:00Z"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "2026-04-31T10:00:00Z"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "2026-11-03T24:00:00Z"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "2026-11-03T14:05:00+15:00"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "2026-11-03T14:05:00 +01:00"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "03/11/2026 14:05+01:00"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "now"}, "occurred_at_invalid", "occurred_at"),
    # the common shape with a value out of range, or a character out of place
    ({"occurred_at": "2026-13-03T10:00:00+01:00"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "2026-11-00T10:00:00+01:00"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "2026-11-03T10:60:00Z"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "2026-11-03T10:00:60Z"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "2026-11-03T10:00:00+01:60"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "2026-11-03T10:00:00-16:00"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "0999-11-03T10:00:00+01:00"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "3026-11-03T10:00:00+01:00"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "2026-1--03T10:00:00+01:00"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "2026-11-03T1 :00:00+01:00"}, "occurred_at_invalid", "occurred_at"),
    ({"occurred_at": "2026-11-03T10:00:00+1:000"}, "occurred_at_invalid", "occurred_at"),
    ({"country": "SWE"}, "country_invalid", "country"),
    ({"country": "XK"}, "country_invalid", "country"),  # not assigned by ISO 3166
    ({"country": "S"}, "country_invalid", "country"),
    ({"country": "ıt"}, "country_invalid", "country"),  # not "IT", however Unicode folds it
]


@pytest.mark.parametrize("ingest", WAYS_IN)
@pytest.mark.parametrize(("values", "code", "field"), REJECTED)
def test_a_record_breaking_a_rule_is_rejected_naming_it_and_the_good_ones_are_stored(
    ingest: Ingest, values: dict[str, Any], code: str, field: str, subscription
) -> None:
    result = ingest(
        [
            record(source_id="good-1"),
            record(**{"source_id": "bad", **values}),
            record(source_id="good-2"),
        ]
    )
    assert (result.received, result.stored, result.rejected) == (3, 2, 1)
    (rejection,) = result.rejections
    assert (rejection.position, rejection.code, rejection.field) == (
        position(ingest, 1),
        code,
        field,
    )
    assert field in rejection.message
    sent = values.get("source_id", "bad")
    assert rejection.source_id == (sent[:64] + "…" if len(sent) > 64 else sent or None)
    assert set(UsageRecord.objects.values_list("source_id", flat=True)) == {"good-1", "good-2"}


ACCEPTED = [
    {"source_id": "x" * 64},
    {"quantity": "0"},
    {"quantity": "99999999999.999"},
    {"quantity": "00000000000012.5"},
    {"quantity": "12.5000"},  # trailing zeros are no decimals
    {"occurred_at": "2028-02-29T10:00:00Z"},  # a leap day
    {"occurred_at": "2026-11-03T14:05:00.123456+01:00"},
    {"occurred_at": "2026-11-03 14:05:59+0100"},
    {"occurred_at": "2026-11-03T14:05-05"},
    {"country": "se"},
    {"country": "US"},
    {"identifier": "4" * 40, "subscription": None},
]


@pytest.mark.parametrize("ingest", WAYS_IN)
@pytest.mark.parametrize("values", ACCEPTED)
def test_records_at_the_edges_of_the_rules_are_stored(
    ingest: Ingest, values: dict[str, Any], subscription
) -> None:
    if "identifier" in values:
        SubscriptionFactory(identifier=values["identifier"], start_date=date(2025, 1, 1))
    result = ingest([record(**values)])
    assert (result.stored, result.rejections) == (1, [])


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("12.5", None),
        (12, None),
        (Decimal("1E+3"), None),  # a JSON number 1e3, read as Decimal
        (Decimal("0.1000"), None),
        (12.5, "quantity_invalid"),  # a float is never taken as money's or usage's amount
        (True, "quantity_invalid"),
        (Decimal("NaN"), "quantity_invalid"),
        (Decimal("-0.5"), "quantity_negative"),
        (Decimal("0.00001"), "quantity_too_many_decimals"),
    ],
)
def test_a_batch_takes_quantities_as_text_whole_numbers_or_decimals_never_floats(
    value: Any, code: str | None, subscription
) -> None:
    result = by_batch([record(quantity=value)])
    assert [r.code for r in result.rejections] == ([code] if code else [])
    if code is None:
        assert UsageRecord.objects.get().quantity == Decimal(str(value)).quantize(Decimal("0.001"))


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("not an object", "record_not_an_object"),
        ({**record(), "contry": "DE"}, "record_unknown_field"),
        (record(source_id=17), "source_id_invalid"),
        (record(identifier=4670), "identifier_invalid"),
        (record(identifier=None, subscription=True), "subscription_invalid"),
        (record(identifier=None, subscription=12.0), "subscription_invalid"),
        (record(kind=["data"]), "kind_invalid"),
        (record(occurred_at=20261103), "occurred_at_invalid"),
        (record(country=["SE"]), "country_invalid"),
    ],
)
def test_a_batch_rejects_records_of_the_wrong_shape_or_type(
    given: Any, code: str, subscription
) -> None:
    result = by_batch([given])
    assert [r.code for r in result.rejections] == [code]
    if code == "record_unknown_field":
        assert "contry" in result.rejections[0].message


def test_a_subscription_is_named_by_touchpoint_id_as_a_number_or_as_text(subscription) -> None:
    result = by_batch(
        [
            record(source_id="a", identifier=None, subscription=subscription.id),
            record(source_id="b", identifier=None, subscription=str(subscription.id)),
            record(source_id="c", identifier=None, subscription=subscription.id + 1000),
            record(source_id="d", identifier="", subscription=subscription.id),
        ]
    )
    assert result.stored == 3
    (unknown,) = result.rejections
    assert unknown.code == "subscription_unknown"
    assert unknown.message == f"No subscription has id {subscription.id + 1000}."


@pytest.mark.parametrize("ingest", WAYS_IN)
def test_an_identifier_names_the_subscription_it_belonged_to_on_the_records_day(
    ingest: Ingest,
) -> None:
    # given a number that moved from one subscription to another on 1 November
    before = SubscriptionFactory(
        identifier="46709999999",
        start_date=date(2026, 1, 1),
        end_date=date(2026, 10, 31),
        status="ended",
    )
    after = SubscriptionFactory(identifier="46709999999", start_date=date(2026, 11, 1))
    # when usage comes for the evening of 31 October UTC, which is 1 November in Sweden
    result = ingest(
        [
            record(source_id="oct", occurred_at="2026-10-31T21:00:00Z", identifier="46709999999"),
            record(source_id="nov", occurred_at="2026-10-31T23:30:00Z", identifier="46709999999"),
            record(source_id="gap", occurred_at="2025-12-31T12:00:00Z", identifier="46709999999"),
        ]
    )
    # then each goes to the subscription with the number on its Swedish day
    stored = dict(UsageRecord.objects.values_list("source_id", "subscription_id"))
    assert stored == {"oct": before.id, "nov": after.id}
    (gap,) = result.rejections
    assert (gap.position, gap.code, gap.field) == (
        position(ingest, 2),
        "identifier_unknown",
        "identifier",
    )
    assert gap.message == "No subscription has identifier 46709999999 on 2025-12-31."


@pytest.mark.parametrize("ingest", WAYS_IN)
def test_an_identifier_two_subscriptions_have_on_the_day_is_rejected_as_ambiguous(
    ingest: Ingest,
) -> None:
    # given two lines with the same identifier in November (a data SIM and its twin)
    SubscriptionFactory(identifier="line-7", start_date=date(2026, 1, 1))
    second = SubscriptionFactory(identifier="line-7", start_date=date(2026, 11, 10))
    result = ingest(
        [
            record(source_id="one", identifier="line-7", occurred_at="2026-11-05T10:00:00Z"),
            record(source_id="two", identifier="line-7", occurred_at="2026-11-12T10:00:00Z"),
            record(
                source_id="by-id",
                identifier=None,
                subscription=str(second.id),
                occurred_at="2026-11-12T10:00:00Z",
            ),
        ]
    )
    assert sorted(UsageRecord.objects.values_list("source_id", flat=True)) == ["by-id", "one"]
    (ambiguous,) = result.rejections
    assert (ambiguous.position, ambiguous.code) == (position(ingest, 1), "identifier_ambiguous")
    assert "line-7 on 2026-11-12" in ambiguous.message
    assert "send subscription" in ambiguous.message


@pytest.mark.parametrize("ingest", WAYS_IN)
def test_a_source_id_sent_twice_in_one_batch_is_stored_once_the_first_one(
    ingest: Ingest, subscription
) -> None:
    result = ingest(
        [
            record(source_id="twice", quantity="1"),
            record(source_id="once", quantity="2"),
            record(source_id="twice", quantity="3"),
        ]
    )
    assert (result.received, result.stored, result.duplicates, result.rejected) == (3, 2, 1, 0)
    assert UsageRecord.objects.get(source_id="twice").quantity == 1


@pytest.mark.parametrize("ingest", WAYS_IN)
def test_a_batch_sent_again_stores_nothing_and_counts_duplicates(
    ingest: Ingest, subscription
) -> None:
    first = ingest([record(source_id="a"), record(source_id="b")])
    again = ingest(
        [
            record(source_id="a", quantity="99"),
            record(source_id="b"),
            record(source_id="c"),
        ]
    )
    assert (first.stored, first.duplicates) == (2, 0)
    assert (again.received, again.stored, again.duplicates) == (3, 1, 2)
    assert UsageRecord.objects.count() == 3
    assert UsageRecord.objects.get(source_id="a").quantity == Decimal("12.5")


@pytest.mark.parametrize("ingest", WAYS_IN)
def test_all_or_nothing_stores_nothing_when_one_record_is_rejected(
    ingest: Ingest, subscription
) -> None:
    result = ingest(
        [
            record(source_id="a"),
            record(source_id="b", kind="mms"),
            record(source_id="c", country="Sverige"),
        ],
        all_or_nothing=True,
    )
    assert result.refused
    assert (result.received, result.stored, result.duplicates, result.rejected) == (3, 0, 0, 2)
    assert [r.code for r in result.rejections] == ["kind_invalid", "country_invalid"]
    assert not UsageRecord.objects.exists()


@pytest.mark.parametrize("ingest", WAYS_IN)
def test_all_or_nothing_stores_everything_when_nothing_is_rejected(
    ingest: Ingest, subscription
) -> None:
    result = ingest(
        [record(source_id="a"), record(source_id="b")],
        all_or_nothing=True,
    )
    assert (result.refused, result.stored) == (False, 2)


def test_all_or_nothing_holds_across_chunks(monkeypatch, subscription) -> None:
    # given chunks of two records and a bad record in the last chunk
    monkeypatch.setattr(usage_ingest, "_CHUNK", 2)
    records = [record(source_id=f"r{n}") for n in range(5)]
    records[4]["kind"] = "fax"
    result = by_batch(records, all_or_nothing=True)
    assert (result.refused, result.rejected) == (True, 1)
    assert not UsageRecord.objects.exists()


@pytest.mark.parametrize("ingest", WAYS_IN)
def test_chunks_keep_positions_duplicates_and_the_order_of_rejections(
    ingest: Ingest, monkeypatch, subscription
) -> None:
    monkeypatch.setattr(usage_ingest, "_CHUNK", 2)
    monkeypatch.setattr(usage_ingest, "_COPY_BLOCK", 7)  # a file sent to COPY in small blocks
    records = [record(source_id=f"r{n}") for n in range(7)]
    records[1]["identifier"] = "no-such-line"  # rejected when resolving
    records[2]["kind"] = "fax"  # rejected when checking, before it in the same chunk
    records[5]["source_id"] = "r0"  # repeats a record of the first chunk
    result = ingest(records)
    assert (result.received, result.stored, result.duplicates, result.rejected) == (7, 4, 1, 2)
    assert [(r.position, r.code) for r in result.rejections] == [
        (position(ingest, 1), "identifier_unknown"),
        (position(ingest, 2), "kind_invalid"),
    ]


def test_only_the_first_rejections_are_listed_and_all_are_counted(
    monkeypatch, subscription
) -> None:
    monkeypatch.setattr(usage_ingest, "LISTED_REJECTIONS", 2)
    result = by_file([record(source_id=f"r{n}", kind="fax") for n in range(3)])
    assert result.rejected == 3
    assert [r.position for r in result.rejections] == [2, 3]


# --- Files --------------------------------------------------------------------------------


def test_a_file_names_its_columns_in_any_order_with_a_bom_and_crlf_lines(subscription) -> None:
    data = (
        "\ufeffkind,quantity,occurred_at,identifier,source_id\r\n"
        "data,1.5,2026-11-03T10:00:00Z,46701234567,a\r\n"
        "sms,1,2026-11-03T10:00:00Z,46701234567,b\r\n"
    ).encode()
    result = usage_csv_ingest(stream=io.BytesIO(data))
    assert (result.stored, result.rejections) == (2, [])
    assert UsageRecord.objects.get(source_id="a").country == ""


def test_a_file_without_a_final_line_break_keeps_its_last_record(subscription) -> None:
    data = b"source_id,identifier,kind,quantity,occurred_at\na,46701234567,data,1,2026-11-03T10:00Z"
    assert usage_csv_ingest(stream=io.BytesIO(data)).stored == 1


def test_a_file_with_only_its_header_stores_nothing() -> None:
    result = usage_csv_ingest(
        stream=io.BytesIO(b"source_id,identifier,kind,quantity,occurred_at\n")
    )
    assert (result.received, result.stored, result.rejected) == (0, 0, 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (b"source_id,identifier,kind,quantity\n", "lacks the column(s) occurred_at"),
        (
            b"source_id,kind,quantity,occurred_at\n",
            "lacks the column(s) subscription or identifier",
        ),
        (b"source_id,identifier,kind,quantity,occurred_at,msisdn\n", "Unknown column 'msisdn'"),
        (b"source_id,identifier,kind,kind,quantity,occurred_at\n", "Column 'kind' comes twice"),
        (b"source_id,identif\xe9r,kind\n", "Line 1 is not UTF-8"),
        (
            b"source_id,identifier,kind,quantity,occurred_at\n"
            b"a,46701234567,data,1,2026-11-03T10:00Z\n"
            b"b,4670\xff,data,1,2026-11-03T10:00Z\n",
            "Line 3 is not UTF-8",
        ),
        (
            b"source_id,identifier,kind,quantity,occurred_at\n"
            b'a,"46701234567,data,1,2026-11-03T10:00Z\n',
            "is not CSV",
        ),
    ],
)
def test_a_file_that_is_not_csv_with_a_usable_header_is_refused_whole(
    data: bytes, message: str, subscription
) -> None:
    with pytest.raises(DomainError) as refused:
        usage_csv_ingest(stream=io.BytesIO(data))
    assert refused.value.code == "usage_file_invalid"
    assert message in refused.value.message
    assert not UsageRecord.objects.exists()


def test_lines_copy_cannot_take_are_read_one_by_one_with_the_same_answers(subscription) -> None:
    # given a line with one field too many, a blank line, COPY's end marker, and a quoted
    # line break; the lines after each are still read and numbered as in the file
    data = (
        b"source_id,identifier,kind,quantity,occurred_at\n"
        b"a,46701234567,data,1,2026-11-03T10:00Z\n"
        b"b,46701234567,data,1,2026-11-03T10:00Z,SE\n"
        b"\n"
        b"\\.\n"
        b'"c\nc",46701234567,data,1,2026-11-03T10:00Z\n'
        b"d,46701234567,data,1,2026-11-03T10:00Z\n"
    )
    result = usage_csv_ingest(stream=io.BytesIO(data))
    assert (result.received, result.stored, result.rejected) == (5, 2, 3)
    assert [(r.position, r.code) for r in result.rejections] == [
        (3, "record_field_count"),
        (5, "record_field_count"),
        (7, "source_id_control_character"),
    ]
    assert result.rejections[0].message == "This line has 6 fields; the header has 5."
    assert [r.source_id for r in result.rejections] == ["b", "\\.", "c\nc"]
    assert set(UsageRecord.objects.values_list("source_id", flat=True)) == {"a", "d"}


@pytest.mark.usefixtures("postgres")
def test_on_postgresql_a_file_is_loaded_by_copy_and_checked_in_sql(
    monkeypatch, subscription
) -> None:
    def read_in_python(*args: Any) -> None:
        raise AssertionError("the file was read line by line in Python")

    monkeypatch.setattr(usage_ingest, "_csv_records", read_in_python)
    result = by_file([record(source_id="a"), record(source_id="b")])
    assert result.stored == 2


# --- Two batches at once (PostgreSQL) -----------------------------------------------------


@pytest.mark.usefixtures("postgres")
@pytest.mark.django_db(transaction=True)
def test_two_batches_with_overlapping_source_ids_at_once_store_each_record_once() -> None:
    # given a first batch whose transaction has stored its records but not committed yet
    SubscriptionFactory(identifier="46701234567", start_date=date(2025, 1, 1))
    first = [record(source_id=f"r{n}") for n in (1, 2, 3, 4)]
    second = [record(source_id=f"r{n}") for n in (6, 4, 5, 2)]  # other order
    stored_first = threading.Event()
    go_on = threading.Event()
    results: dict[str, UsageIngested] = {}
    errors: list[BaseException] = []

    def run(name: str, records: list[dict[str, Any]], hold: bool) -> None:
        try:
            with transaction.atomic():
                results[name] = usage_records_ingest(records=records)
                if hold:
                    stored_first.set()
                    assert go_on.wait(30)
        except BaseException as error:  # reported by the test's thread
            errors.append(error)
            stored_first.set()
        finally:
            connection.close()

    one = threading.Thread(target=run, args=("first", first, True))
    one.start()
    assert stored_first.wait(30)
    two = threading.Thread(target=run, args=("second", second, False))
    two.start()
    # when the second batch is waiting for the first one's records
    _wait_for_a_lock_wait()
    go_on.set()
    one.join(30)
    two.join(30)
    assert not errors
    # then each record is stored once, and the second batch counts the overlap as duplicates
    assert sorted(UsageRecord.objects.values_list("source_id", flat=True)) == [
        f"r{n}" for n in range(1, 7)
    ]
    assert (results["first"].stored, results["first"].duplicates) == (4, 0)
    assert (results["second"].stored, results["second"].duplicates) == (2, 2)


def _wait_for_a_lock_wait() -> None:
    """Until another session of this database waits for a lock (a bounded number of looks)."""
    with connections["default"].cursor() as cursor:
        for _ in range(3000):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            threading.Event().wait(0.01)
    raise AssertionError("the second batch never waited for the first")
