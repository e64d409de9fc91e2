"""Run a blocking engine iterator in a worker thread and consume it from asyncio.

Engines block (a llama.cpp decode step holds the CPU for milliseconds); running them on the event loop
would freeze every other request, health checks included. One producer thread per request pushes
chunks into an asyncio queue as they are generated, so streaming clients see each token at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

from wattlm.engines import cancel
from wattlm.engines.base import Engine
from wattlm.engines.params import GenerationChunk, SamplingParams

T = TypeVar("T")

_END = object()


async def iterate_in_thread(make_iterator: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Yield the items of `make_iterator()`, which runs in its own thread.

    When the consumer stops early (client gone, task cancelled) the producer closes the iterator
    after its next item, which lets an engine abort the request and release its lock; an engine still
    waiting for its first item hears of it through `wattlm.engines.cancel.on_cancel`.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()
    # Also the work's cancel flag: an engine blocked waiting (a queued sequence) is woken by it at once.
    abandoned = cancel.CancelFlag()

    def send(item: object, error: BaseException | None = None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (item, error))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            abandoned.set()

    def produce() -> None:
        with cancel.cancel_scope(abandoned):
            produce_items()

    def produce_items() -> None:
        try:
            iterator = make_iterator()
            try:
                for item in iterator:
                    if abandoned.is_set():
                        break
                    send(item)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except BaseException as error:  # noqa: BLE001 -- handed to the consumer, re-raised there
            send(_END, error)
        else:
            send(_END)

    threading.Thread(target=produce, name="wattlm-generate", daemon=True).start()
    try:
        while True:
            item, error = await queue.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        abandoned.set()


async def start_generation(engine: Engine, prompt: str, params: SamplingParams) -> AsyncIterator[GenerationChunk]:
    """Start generating and wait for the first chunk.

    Engines validate the prompt before producing anything, so awaiting the first chunk here turns
    a bad request into an exception *before* a streaming response has sent its 200 status.
    """
    chunks = iterate_in_thread(lambda: engine.generate(prompt, params))
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        raise RuntimeError(f"engine '{engine.name}' ended without a final chunk") from None
    except BaseException:
        await chunks.aclose()
        raise

    async def replay() -> AsyncIterator[GenerationChunk]:
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

    return replay()
