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


def test_chat_socket_paths_are_masked_too() -> None:
    # uvicorn logs websocket handshakes through uvicorn.error
    line = '127.0.0.1:50000 - "WebSocket /ws/chat/Zx9-abcdefghijklmnopqrstuvwxyz012345/" [accepted]'
    assert mask_invoice_tokens(line) == '127.0.0.1:50000 - "WebSocket /ws/chat/[token]/" [accepted]'


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


@pytest.mark.parametrize(
    "name",
    [
        "django",
        "django.request",
        "django.server",
        "uvicorn.access",
        "gunicorn.access",
        "celery.app.trace",
        "invoices",
    ],
)
def test_every_logger_writes_through_the_masking_filter(name: str) -> None:
    # walk up the hierarchy as logging does, collecting the handlers a record reaches
    logger: logging.Logger | None = logging.getLogger(name)
    handlers: list[logging.Handler] = []
    while logger is not None:
        # (pytest's capturing handlers are not the product's; a NullHandler writes nothing)
        handlers.extend(
            h
            for h in logger.handlers
            if not type(h).__module__.startswith("_pytest")
            and not isinstance(h, logging.NullHandler)
        )
        logger = logger.parent if logger.propagate else None
    assert handlers, name
    for handler in handlers:
        assert any(isinstance(f, MaskInvoiceTokensFilter) for f in handler.filters), (
            name,
            handler,
        )


def test_a_not_found_warning_is_written_masked(client, capfd) -> None:
    # through the real LOGGING set-up: a 404 on an unknown route logs its path
    client.get("/i/Zx9-abcdefghijklmnopqrstuvwxyz012345/missing")
    err = capfd.readouterr().err
    assert "abcdefghij" not in err


@pytest.mark.django_db
def test_a_form_that_fails_the_csrf_check_gets_a_plain_page_and_changes_nothing() -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403
    assert "Försök igen" in response.content.decode()
    english = client.post("/admin/login/?lang=en", {"username": "x"})
    assert "nothing was changed" in english.content.decode()
