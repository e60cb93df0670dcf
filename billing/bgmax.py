"""Bankgirot's BgMax files: the incoming bankgiro payments of a day, read and checked whole.

A file is a run of 80-character records, each starting with its transaction code (TK):

    01 start (layout "BGMAX", version, when it was written, test or production)
    05 a deposit opens (the payee's bankgiro number, the currency)
    20 a payment, 21 a deduction (sender's bankgiro, reference, amount in öre, reference
       code, payment channel, Bankgirot's serial number, whether there is an image)
    22 / 23 an extra (or extra negative) reference of the payment before it
    25 a message, 26 name, 27 address, 28 city, 29 organisation number of that payment
    15 the deposit closes (account, payment date, serial, amount, number of payments)
    70 end (numbers of payments, deductions, extra references and deposits in the file)

Nothing of a file is booked unless all of it checks out: every record is known and in its
place, every number field holds digits, each deposit's amount equals its payments minus its
deductions and its count their number, and the end record's counts equal the file's records.
A refusal names the record (its number in the file) and what is wrong. A payment's reference
is used to match an invoice only when it is an OCR reference that passes the Luhn check.

Real files differ in their bytes: ISO-8859-1 (Bankgirot's) or UTF-8, CRLF, LF or no line
breaks at all, trailing blanks cut off, a tab for spaces. They are read as 80-character
records all the same.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from core.bulk import cycle_collection_paused
from core.errors import DomainError
from core.ocr import luhn_valid

RECORD_LENGTH = 80
STOCKHOLM = ZoneInfo("Europe/Stockholm")
OCR_REFERENCE = 2  # reference code: an OCR reference Bankgirot has checked


class BgMaxError(DomainError):
    """The file cannot be read or does not add up; nothing of it is booked."""

    def __init__(self, message: str, record: int | None = None) -> None:
        where = f"Record {record}: " if record is not None else ""
        super().__init__(code="bgmax_invalid", message=f"{where}{message}")
        self.record = record


@dataclass(slots=True)
class BgMaxPayment:
    """One payment (TK20) or deduction (TK21) with the records that belong to it.

    A day's file holds hundreds of thousands of these: slots, and tuples for the rare extra
    references and messages, keep each one a single small object (the garbage collector
    walks every list and object a booking holds, again and again as it allocates)."""

    record: int  # its number in the file, from 1
    deduction: bool
    sender_bankgiro: str
    reference: str  # as given, without the padding
    reference_code: int  # 0–1 none, 2 OCR, 3 other references, 4 other, 5 wrong reference
    amount_ore: int  # positive; a deduction is taken off its deposit
    channel: int  # 1 electronic (bank), 2 LB, 3 paper, 4 electronic (Autogiro/…)
    serial: str  # Bankgirot's serial number of the payment
    has_image: bool
    deduction_code: str = ""  # TK21: 0 whole deduction, 1 part, 2 final part, …
    extra_references: tuple[tuple[str, int, bool], ...] = ()
    messages: tuple[str, ...] = ()
    name: str = ""
    address: str = ""
    postcode: str = ""
    city: str = ""
    organisation_number: str = ""

    # The OCR reference to match an invoice by: one Bankgirot marks as such (code 2) and that
    # passes the Luhn check, else "" (sample files carry code 2 on references that fail it:
    # such a payment is matched by hand). Set as the record is read.
    ocr: str = ""


@dataclass
class BgMaxDeposit:
    """A deposit to one of the payee's bankgiro numbers: its payments, between TK05 and TK15."""

    record: int
    payee_bankgiro: str
    currency: str
    payments: list[BgMaxPayment] = field(default_factory=list)
    account: str = ""
    payment_date: date = date.min  # from its closing record (TK15)
    serial: str = ""
    amount_ore: int = 0
    count: int = 0


@dataclass
class BgMaxFile:
    written_at: datetime
    test: bool  # a test file from Bankgirot: never booked
    version: str
    deposits: list[BgMaxDeposit]

    @property
    def payments(self) -> list[BgMaxPayment]:
        return [payment for deposit in self.deposits for payment in deposit.payments]


