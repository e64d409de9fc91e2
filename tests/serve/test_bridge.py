"""The thread bridge: items arrive in order, errors surface, and an abandoned stream stops its engine."""

from __future__ import annotations

import asyncio
import threading

import pytest

from wattlm.engines.base import PromptTooLong
from wattlm.engines.params import SamplingParams
from wattlm.serve.bridge import iterate_in_thread, start_generation

from .fakes import FakeEngine


def test_items_arrive_in_order_from_another_thread():
    caller = threading.get_ident()
    seen_threads = []

    def numbers():
        for number in range(5):
            seen_threads.append(threading.get_ident())
            yield number

    async def collect():
        return [item async for item in iterate_in_thread(numbers)]

    assert asyncio.run(collect()) == [0, 1, 2, 3, 4]
    assert caller not in seen_threads


def test_an_abandoned_stream_closes_the_engine_iterator():
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield "token"
        finally:
            closed.set()

    async def take_three():
        stream = iterate_in_thread(endless)
        taken = [await anext(stream) for _ in range(3)]
        await stream.aclose()
        return taken

    assert asyncio.run(take_three()) == ["token"] * 3
    assert closed.wait(timeout=10)


def test_prompt_errors_raise_before_the_first_chunk():
    engine = FakeEngine(context_length=2)

    async def start():
        await start_generation(engine, "far too long a prompt", SamplingParams())

    with pytest.raises(PromptTooLong):
        asyncio.run(start())
