"""Server-sent events in OpenAI's dialect: `data: {json}` per chunk, then `data: [DONE]`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from wattlm.errors import WattError
from wattlm.serve.limits import RequestTimedOut
from wattlm.serve.protocol.common import ErrorInfo, ErrorResponse
from wattlm.serve.redact import without_paths

log = logging.getLogger(__name__)


def event_stream(chunks: AsyncIterator[BaseModel]) -> StreamingResponse:
    return StreamingResponse(_events(chunks), media_type="text/event-stream")


async def _events(chunks: AsyncIterator[BaseModel]) -> AsyncIterator[str]:
    try:
        async for chunk in chunks:
            yield f"data: {chunk.model_dump_json()}\n\n"
    except Exception as error:
        # The 200 status is already sent; the OpenAI clients raise on an `error` event, so the failure
        # reaches the caller instead of looking like a short answer.
        if isinstance(error, RequestTimedOut):
            info = ErrorInfo(message=str(error), type="server_error", code="request_timeout")
        elif isinstance(error, WattError):
            info = ErrorInfo(message=without_paths(str(error)), type="invalid_request_error")
        else:
            log.exception("generation failed mid-stream")
            info = ErrorInfo(message="internal error during generation", type="server_error")
        yield f"data: {ErrorResponse(error=info).model_dump_json()}\n\n"
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    yield "data: [DONE]\n\n"
