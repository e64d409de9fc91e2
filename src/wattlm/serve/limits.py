"""Request caps: body size, `max_tokens`, and a per-request time limit.

- A body larger than `max_request_bytes` is refused with 413 before it is parsed (by Content-Length,
  or while reading a chunked body), so a client cannot make the server buffer arbitrary amounts.
- `max_tokens` above the server's cap is a 400 naming the field (default cap: the model's context).
- A request that runs longer than `request_timeout` seconds is aborted: its generation is closed (the
  engine frees its slot) and the client gets a 504, or, when the stream has started, an `error` event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from wattlm.errors import WattError

T = TypeVar("T")

DEFAULT_MAX_REQUEST_BYTES = 1 << 20  # 1 MiB
DEFAULT_REQUEST_TIMEOUT = 300.0  # seconds
DEFAULT_BODY_TIMEOUT = 30.0  # seconds to wait for each part of a request body


@dataclass(frozen=True)
class Limits:
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_tokens: int | None = None  # None: the model's context length
    request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT  # None: no limit


class ParameterTooLarge(WattError):
    """A request field above a server cap (HTTP 400, `param` names the field)."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


class RequestTimedOut(WattError):
    """The request ran longer than the server's request timeout (HTTP 504 / a stream error event)."""


def capped_max_tokens(requested: int | None, explicit: bool, param: str, limits: Limits, context_length: int) -> int | None:
    """The generation budget to use: 400 if the client asked for more than the cap; the server's cap
    (when one is configured) for requests that did not say."""
    cap = limits.max_tokens if limits.max_tokens is not None else context_length
    if explicit and requested is not None and requested > cap:
        raise ParameterTooLarge(f"{param} is {requested} but this server allows at most {cap}", param)
    if limits.max_tokens is not None:
        return cap if requested is None else min(requested, cap)
    return requested


def _timed_out(limits: Limits) -> RequestTimedOut:
    return RequestTimedOut(f"the request took longer than the server's limit of {limits.request_timeout:g} s; "
                           "ask for fewer tokens or a shorter prompt")


async def within_deadline(awaitable: Awaitable[T], deadline: float | None, limits: Limits) -> T:
    """Await `awaitable` until the monotonic `deadline`, else cancel it and raise `RequestTimedOut`.

    It runs in the caller's task under `asyncio.timeout_at` (one timer), not in `wait_for`, which on Python
    3.11 wraps the wait in a task of its own: a task per streamed token in `stream_within_deadline`.
    The loop's clock is `time.monotonic`, the clock of `deadline_for`."""
    if deadline is None:
        return await awaitable
    try:
        async with asyncio.timeout_at(deadline):
            return await awaitable
    except TimeoutError:
        raise _timed_out(limits) from None


async def stream_within_deadline(chunks: AsyncIterator[T], deadline: float | None, limits: Limits) -> AsyncIterator[T]:
    """The items of `chunks` until the deadline; then `RequestTimedOut` (closing `chunks` aborts the engine)."""
    try:
        while True:
            try:
                item = await within_deadline(anext(chunks), deadline, limits)
            except StopAsyncIteration:
                return
            yield item
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


def deadline_for(limits: Limits) -> float | None:
    return None if limits.request_timeout is None else time.monotonic() + limits.request_timeout


class BodySizeLimit:
    """ASGI middleware: 413 in OpenAI's error shape for bodies above `max_bytes`.

    The body is read (at most `max_bytes`) before the app sees it, then replayed; later `receive`
    calls (disconnect notices while streaming) go to the server as usual.
    """

    def __init__(self, app: Any, max_bytes: int, body_timeout: float = DEFAULT_BODY_TIMEOUT) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout = body_timeout  # seconds to wait for each part of the body (slow clients)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        body, more = bytearray(), True
        while more:
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except TimeoutError:
                # A client trickling its body would hold a connection (and its buffer) for ever.
                await _send_json(send, 408, {"error": {
                    "message": f"the request body did not arrive within {self.body_timeout:g} s",
                    "type": "invalid_request_error", "param": None, "code": "request_timeout"}})
                return
            if message["type"] != "http.request":  # the client left before sending its body
                await self.app(scope, _replay(message, receive), send)
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._refuse(send, None)
                return
        await self.app(scope, _replay({"type": "http.request", "body": bytes(body), "more_body": False}, receive), send)

    async def _refuse(self, send: Any, size: int | None) -> None:
        got = f" ({size} bytes)" if size is not None else ""
        payload = {"error": {"message": f"request body is too large{got}; the limit is {self.max_bytes} bytes",
                             "type": "invalid_request_error", "param": None, "code": "request_too_large"}}
        await _send_json(send, 413, payload)


async def _send_json(send: Any, status: int, payload: dict) -> None:
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def _replay(first: dict, receive: Any) -> Any:
    sent = False

    async def replayed() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return first
        return await receive()

    return replayed
