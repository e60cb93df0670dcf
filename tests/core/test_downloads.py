"""A large file made for one request is sent in blocks: under ASGI from an asynchronous
iterator (Django would read a synchronous one whole into memory first), under WSGI as a
file."""

import asyncio
import tempfile

from django.test import AsyncRequestFactory, RequestFactory

from core.downloads import BLOCK, download_response


def spooled(size: int) -> tempfile.SpooledTemporaryFile[bytes]:
    made = tempfile.SpooledTemporaryFile(max_size=1024)  # noqa: SIM115 (the response closes it)
    made.write(b"x" * size)
    made.seek(0)
    return made


def test_under_asgi_the_file_goes_block_by_block_and_is_closed_once_sent() -> None:
    made = spooled(BLOCK * 2 + 5)
    response = download_response(
        AsyncRequestFactory().get("/"), made, filename="a.se", content_type="text/plain"
    )
    assert response.is_async
    assert response["Content-Length"] == str(BLOCK * 2 + 5)
    assert response["Content-Disposition"] == 'attachment; filename="a.se"'

    async def received() -> list[bytes]:
        return [block async for block in response]

    assert [len(block) for block in asyncio.run(received())] == [BLOCK, BLOCK, 5]
    assert made.closed


def test_under_wsgi_it_is_a_file_response() -> None:
    made = spooled(10)
    response = download_response(
        RequestFactory().get("/"), made, filename="b.se", content_type="text/plain"
    )
    assert not response.is_async
    assert b"".join(response) == b"x" * 10
    assert response["Content-Length"] == "10"
