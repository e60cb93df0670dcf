"""The accounting export as a file: SIE 4I in code page 437, read back by a strict reader of
its own (every record known, every field in its form, every verification balanced, every
account declared) to the same verifications the export made."""

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User

from core.sie import SieHeader, SieTransaction, SieVerification, sie_text, sie_write
from invoices.accounting import (
    AccountPlan,
    accounting_settings,
    accounting_sie_file,
    accounting_verifications,
)
from invoices.models import ChargeKind, Invoice, InvoiceCharge
from invoices.services.credit_notes import credit_note_issue
from invoices.services.payments import payment_match
from tests.chat.conftest import issue_october
from tests.factories import PlanFactory, SubscriptionFactory
from tests.invoices.bookings import bank_paid, card_paid, card_refunded, noon

pytestmark = pytest.mark.django_db

HEADER_TAGS = {
    "#FLAGGA",
    "#PROGRAM",
    "#FORMAT",
    "#GEN",
    "#SIETYP",
    "#ORGNR",
    "#FNAMN",
    "#RAR",
    "#KPTYP",
    "#VALUTA",
}
AMOUNT = re.compile(r"^-?\d+\.\d\d$")
DAY = re.compile(r"^\d{8}$")
ACCOUNT = re.compile(r"^\d{4,6}$")
# a field: a quoted text (\" inside), the empty object list, or a run of other characters
FIELD = re.compile(r'"((?:[^"\\]|\\")*)"|(\{\})|([^\s"{}]+)')


@dataclass
class Read:
    header: dict[str, list[list[str]]] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)
    verifications: list[SieVerification] = field(default_factory=list)


def fields(line: str) -> list[str]:
    """A record's fields; raises on anything between them but single spaces."""
    found, position = [], 0
    while position < len(line):
        match = FIELD.match(line, position)
        assert match, f"unreadable at {position}: {line!r}"
        text, objects, plain = match.groups()
        found.append(text.replace('\\"', '"') if text is not None else objects or plain)
        position = match.end()
        if position < len(line):
            assert line[position] == " ", f"fields apart by one space: {line!r}"
            position += 1
    return found


def day(text: str) -> date:
    assert DAY.match(text), text
    return datetime.strptime(text, "%Y%m%d").date()  # noqa: DTZ007 (a date, no time)


def read_sie(data: bytes) -> Read:
    """A strict reader of SIE 4I: CP437, CR LF lines, the identification first (#FLAGGA 0 the
    very first), #KONTO before any #VER, each #VER followed by {, #TRANS records and }."""
    text = data.decode("cp437")
    assert text.endswith("\r\n")
    lines = text[:-2].split("\r\n")
    assert all("\n" not in line and "\r" not in line for line in lines)
    assert lines[0] == "#FLAGGA 0"
    read = Read()
    index = 0
    while index < len(lines):
        record = fields(lines[index])
        tag = record[0]
        if tag in HEADER_TAGS:
            assert not read.accounts, f"{tag} after the accounts"
            read.header.setdefault(tag, []).append(record[1:])
        elif tag == "#KONTO":
            assert not read.verifications, "#KONTO after a verification"
            assert len(record) == 3, record
            assert ACCOUNT.match(record[1]), record
            read.accounts[record[1]] = record[2]
        elif tag == "#VER":
            assert len(record) in (5, 6), record
            series, number, on, words = record[1:5]
            registered = day(record[5]) if len(record) == 6 else None
            assert lines[index + 1] == "{", "a verification's transactions follow in braces"
            index += 2
            rows = []
            while lines[index] != "}":
                trans = fields(lines[index])
                assert trans[0] == "#TRANS", trans
                assert len(trans) == 4, trans
                assert trans[1] in read.accounts, f"account {trans[1]} without #KONTO"
                assert trans[2] == "{}", trans
                assert AMOUNT.match(trans[3]), trans
                rows.append(SieTransaction(trans[1], Decimal(trans[3])))
                index += 1
            assert rows, "a verification without transactions"
            assert sum(row.amount for row in rows) == 0, f"{words} does not balance"
            read.verifications.append(
                SieVerification(series, day(on), words, tuple(rows), registered, number)
            )
        else:
            raise AssertionError(f"unknown record {tag}")
        index += 1
    assert read.header["#FORMAT"] == [["PC8"]]
    assert read.header["#SIETYP"] == [["4"]]
    return read


