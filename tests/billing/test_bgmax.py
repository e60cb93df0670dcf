"""Reading BgMax files: Bankgirot's own examples as banks deliver them, and files made here
that break one rule each. Nothing is booked from a file that does not add up."""

from dataclasses import asdict
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.bgmax import BgMaxError, bgmax_parse
from core.ocr import ocr_build
from tests.billing.bgmax_files import Deposit, File, Paid, bgmax_file
from tests.conftest import shared_fixture

# file: (deposits' amounts in öre, payments and deductions per deposit), read off the files
# by hand (each deposit's TK15 agrees)
EXAMPLES = {
    "2xic_bangiroinbetalningar_exempelfil_avtalutantillval_kontroller_sv.txt": ([85000], [5]),
    "2xic_bankgiroinbetalningar_avtal-ocr-kontroll_utokad-blankettregistrering-ocr-kontroll_"
    "exempelfil.txt": ([370000, 200000, 290000], [2, 1, 4]),
    "2xic_bankgiroinbetalningar_bildfil_avtal-ocr-kontroll_utokad-blankettregistrering-ocr-"
    "kontroll_exempelfil.txt": ([353300], [6]),
    "2xic_bankgiroinbetalningar_exempelfil_avtal-om-ocr-kontroll_sv.txt": ([210000], [4]),
    "bankgirot_exempelfil_ocr-kontroll__treesitter.txt": ([190000, 800000], [3, 4]),
    "bankgirot_exempelfil_ocr-kontroll_checksiffra_langd__fabhed.txt": ([190000, 800000], [3, 4]),
    "pybgmax_multipayment.txt": ([70000], [4]),
    "zimpler_BgMaxfil4.txt": ([370000, 200000, 290000, 400000], [2, 1, 4, 2]),
}


def example(name: str) -> bytes:
    return shared_fixture("bgmax", name).read_bytes()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_file_is_read_whatever_its_bytes(name: str) -> None:
    amounts, counts = EXAMPLES[name]
    parsed = bgmax_parse(example(name))
    assert [d.amount_ore for d in parsed.deposits] == amounts
    assert [len(d.payments) for d in parsed.deposits] == counts
    assert parsed.test is False
    for deposit in parsed.deposits:
        assert deposit.currency in {"SEK", "EUR"}
        assert deposit.payment_date.year >= 2004


def test_a_file_with_a_deduction_takes_it_off_its_deposit() -> None:
    parsed = bgmax_parse(example("bankgirot_exempelfil_ocr-kontroll__treesitter.txt"))
    first = parsed.deposits[0]
    # 1 000 kr + 1 400 kr paid, 500 kr deducted: a deposit of 1 900 kr
    assert [(p.deduction, p.amount_ore) for p in first.payments] == [
        (False, 100000),
        (True, 50000),
        (False, 140000),
    ]
    assert first.payment_date == date(2004, 5, 25)
    assert first.payments[0].ocr == "655969"
    assert first.payments[0].name == "Kalles Plåt AB"
    assert len(first.payments[2].extra_references) == 4


def test_the_latin_1_crlf_copy_with_a_tab_reads_as_its_utf_8_original() -> None:
    original = bgmax_parse(example("bankgirot_exempelfil_ocr-kontroll__treesitter.txt"))
    copy = bgmax_parse(example("bankgirot_exempelfil_ocr-kontroll_checksiffra_langd__fabhed.txt"))
    assert asdict(copy) == asdict(original)


def test_a_reference_marked_ocr_that_fails_its_check_digit_matches_nothing() -> None:
    parsed = bgmax_parse(example("pybgmax_multipayment.txt"))
    first = parsed.payments[0]
    assert (first.reference, first.reference_code, first.ocr) == ("65598", 2, "")
    # this file is UTF-8 (the others ISO-8859-1), and says "PlÂt": read as Latin-1 it would
    # be "PlÃ\x82t"
    assert first.name == "Kalles PlÂt AB"


def test_the_broken_example_is_refused_saying_which_counts_are_wrong() -> None:
    with pytest.raises(BgMaxError) as refused:
        bgmax_parse(example("zimpler_BgMaxfil4_broken.txt"))
    assert refused.value.code == "bgmax_invalid"
    assert refused.value.message == (
        "Record 67: The end record's counts do not match the file (payments: the end record "
        "says 8, the file holds 9; deposits: the end record says 5, the file holds 4)."
    )


# --- files made here -----------------------------------------------------------------------


