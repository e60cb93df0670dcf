"""Money: Decimal kronor with two places (öre). Every rounding in Touchpoint happens here.

Amounts are Decimal created from strings or ints, never floats.
"""

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

ORE = Decimal("0.01")
KRONA = Decimal("1")
ZERO = Decimal("0.00")


def quantize_ore(amount: Decimal) -> Decimal:
    """Round to whole öre, half-up (0.005 → 0.01): the rule for line amounts and VAT."""
    return amount.quantize(ORE, rounding=ROUND_HALF_UP)


def round_to_krona(amount: Decimal) -> Decimal:
    """Öresavrundning (lag 1970:1029): 1–49 öre down, 50–99 öre up, i.e. half-up to kronor.

    Only the amount payable is rounded; negative amounts round symmetrically.
    """
    return amount.quantize(KRONA, rounding=ROUND_HALF_UP).quantize(ORE)


def vat_included(gross: Decimal, rate: Decimal) -> Decimal:
    """The VAT inside a price that includes VAT, rounded half-up to öre."""
    return quantize_ore(gross * rate / (1 + rate))


def ceil_units(quantity: Decimal, unit: Decimal) -> int:
    """How many started units (of size ``unit``) cover ``quantity``: 4.2 GB in 1 GB → 5."""
    if quantity <= 0:
        return 0
    return int((quantity / unit).to_integral_value(rounding=ROUND_CEILING))


def format_amount(amount: Decimal, language: str = "sv") -> str:
    """'1 234,50' in Swedish, '1,234.50' in English, without the currency."""
    sign = "-" if amount < 0 else ""
    whole, _, frac = f"{abs(quantize_ore(amount)):.2f}".partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    if language == "sv":
        return f"{sign}{'\u00a0'.join(groups)},{frac}"
    return f"{sign}{','.join(groups)}.{frac}"


def money_sum(amount: Decimal | None) -> Decimal:
    """A sum of money as the database returned it, in kronor with two places (zero for no
    rows). PostgreSQL adds numerics exactly; SQLite adds them as floats (0.01 + 0.29 gives
    0.29999999999999998...), noise far below an öre: every amount is whole öre, so rounding
    to öre gives the exact sum back."""
    return ZERO if amount is None else quantize_ore(amount)
