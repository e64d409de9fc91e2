"""Cancel a request's work when its client hangs up before the answer is ready.

A streaming response notices a departed client at its next write (Starlette listens for the
disconnect), but a non-streaming one computes the whole answer first: a client that gave up after a
second left its sequence decoding, holding a batch slot, for up to `max_tokens`. `unless_disconnected`
races the work against the ASGI `http.disconnect` message and cancels the work when that comes first:
generations are closed (the engine frees the slot), and pool jobs get their cancel flag.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from wattlm.errors import WattError

T = TypeVar("T")


class ClientGone(WattError):
    """The client disconnected before its answer was ready (logged, answered with 499 to nobody)."""


async def _disconnected(receive: Any) -> None:
    """Return once the client has hung up. Only called after the body was read: what is left is the disconnect."""
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return


async def unless_disconnected(work: Awaitable[T], receive: Any) -> T:
    """The result of `work`, or `ClientGone` (with `work` cancelled) if the client leaves first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)  # let the cancellation close generations
        raise ClientGone("the client disconnected before the answer was ready")
    finally:
        watcher.cancel()
        if not task.done():  # we were cancelled ourselves (the request timeout)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
