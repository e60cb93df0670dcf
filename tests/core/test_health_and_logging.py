import logging

import pytest

from core.logging import MaskInvoiceTokensFilter, mask_invoice_tokens


@pytest.mark.django_db
def test_healthz_answers_without_touching_the_database(client, django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_the_database(client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


@pytest.mark.django_db
def test_readyz_reports_an_unreachable_redis(client, settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["redis"].startswith("error")


def test_tokens_in_paths_are_masked() -> None:
    line = 'GET /i/Zx9-abcdefghijklmnopqrstuvwxyz012345/invoice.pdf HTTP/1.1" 200'
    assert mask_invoice_tokens(line) == 'GET /i/[token]/invoice.pdf HTTP/1.1" 200'


def test_the_log_filter_masks_tokens_in_formatted_records() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s "GET %s"',
        ("127.0.0.1", "/i/Zx9-abcdefghijklmnopqrstuvwxyz012345/"),
        None,
    )
    MaskInvoiceTokensFilter().filter(record)
    assert "abcdefghij" not in record.getMessage()
    assert "/i/[token]/" in record.getMessage()
