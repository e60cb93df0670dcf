"""SIE 4 files of type 4I: verifications for a bookkeeping program to import.

SIE (Standard Import och Export, SIE-gruppen's format 4B) is how Swedish accounting programs
move bookkeeping data. Type 4I carries verifications only, no balances; the importing
program books them. How this module writes one, as the format asks:

- The file is text in IBM PC code page 437 (``#FORMAT PC8``). A character that code page
  lacks is written as its nearest plain letter (ø as ö, é stays, an accent dropped where the
  letter without it exists), else as "?".
- One record (post) a line, ending CR LF. A record is its label (``#VER``) and fields apart
  by a space. A text field is always quoted with double quotes; a quote in it is written
  ``\\"``. Control characters become spaces and a backslash becomes "/" (the format gives the
  backslash its own meaning only before a quote).
- First the identification: ``#FLAGGA 0`` (the importing program sets it to 1 once it has
  read the file), ``#PROGRAM``, ``#FORMAT``, ``#GEN`` (date and who), ``#SIETYP 4``,
  ``#ORGNR``, ``#FNAMN``, a ``#RAR`` per fiscal year the verifications fall in (0 the year of
  the last, -1 the one before), ``#KPTYP`` (the chart of accounts), ``#VALUTA``; then a
  ``#KONTO`` for each account; then the verifications.
- A verification: ``#VER series number date "text" regdate`` and its transactions between a
  ``{`` and a ``}`` line, each ``#TRANS account {} amount`` (the empty braces: no objects such
  as cost centres). The number may be empty (``""``): the importing program numbers the
  verifications of an import file in its own series.
- Amounts are kronor with a decimal point and two decimals, a minus for credit; dates are
  YYYYMMDD.

Every verification must balance to exactly zero, and every amount must be in whole öre: a
verification that does not is refused (``ValueError``) instead of written.
"""

import codecs
import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import IO

ENCODING = "cp437"
EOL = "\r\n"
ORE = Decimal("0.01")
ZERO = Decimal(0)
# Letters code page 437 lacks, and the letter a Swedish text writes instead.
_NEAREST = {"ø": "ö", "Ø": "Ö", "õ": "ö", "Õ": "Ö", "–": "-", "—": "-", "‘": "'", "’": "'"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FALLBACK = "sie-nearest"


def _nearest(error: UnicodeError) -> tuple[str, int]:
    """The codec's error handler: each character code page 437 lacks, as its nearest letter
    the page has (never a quote or a backslash: the text is quoted already), else "?"."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    written = []
    for char in error.object[error.start : error.end]:
        candidate = _NEAREST.get(char) or "".join(
            part for part in unicodedata.normalize("NFKD", char) if not unicodedata.combining(part)
        )
        try:
            candidate.encode(ENCODING)
        except UnicodeEncodeError:
            candidate = ""
        safe = candidate and not set(candidate) & {'"', "\\"} and not _CONTROL.search(candidate)
        written.append(candidate if safe else "?")
    return "".join(written), error.end


codecs.register_error(_FALLBACK, _nearest)


def sie_text(value: str) -> str:
    """``value`` as a quoted SIE text field (still to be encoded with ``sie_encode``)."""
    cleaned = _CONTROL.sub(" ", value).replace("\\", "/")
    return '"' + cleaned.replace('"', '\\"') + '"'


def sie_encode(text: str) -> bytes:
    return text.encode(ENCODING, errors=_FALLBACK)


def sie_amount(amount: Decimal) -> str:
    """Kronor with two decimals and a decimal point (``-1234.50``). Raises ``ValueError`` for
    an amount in parts of an öre (it would be rounded, and the verification no longer
    balance)."""
    whole = amount.quantize(ORE)
    if whole != amount:
        raise ValueError(f"{amount} is not in whole öre")
    return f"{whole:.2f}"


@functools.lru_cache(maxsize=4096)
def sie_date(day: date) -> str:
    """YYYYMMDD (cached: a file's dates are few and each comes many times)."""
    return f"{day:%Y%m%d}"


@dataclass(frozen=True)
class SieTransaction:
    """A row of a verification: ``amount`` kronor on ``account``, debit positive."""

    account: str
    amount: Decimal


@dataclass(frozen=True)
class SieVerification:
    series: str
    on: date  # the verification's date (verdatum)
    text: str
    transactions: tuple[SieTransaction, ...]
    registered_on: date | None = None  # when it was recorded (regdatum)
    number: str = ""  # empty: the importing program numbers it


@dataclass(frozen=True)
class SieHeader:
    """Who wrote the file and for whom."""

    program: str
    version: str
    generated_on: date
    generated_by: str  # a person's or system's name, may be empty
    company_name: str
    org_number: str  # NNNNNN-NNNN
    fiscal_years: tuple[tuple[date, date], ...]  # the current year first, then earlier ones
    chart_type: str  # e.g. EUBAS97
    currency: str = "SEK"


def sie_write(
    out: IO[bytes],
    *,
    header: SieHeader,
    accounts: Iterable[tuple[str, str]],
    verifications: Iterable[SieVerification],
) -> int:
    """Write an SIE 4I file to ``out``: ``header``, a ``#KONTO`` per (number, name) of
    ``accounts``, then ``verifications``, whose transactions must name accounts among
    ``accounts`` and sum to zero (``ValueError`` otherwise, raised as the verification comes:
    what was written before it is then not a file to use). Returns the verifications
    written."""
    known: set[str] = set()
    lines = [
        "#FLAGGA 0",
        f"#PROGRAM {sie_text(header.program)} {sie_text(header.version)}",
        "#FORMAT PC8",
        f"#GEN {sie_date(header.generated_on)} {sie_text(header.generated_by)}",
        "#SIETYP 4",
        f"#ORGNR {header.org_number.replace(' ', '')}",
        f"#FNAMN {sie_text(header.company_name)}",
    ]
    for index, (start, end) in enumerate(header.fiscal_years):
        lines.append(f"#RAR {-index} {sie_date(start)} {sie_date(end)}")
    lines += [f"#KPTYP {header.chart_type}", f"#VALUTA {header.currency}"]
    for number, name in accounts:
        known.add(number)
        lines.append(f"#KONTO {number} {sie_text(name)}")
    out.write(sie_encode(EOL.join(lines) + EOL))
    written = 0
    batch: list[str] = []
    for verification in verifications:
        batch.append(_verification_text(verification, known))
        written += 1
        if len(batch) == 1000:
            out.write(sie_encode("".join(batch)))
            batch = []
    out.write(sie_encode("".join(batch)))
    return written


def _verification_text(verification: SieVerification, known: set[str]) -> str:
    if not verification.transactions:
        raise ValueError(f"{verification.text}: a verification without transactions")
    total = sum((row.amount for row in verification.transactions), ZERO)
    if total != ZERO:
        raise ValueError(f"{verification.text}: does not balance (off by {total})")
    registered = f" {sie_date(verification.registered_on)}" if verification.registered_on else ""
    lines = [
        f"#VER {verification.series} {sie_text(verification.number)} "
        f"{sie_date(verification.on)} {sie_text(verification.text)}{registered}",
        "{",
    ]
    for row in verification.transactions:
        if row.account not in known:
            raise ValueError(f"{verification.text}: account {row.account} is not declared")
        lines.append(f"#TRANS {row.account} {{}} {sie_amount(row.amount)}")
    lines.append("}")
    return EOL.join(lines) + EOL
