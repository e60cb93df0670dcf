"""A large file made for one request (an export), sent as a download in blocks.

Under ASGI (production), Django reads a synchronous streaming response whole into memory
before sending it; an export of a large operator's month is hundreds of megabytes. So there
the blocks are read by an asynchronous iterator, one block at a time in a worker thread;
under WSGI (and the test client) a plain ``FileResponse`` streams it.
"""

from collections.abc import AsyncIterator
from typing import IO

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, HttpRequest, StreamingHttpResponse

BLOCK = 256 * 1024  # bytes read and sent at a time


async def _blocks(file: IO[bytes]) -> AsyncIterator[bytes]:
    read = sync_to_async(file.read, thread_sensitive=False)
    try:
        while block := await read(BLOCK):
            yield block
    finally:
        await sync_to_async(file.close, thread_sensitive=False)()


def download_response(
    request: HttpRequest, file: IO[bytes], *, filename: str, content_type: str
) -> StreamingHttpResponse:
    """``file`` (rewound; closed once sent) as an attachment named ``filename``."""
    size = file.seek(0, 2)
    file.seek(0)
    if isinstance(request, ASGIRequest):
        response = StreamingHttpResponse(_blocks(file), content_type=content_type)
    else:
        response = FileResponse(file, content_type=content_type)
        response.block_size = BLOCK
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Content-Length"] = str(size)
    return response
