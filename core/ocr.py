"""OCR references (Bankgirot): digits only, 2–25 long, a length digit, then a Luhn check digit.

Touchpoint issues references "with length digit": the second-to-last digit is the total
length modulo 10, the last is the Luhn (mod 10) check digit over everything before it.
"""

from core.errors import DomainError

MAX_LENGTH = 25


# A digit doubled, its digits summed (the Luhn rule): 7 → 14 → 5.
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_check_digit(digits: str) -> int:
    """The mod-10 check digit that makes ``digits + check`` pass the Luhn test: from the
    right, every other digit doubled (a BgMax file checks one per payment, so by table and
    slices rather than digit by digit)."""
    doubled = sum(map(_DOUBLED.__getitem__, map(int, digits[::-1][::2])))
    return (10 - (doubled + sum(map(int, digits[-2::-2]))) % 10) % 10


def luhn_valid(digits: str) -> bool:
    return digits.isdigit() and luhn_check_digit(digits[:-1]) == int(digits[-1])


def ocr_build(base: str) -> str:
    """A reference from ``base`` digits: base + length digit + Luhn check digit."""
    if not base.isdigit():
        raise DomainError(code="ocr_invalid", message="An OCR base must be digits only.")
    length = len(base) + 2
    if length > MAX_LENGTH:
        raise DomainError(code="ocr_invalid", message="An OCR reference has at most 25 digits.")
    with_length = f"{base}{length % 10}"
    return f"{with_length}{luhn_check_digit(with_length)}"


def ocr_validate(reference: str, *, length_digit: bool = True) -> str:
    """Return the reference without spaces, or raise ``ocr_invalid`` naming what is wrong."""
    cleaned = reference.replace(" ", "")
    if not cleaned.isdigit():
        raise DomainError(code="ocr_invalid", message="An OCR reference holds digits only.")
    if not 2 <= len(cleaned) <= MAX_LENGTH:
        raise DomainError(code="ocr_invalid", message="An OCR reference has 2 to 25 digits.")
    if not luhn_valid(cleaned):
        raise DomainError(code="ocr_invalid", message="The OCR check digit is wrong.")
    if length_digit and int(cleaned[-2]) != len(cleaned) % 10:
        raise DomainError(code="ocr_invalid", message="The OCR length digit is wrong.")
    return cleaned
