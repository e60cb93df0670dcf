"""Every operation of the API shows integrators an example: of what to send (an operation
that takes a body) and of what comes back when it goes well."""

import pytest
from drf_spectacular.generators import SchemaGenerator

METHODS = {"get", "post", "patch", "put", "delete"}
# served as files, not JSON: their answers are the file itself
FILES = {("/api/v1/invoices/{invoice_id}/pdf/", "get"), ("/api/v1/accounting/sie/", "get")}


def _operations() -> list[tuple[str, str, dict]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (path, method, operation)
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in operations.items()
        if method in METHODS
    ]


def _has_examples(content: dict) -> bool:
    return any("examples" in body or "example" in body for body in content.values())


@pytest.mark.parametrize(
    ("path", "method", "operation"),
    [pytest.param(*found, id=f"{found[1].upper()} {found[0]}") for found in _operations()],
)
def test_every_operation_has_examples(path: str, method: str, operation: dict) -> None:
    if "requestBody" in operation:
        assert _has_examples(operation["requestBody"]["content"]), "no example of the request"
    if (path, method) in FILES:
        return
    succeeded = [
        answer
        for code, answer in operation["responses"].items()
        if code.startswith("2") and answer.get("content")
    ]
    assert succeeded, "no answer of success described"
    assert any(_has_examples(answer["content"]) for answer in succeeded), "no example answer"


def test_every_operation_has_a_name_of_its_own() -> None:
    """Generated clients name their methods by the operation ids: no two alike, no "_2"."""
    ids = [operation["operationId"] for _path, _method, operation in _operations()]
    assert len(ids) == len(set(ids))
    assert not [name for name in ids if name.endswith("_2")]
