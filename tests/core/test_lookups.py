"""``AnyOf``: a batch of values as one array on PostgreSQL (its text when the values are all
integers or all strings), an IN list elsewhere; the same rows either way."""

import pytest
from django.db.models import F

from billing.models import Customer
from core.lookups import AnyOf, array_literal
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

AWKWARD = ['say "hi"', "back\\slash", "a,b", "{braces}", "NULL", "", "  blanks ", "Åsa Öberg"]


def test_strings_that_mean_something_in_an_array_are_matched_as_they_are() -> None:
    # given customers named with what an array's text form would otherwise misread
    for name in [*AWKWARD, "someone else"]:
        CustomerFactory(name=name)
    # then exactly those names are found, each once
    found = Customer.objects.filter(AnyOf(F("name"), AWKWARD)).values_list("name", flat=True)
    assert sorted(found) == sorted(AWKWARD)


def test_integers_and_other_values_find_the_same_rows() -> None:
    customers = [CustomerFactory() for _ in range(3)]
    ids = [customers[0].id, customers[2].id]
    assert set(Customer.objects.filter(AnyOf(F("id"), ids))) == {customers[0], customers[2]}
    numbers = [customers[1].customer_number]
    assert list(Customer.objects.filter(AnyOf(F("customer_number"), numbers))) == [customers[1]]
    assert not Customer.objects.filter(AnyOf(F("id"), []))


def test_the_array_text_quotes_every_string_and_leaves_mixed_values_to_the_driver() -> None:
    assert array_literal([1, 22, 333]) == ("{1,22,333}", "bigint")
    assert array_literal(["a", "b c"]) == ('{"a","b c"}', "text")
    assert array_literal(['x"y', "z\\"]) == ('{"x\\"y","z\\\\"}', "text")
    assert array_literal([1, "a"]) is None
    assert array_literal([True, 2]) is None  # (bool is not taken for an integer)
