from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import DomainError
from core.money import format_amount, quantize_ore, round_to_krona, vat_included
from core.ocr import luhn_check_digit, luhn_valid, ocr_build, ocr_validate


@pytest.mark.parametrize(
    ("amount", "rounded"),
    [
        ("412.49", "412.00"),
        ("412.50", "413.00"),
        ("412.99", "413.00"),
        ("-0.50", "-1.00"),
        ("-0.49", "0.00"),
    ],
)
def test_oresavrundning_rounds_49_down_and_50_up(amount: str, rounded: str) -> None:
    assert round_to_krona(Decimal(amount)) == Decimal(rounded)


def test_vat_rounds_half_up_to_ore() -> None:
    assert quantize_ore(Decimal("0.125")) == Decimal("0.13")
    assert vat_included(Decimal("299.00"), Decimal("0.25")) == Decimal("59.80")


def test_amounts_are_formatted_per_language() -> None:
    assert format_amount(Decimal("1234.5"), "sv") == "1\u00a0234,50"
    assert format_amount(Decimal("-1234567.5"), "en") == "-1,234,567.50"


def test_luhn_known_number() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def test_ocr_has_length_and_check_digit() -> None:
    # base 100001 → 8 digits: length digit 8, then the Luhn digit over "1000018"
    reference = ocr_build("100001")
    assert reference.startswith("1000018")
    assert len(reference) == 8
    assert ocr_validate(reference) == reference


# "10000099": Luhn-valid, but its length digit says 9 where it is 8 long
@pytest.mark.parametrize(
    ("reference", "why"),
    [
        ("12a4", "digits only"),
        ("1", "2 to 25"),
        ("10000181", "check digit"),
        ("1000009" + str(luhn_check_digit("1000009")), "length digit"),
    ],
)
def test_bad_ocr_references_are_refused_with_the_reason(reference: str, why: str) -> None:
    with pytest.raises(DomainError, match=why):
        ocr_validate(reference)


@given(st.integers(min_value=0, max_value=10**20))
def test_every_built_reference_validates(base: int) -> None:
    reference = ocr_build(str(base))
    assert ocr_validate(reference) == reference