def bgmax_records(data: bytes) -> list[str]:
    """The file's 80-character records, whatever its encoding and line breaks."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("iso-8859-1")  # Bankgirot's own; every byte is a character
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if "\t" in text:
        text = text.expandtabs(8)  # (columns count from each line's start)
    lines = [line.rstrip(" ") for line in text.split("\n")]
    lines = [line for line in lines if line.strip()]
    if len(lines) == 1 and len(lines[0]) > RECORD_LENGTH:
        # no line breaks: the records follow each other (the last one may be cut short)
        single = lines[0]
        lines = [single[i : i + RECORD_LENGTH] for i in range(0, len(single), RECORD_LENGTH)]
    if not lines:
        raise BgMaxError("The file is empty.")
    if max(map(len, lines)) > RECORD_LENGTH:
        number, line = next((n, x) for n, x in enumerate(lines, 1) if len(x) > RECORD_LENGTH)
        raise BgMaxError(
            f"{len(line)} characters; a BgMax record has {RECORD_LENGTH}.", record=number
        )
    return [line.ljust(RECORD_LENGTH) for line in lines]


def bgmax_parse(data: bytes) -> BgMaxFile:
    """Read a whole BgMax file and check that it adds up; raises ``BgMaxError`` otherwise.

    A day's file makes a record object per payment that lives as long as the file: the
    cycle collector is paused meanwhile (``core.bulk.cycle_collection_paused``)."""
    with cycle_collection_paused():
        reader = _Reader(bgmax_records(data))
        parsed = reader.read()
        _check_totals(reader)
    return parsed


class _Reader:
    def __init__(self, records: list[str]) -> None:
        self.records = records
        self.number = 0
        self.counts = {"20": 0, "21": 0, "22": 0, "23": 0, "15": 0}
        self.end: tuple[int, int, int, int] | None = None

    # --- fields -------------------------------------------------------------------------

    def text(self, start: int, end: int) -> str:
        """Positions ``start``–``end`` of the record (1-based, both included), trimmed."""
        return self.records[self.number - 1][start - 1 : end].strip()

    def digits(self, start: int, end: int, what: str, *, blank: bool = False) -> str:
        value = self.text(start, end)
        if blank and not value:
            return ""
        if not value.isdigit():
            raise BgMaxError(f"{what} (positions {start}–{end}) is not a number.", self.number)
        return value

    def number_field(self, start: int, end: int, what: str) -> int:
        return int(self.digits(start, end, what))

    # --- records ------------------------------------------------------------------------

    def read(self) -> BgMaxFile:
        written_at, test, version = self.start()
        deposits: list[BgMaxDeposit] = []
        deposit: BgMaxDeposit | None = None
        payment: BgMaxPayment | None = None
        for number in range(2, len(self.records) + 1):
            self.number = number
            code = self.records[number - 1][:2]
            if self.end is not None:
                raise BgMaxError("Records after the end record (TK70).", record=self.number)
            if code == "05":
                if deposit is not None:
                    raise BgMaxError("A deposit opens before the last one closed.", self.number)
                deposit, payment = self.opening(), None
            elif code == "70":
                if deposit is not None:
                    raise BgMaxError("The file ends inside a deposit (no TK15).", self.number)
                self.end = self.closing_counts()
            elif deposit is None:
                raise BgMaxError(
                    f"A TK{code} record outside a deposit (TK05 … TK15).", record=self.number
                )
            elif code in {"20", "21"}:
                payment = self.payment(deduction=code == "21")
                deposit.payments.append(payment)
                self.counts[code] += 1
            elif code == "15":
                self.deposit_end(deposit)
                deposits.append(deposit)
                deposit = payment = None
                self.counts["15"] += 1
            elif code in {"22", "23", "25", "26", "27", "28", "29"}:
                if payment is None:
                    raise BgMaxError(
                        f"A TK{code} record before any payment of its deposit.", self.number
                    )
                self.detail(code, payment)
            else:
                raise BgMaxError(f"Unknown record type {code!r}.", record=self.number)
        if self.end is None:
            raise BgMaxError("The file has no end record (TK70): it may be cut short.")
        return BgMaxFile(written_at=written_at, test=test, version=version, deposits=deposits)

    def start(self) -> tuple[datetime, bool, str]:
        self.number = 1
        if self.records[0][:2] != "01" or self.text(3, 22) != "BGMAX":
            raise BgMaxError("This is not a BgMax file (no BGMAX start record).", record=1)
        stamp = self.digits(25, 44, "The file's time")
        try:
            written = datetime.strptime(stamp[:14], "%Y%m%d%H%M%S").replace(tzinfo=STOCKHOLM)
        except ValueError:
            raise BgMaxError("The file's time is not a date and time.", record=1) from None
        mark = self.text(45, 45)
        if mark not in {"T", "P"}:
            raise BgMaxError("The file is marked neither test (T) nor production (P).", 1)
        return written, mark == "T", self.text(23, 24)

    def opening(self) -> BgMaxDeposit:
        return BgMaxDeposit(
            record=self.number,
            payee_bankgiro=self.digits(3, 12, "The payee's bankgiro number"),
            currency=self.text(23, 25),
        )

    def payment(self, *, deduction: bool) -> BgMaxPayment:
        # The most frequent record (a large operator's day holds hundreds of thousands): its
        # fields are sliced from it here; a field that fails is named by the checks below.
        line = self.records[self.number - 1]
        sender, reference, amount = line[2:12].strip(), line[12:37].strip(), line[37:55]
        code, channel = line[55], line[56]
        if not (amount.isdigit() and code.isdigit() and channel.isdigit()):
            self.number_field(38, 55, "The amount")
            self.number_field(56, 56, "The reference code")
            self.number_field(57, 57, "The payment channel")
        if sender and not sender.isdigit():
            self.digits(3, 12, "The sender's bankgiro number", blank=True)
        reference_code = int(code)
        checked = reference_code == OCR_REFERENCE and luhn_valid(reference)
        return BgMaxPayment(
            record=self.number,
            deduction=deduction,
            sender_bankgiro=sender,
            reference=reference,
            reference_code=reference_code,
            ocr=reference if checked else "",
            amount_ore=int(amount),
            channel=int(channel),
            serial=line[57:69].strip(),
            has_image=line[69] == "1",
            deduction_code=line[70].strip() if deduction else "",
        )

    def detail(self, code: str, payment: BgMaxPayment) -> None:
        if code in {"22", "23"}:
            extra = (self.text(13, 37), self.number_field(38, 55, "The amount"), code == "23")
            payment.extra_references = (*payment.extra_references, extra)
            self.counts[code] += 1
        elif code == "25":
            payment.messages = (*payment.messages, self.text(3, 52))
        elif code == "26":
            line = self.records[self.number - 1]
            name, more = line[2:37].strip(), line[37:72].strip()
            payment.name = " ".join(part for part in (name, more) if part)
        elif code == "27":
            payment.address, payment.postcode = self.text(3, 37), self.text(38, 46)
        elif code == "28":
            payment.city = self.text(3, 37)
        else:
            payment.organisation_number = self.text(3, 14)

    def deposit_end(self, deposit: BgMaxDeposit) -> None:
        deposit.account = self.text(3, 37)
        paid = self.digits(38, 45, "The payment date")
        try:
            deposit.payment_date = date(int(paid[:4]), int(paid[4:6]), int(paid[6:8]))
        except ValueError:
            raise BgMaxError("The payment date is not a date.", record=self.number) from None
        deposit.serial = self.text(46, 50)
        deposit.amount_ore = self.number_field(51, 68, "The deposit's amount")
        deposit.count = self.number_field(72, 79, "The number of payments")
        currency = self.text(69, 71)
        if currency != deposit.currency:
            raise BgMaxError(
                f"The deposit closes in {currency}, it opened in {deposit.currency}.",
                record=self.number,
            )
        total = sum(-p.amount_ore if p.deduction else p.amount_ore for p in deposit.payments)
        if total != deposit.amount_ore:
            raise BgMaxError(
                f"The deposit's amount is {_kr(deposit.amount_ore)}, its payments add up to "
                f"{_kr(total)}.",
                record=self.number,
            )
        if deposit.count != len(deposit.payments):
            raise BgMaxError(
                f"The deposit says {deposit.count} payments, it holds {len(deposit.payments)}.",
                record=self.number,
            )

    def closing_counts(self) -> tuple[int, int, int, int]:
        return (
            self.number_field(3, 10, "The number of payments"),
            self.number_field(11, 18, "The number of deductions"),
            self.number_field(19, 26, "The number of extra references"),
            self.number_field(27, 34, "The number of deposits"),
        )


def _check_totals(reader: _Reader) -> None:
    said = reader.end or (0, 0, 0, 0)  # (read() refuses a file without it)
    counted = (
        reader.counts["20"],
        reader.counts["21"],
        reader.counts["22"] + reader.counts["23"],
        reader.counts["15"],
    )
    names = ("payments", "deductions", "extra references", "deposits")
    wrong = [
        f"{name}: the end record says {number}, the file holds {held}"
        for name, number, held in zip(names, said, counted, strict=True)
        if number != held
    ]
    if wrong:
        raise BgMaxError(
            "The end record's counts do not match the file (" + "; ".join(wrong) + ").",
            record=len(reader.records),
        )


def _kr(ore: int) -> str:
    return f"{ore // 100},{ore % 100:02d} kr"