def one_deposit(**deposit: object) -> File:
    payments = [Paid(29900, ocr_build("1001")), Paid(19950, ocr_build("1002"), name="Anna")]
    return File([Deposit(payments, **deposit)])  # type: ignore[arg-type]


def test_a_made_file_reads_back_with_its_figures() -> None:
    parsed = bgmax_parse(bgmax_file(one_deposit(), line_break="\n", encoding="utf-8"))
    (deposit,) = parsed.deposits
    assert (deposit.amount_ore, deposit.count, deposit.payee_bankgiro) == (49850, 2, "0009912346")
    assert [p.ocr for p in deposit.payments] == [ocr_build("1001"), ocr_build("1002")]
    assert deposit.payments[1].name == "Anna"


@pytest.mark.parametrize(
    ("made", "message"),
    [
        (
            one_deposit(amount_ore=49851),
            "Record 6: The deposit's amount is 498,51 kr, its payments add up to 498,50 kr.",
        ),
        (one_deposit(count=3), "Record 6: The deposit says 3 payments, it holds 2."),
        (
            File(one_deposit().deposits, counts=(2, 0, 0, 2)),
            "Record 7: The end record's counts do not match the file (deposits: the end record "
            "says 2, the file holds 1).",
        ),
    ],
)
def test_a_file_that_does_not_add_up_is_refused(made: File, message: str) -> None:
    with pytest.raises(BgMaxError) as refused:
        bgmax_parse(bgmax_file(made))
    assert refused.value.message == message


def records(made: File) -> list[str]:
    return bgmax_file(made).decode("iso-8859-1").split("\r\n")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r[:-1], "The file has no end record (TK70): it may be cut short."),
        (lambda r: [r[0], r[2], *r[1:2], *r[3:]], "Record 2: A TK20 record outside a deposit"),
        (lambda r: [*r[:3], "99".ljust(80), *r[3:]], "Record 4: Unknown record type '99'."),
        (
            lambda r: [*r[:2], r[2][:40] + "x" + r[2][41:], *r[3:]],
            "Record 3: The amount (positions 38–55) is not a number.",
        ),
        (lambda r: [*r[:2], r[2] + "x", *r[3:]], "Record 3: 81 characters"),
        (lambda r: ["02" + r[0][2:], *r[1:]], "Record 1: This is not a BgMax file"),
        (lambda r: [*r, r[-1]], "Record 8: Records after the end record (TK70)."),
        (lambda r: [*r[:5], r[1], *r[5:]], "Record 6: A deposit opens before the last one"),
    ],
)
def test_a_file_out_of_shape_is_refused_naming_the_record(change, message: str) -> None:
    data = "\r\n".join(change(records(one_deposit()))).encode("iso-8859-1")
    with pytest.raises(BgMaxError) as refused:
        bgmax_parse(data)
    assert refused.value.message.startswith(message)


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(BgMaxError, match=r"The file is empty\."):
        bgmax_parse(b"\r\n\r\n")


def test_a_test_file_says_so() -> None:
    assert bgmax_parse(bgmax_file(File(one_deposit().deposits, mark="T"))).test is True


amounts = st.integers(min_value=1, max_value=10**11)
paid = st.builds(
    Paid,
    amount_ore=amounts,
    reference=st.integers(min_value=1, max_value=10**20).map(lambda n: ocr_build(str(n))),
    deduction=st.booleans(),
)
deposits = st.lists(
    st.builds(Deposit, payments=st.lists(paid, min_size=1, max_size=5)).filter(
        # a deposit is never negative: its deductions come off payments in it
        lambda d: sum(-p.amount_ore if p.deduction else p.amount_ore for p in d.payments) >= 0
    ),
    min_size=1,
    max_size=4,
)


@given(deposits=deposits, line_break=st.sampled_from(["\r\n", "\n", ""]))
def test_what_a_file_says_is_what_is_read_and_each_deposit_adds_up(
    deposits: list[Deposit], line_break: str
) -> None:
    parsed = bgmax_parse(bgmax_file(File(deposits), line_break=line_break))
    assert [[(p.amount_ore, p.ocr, p.deduction) for p in d.payments] for d in parsed.deposits] == [
        [(p.amount_ore, p.reference, p.deduction) for p in d.payments] for d in deposits
    ]
    for deposit in parsed.deposits:
        signed = sum(-p.amount_ore if p.deduction else p.amount_ore for p in deposit.payments)
        assert deposit.amount_ore == signed