@pytest.fixture
def booked() -> list[Invoice]:
    """Two customers' October invoices (one at 25 % and 6 % VAT, with rounding), and every kind
    of booking on them: payments part, whole and beyond, by bank and card, a refund, a
    credit note, a fee, a payment matched by hand."""
    magazine = PlanFactory(
        code="tidning", name="Tidning", monthly_fee=Decimal("99.50"), vat_rate=Decimal("0.06")
    )
    first = SubscriptionFactory()
    SubscriptionFactory(
        customer=first.customer, plan=magazine, agreed_monthly_price=Decimal("99.50")
    )
    SubscriptionFactory(agreed_monthly_price=Decimal("199.00"))
    one, two = issue_october()
    bank_paid(one.ocr or "", "100.00", day="20261105")
    bank_paid(one.ocr or "", "400.00", day="20261106")
    card = card_paid(two, "250.00", at=noon(2026, 11, 7))
    card_refunded(card, "60.00", at=noon(2026, 11, 8))
    with time_machine.travel(noon(2026, 11, 15)):
        magazine_line = one.lines.get(vat_rate=Decimal("0.06"))
        credit_note_issue(invoice_id=one.id, reason="Avbeställd", line_ids=[magazine_line.id])
    InvoiceCharge.objects.create(
        invoice=two,
        kind=ChargeKind.REMINDER_FEE,
        amount=Decimal("60.00"),
        texts={"en": {"title": "Reminder fee", "detail": ""}},
        charged_on=date(2026, 12, 8),
        source_key="fee",
        created_at=two.issued_at,
    )
    waiting = bank_paid("1234567897", "20.00", day="20261109")
    with time_machine.travel(noon(2026, 11, 21)):
        payment_match(
            payment_id=waiting.id, invoice_id=two.id, by=User.objects.create(username="f")
        )
    return [one, two]


def test_the_file_reads_back_to_the_verifications_it_was_made_of(booked) -> None:
    first, last = date(2026, 11, 1), date(2026, 12, 31)
    with accounting_sie_file(first=first, last=last, generated_by="Ekonomi Åsa") as made:
        data = made.read()
    read = read_sie(data)
    made_of = list(
        accounting_verifications(first=first, last=last, plan=AccountPlan.of(accounting_settings()))
    )
    assert read.verifications == made_of
    assert {v.series for v in made_of} == {"F", "I", "R"}
    # 2 invoices and a credit note; a fee; 4 payments, a refund and a match
    assert [v.series for v in made_of] == ["F"] * 3 + ["R"] + ["I"] * 6
    # the header: who made it, for whom, the fiscal year, the chart
    assert read.header["#PROGRAM"][0][0] == "Touchpoint"
    assert read.header["#GEN"][0][1] == "Ekonomi Åsa"
    assert read.header["#FNAMN"] == [["Nordtele AB"]]
    assert read.header["#ORGNR"] == [["556677-8899"]]
    assert read.header["#RAR"] == [["0", "20260101", "20261231"]]
    assert read.header["#KPTYP"] == [["EUBAS97"]]
    # every account used is declared, with its name in Swedish letters (CP437: ö is 0x94)
    used = {row.account for v in made_of for row in v.transactions}
    assert used <= set(read.accounts)
    assert read.accounts["2420"] == "Förskott från kunder"
    assert b"F\x94rskott fr\x86n kunder" in data


def test_texts_keep_their_quotes_and_letters_code_page_437_lacks_become_the_nearest(
    booked,
) -> None:
    one, _two = booked
    with accounting_sie_file(
        first=date(2026, 11, 1), last=date(2026, 11, 30), generated_by='Ø "quoted" \\ €\t'
    ) as made:
        read = read_sie(made.read())
    # ø as ö; a quote kept; a backslash as "/"; a tab as a space; € as "?"
    assert read.header["#GEN"][0][1] == 'Ö "quoted" / ? '
    assert any(one.display_number in v.text for v in read.verifications)


def test_the_writer_refuses_a_verification_that_does_not_balance() -> None:
    header = SieHeader(
        program="T",
        version="1",
        generated_on=date(2026, 12, 1),
        generated_by="",
        company_name="AB",
        org_number="556677-8899",
        fiscal_years=((date(2026, 1, 1), date(2026, 12, 31)),),
        chart_type="EUBAS97",
    )
    unbalanced = SieVerification(
        "A",
        date(2026, 12, 1),
        "Fel",
        (SieTransaction("1510", Decimal("1.00")), SieTransaction("3001", Decimal("-0.99"))),
    )
    with pytest.raises(ValueError, match="does not balance"):
        sie_write(io.BytesIO(), header=header, accounts=[("1510", "K"), ("3001", "I")],
                  verifications=[unbalanced])  # fmt: skip
    in_parts = SieVerification(
        "A",
        date(2026, 12, 1),
        "Del av öre",
        (SieTransaction("1510", Decimal("0.005")), SieTransaction("3001", Decimal("-0.005"))),
    )
    with pytest.raises(ValueError, match="whole öre"):
        sie_write(io.BytesIO(), header=header, accounts=[("1510", "K"), ("3001", "I")],
                  verifications=[in_parts])  # fmt: skip


def test_a_text_field_is_quoted_with_its_quotes_escaped() -> None:
    assert sie_text('Kund "A"\r\nB\\C') == '"Kund \\"A\\"  B/C"'
