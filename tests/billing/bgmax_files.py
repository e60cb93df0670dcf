"""BgMax files made in tests (and by the benchmark's generator's rules): records of 80
characters, each field where Bankgirot's manual puts it."""

from dataclasses import dataclass, field


@dataclass
class Paid:
    amount_ore: int
    reference: str = ""
    reference_code: int = 2
    sender_bankgiro: str = "0003783511"
    serial: str = ""
    deduction: bool = False
    name: str = ""


@dataclass
class Deposit:
    payments: list[Paid]
    payee_bankgiro: str = "0009912346"
    currency: str = "SEK"
    payment_date: str = "20261201"
    serial: str = "00001"
    # what the closing record says; None: what the payments add up to
    amount_ore: int | None = None
    count: int | None = None


@dataclass
class File:
    deposits: list[Deposit] = field(default_factory=list)
    mark: str = "P"
    written: str = "20261201061500123456"  # when Bankgirot wrote it
    # what the end record says; None: what the file holds
    counts: tuple[int, int, int, int] | None = None


def record(*parts: str) -> str:
    line = "".join(parts)
    assert len(line) <= 80, line
    return line.ljust(80)


def bgmax_file(made: File, *, line_break: str = "\r\n", encoding: str = "iso-8859-1") -> bytes:
    records = [record("01", "BGMAX".ljust(20), "01", made.written, made.mark)]
    payments = deductions = 0
    for deposit in made.deposits:
        records.append(record("05", deposit.payee_bankgiro, " " * 10, deposit.currency))
        for n, paid in enumerate(deposit.payments, start=1):
            records.append(
                record(
                    "21" if paid.deduction else "20",
                    paid.sender_bankgiro.rjust(10, "0"),
                    paid.reference.rjust(25)
                    if paid.reference_code == 2
                    else paid.reference.ljust(25),
                    str(paid.amount_ore).rjust(18, "0"),
                    str(paid.reference_code),
                    "1",
                    (paid.serial or f"{n:012d}"),
                    "0",
                    "0" if paid.deduction else "",
                )
            )
            if paid.name:
                records.append(record("26", paid.name.ljust(35)))
            deductions += paid.deduction
            payments += not paid.deduction
        total = sum(-p.amount_ore if p.deduction else p.amount_ore for p in deposit.payments)
        amount = total if deposit.amount_ore is None else deposit.amount_ore
        count = len(deposit.payments) if deposit.count is None else deposit.count
        records.append(
            record(
                "15",
                "00000000000000000005841000001009823",
                deposit.payment_date,
                deposit.serial,
                str(amount).rjust(18, "0"),
                deposit.currency,
                str(count).rjust(8, "0"),
            )
        )
    counts = made.counts or (payments, deductions, 0, len(made.deposits))
    records.append(record("70", *(str(c).rjust(8, "0") for c in counts)))
    return line_break.join(records).encode(encoding)
