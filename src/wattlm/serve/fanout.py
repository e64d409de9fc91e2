"""`n` choices of one prompt: independent sequences in the engine, one merged answer for the client.

Each choice is its own generation (with a seed, choice i uses seed + i, so a seeded request is
reproducible and its choices differ). The first choice starts alone and the others once it has read
the prompt: the batch engine can then copy that prompt's KV cache instead of reading it n times.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

from wattlm.engines.base import Engine
from wattlm.engines.params import GenerationChunk, Prompt, SamplingParams
from wattlm.serve.bridge import start_generation

_DONE = object()


def choice_params(params: SamplingParams, choice: int) -> SamplingParams:
    """The sampling settings of choice `choice` (0-based) of a request."""
    if params.seed is None or choice == 0:
        return params
    return dataclasses.replace(params, seed=(params.seed + choice) % 2**32)


async def start_choices(engine: Engine, prompt: Prompt, params: SamplingParams, n: int) -> list[AsyncIterator[GenerationChunk]]:
    """Start `n` generations of `prompt`; all or none (a failure closes the ones already started)."""
    first = await start_generation(engine, prompt, params)
    if n == 1:
        return [first]
    try:
        results = await asyncio.gather(
            *(start_generation(engine, prompt, choice_params(params, index)) for index in range(1, n)),
            return_exceptions=True,
        )
    except BaseException:  # cancelled (timeout, client gone): the first choice is already decoding
        await first.aclose()  # type: ignore[attr-defined]
        raise
    started = [first, *(result for result in results if not isinstance(result, BaseException))]
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        for generation in started:
            await generation.aclose()  # type: ignore[attr-defined]
        raise failures[0]
    return started


async def merge(generations: list[AsyncIterator[GenerationChunk]]) -> AsyncIterator[tuple[int, GenerationChunk]]:
    """(choice index, chunk) pairs in the order chunks arrive; closing the merge closes every generation."""
    if len(generations) == 1:  # n=1, nearly every request: no pump task and queue hop per token
        try:
            async for chunk in generations[0]:
                yield 0, chunk
        finally:
            await generations[0].aclose()  # type: ignore[attr-defined]
        return
    queue: asyncio.Queue[tuple[int, object]] = asyncio.Queue()

    async def pump(index: int, generation: AsyncIterator[GenerationChunk]) -> None:
        try:
            async for chunk in generation:
                await queue.put((index, chunk))
        except Exception as error:  # noqa: BLE001 -- handed to the consumer, which raises it
            await queue.put((index, error))
            return
        finally:
            await generation.aclose()  # type: ignore[attr-defined]
        await queue.put((index, _DONE))

    tasks = [asyncio.create_task(pump(index, generation)) for index, generation in enumerate(generations)]
    try:
        remaining = len(tasks)
        while remaining:
            index, item = await queue.get()
            if item is _DONE:
                remaining -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield index, item  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def collect(generation: AsyncIterator[GenerationChunk]) -> tuple[str, GenerationChunk]:
    """All text of a generation and its last chunk (finish reason and final counts)."""
    pieces: list[str] = []
    last: GenerationChunk | None = None
    try:
        async for chunk in generation:
            pieces.append(chunk.text)
            last = chunk
    finally:
        await generation.aclose()  # type: ignore[attr-defined]
    assert last is not None  # start_generation guarantees at least one chunk
    return "".join(pieces), last


async def collect_all(generations: list[AsyncIterator[GenerationChunk]]) -> list[tuple[str, GenerationChunk]]:
    """`collect` of every generation at once; if one fails, the others are closed."""
    tasks = [asyncio.ensure_future(collect(generation)) for generation in generations]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
