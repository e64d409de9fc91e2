"""What runs inside a replica: the engine the table builds, answering the ingress's handle calls.

`EngineReplica` is a plain class; `cluster.deploy` makes it a Serve deployment at run time (so importing
this module needs no Ray). Streams are async generators over `iterate_in_thread`, like the app's own
bridge: the engine's blocking iterator runs in a thread, and when the ingress cancels (client gone,
stall bound) the cancellation reaches the generator here, which closes the engine's iterator and frees
its batch slot. Sync methods run in Serve's thread pool.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from wattlm.engines.base import ChatTemplates, Metered, Vocabulary, capabilities_of, supports
from wattlm.engines.params import ChatTurn, JsonConstraint, Prompt, SamplingParams
from wattlm.errors import WattError

# A conversation rendered once in the replica and once in the ingress: when both agree, the ingress
# renders chat prompts itself (no round trip on the event loop for every chat request).
PROBE_CHAT = (ChatTurn(role="system", content="You are terse."), ChatTurn(role="user", content="Say hi."),
              ChatTurn(role="assistant", content="Hi."), ChatTurn(role="user", content="Again?"))


def replica_identity() -> dict[str, Any]:
    """This replica's id (Serve's unique id), process and host: what the ingress counts requests by."""
    from ray import serve

    return {"replica": serve.get_replica_context().replica_id.unique_id, "pid": os.getpid(),
            "host": socket.gethostname()}


class EngineReplica:
    """One replica of a served model: `engine` (a row of `ENGINES`) over `source` with `settings`."""

    def __init__(self, source: str, name: str, engine: str, settings: dict[str, Any]) -> None:
        from wattlm.engines.table import EngineSettings, engine_spec

        self.engine = engine_spec(engine).build(Path(source), name, EngineSettings(**settings))
        self.identity = replica_identity()

    def describe(self) -> dict[str, Any]:
        """The engine's static facts, read once by the ingress (and per replica by `broadcast`)."""
        engine = self.engine
        profile: dict[str, Any] = {**self.identity, "context_length": engine.context_length,
                                   "capabilities": capabilities_of(engine)}
        if supports(engine, ChatTemplates):
            profile["has_chat_template"] = engine.has_chat_template
            if engine.has_chat_template:
                try:
                    profile["probe_chat"] = engine.render_chat(PROBE_CHAT)
                except WattError:  # a template that refuses the probe (no system turn, say): replicas render
                    pass
        if supports(engine, Vocabulary):
            profile["tokenizer_info"] = engine.tokenizer_info()
        return profile

    def load(self) -> dict[str, Any]:
        """Requests in this replica now and in total (for `broadcast`: per-replica figures)."""
        figures: dict[str, Any] = dict(self.identity)
        if supports(self.engine, Metered):
            figures.update(requests=self.engine.metrics.requests, running=self.engine.running,
                           waiting=self.engine.waiting, counters=self.engine.counters)
        return figures

    def figures(self) -> dict[str, Any]:
        """`load()` plus what the ingress's /metrics shows per replica: requests in flight in the engine and
        its latency histograms as plain data ({"buckets", "counts" (per bucket, +Inf last), "total"})."""
        figures = self.load()
        if supports(self.engine, Metered):
            metrics = self.engine.metrics
            figures.update(in_flight=metrics.in_flight,
                           **{name: {"buckets": list(histogram.buckets), "counts": list(histogram.counts),
                                     "total": histogram.total}
                              for name, histogram in (("ttft", metrics.ttft), ("itl", metrics.itl))})
        return figures

    async def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncIterator[Any]:
        """This replica's identity, then the engine's chunks as they come."""
        from wattlm.serve.bridge import iterate_in_thread

        yield self.identity
        async for chunk in iterate_in_thread(lambda: self.engine.generate(prompt, params)):
            yield chunk

    def render_chat(self, messages: Sequence[ChatTurn]) -> str:
        return self.engine.render_chat(messages)

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return self.engine.tokenize(text, add_special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self.engine.detokenize(tokens)

    def check_json(self, constraint: JsonConstraint) -> None:
        self.engine.check_json(constraint)

    def generate_with_logprobs(self, prompt: Prompt, params: SamplingParams, top_logprobs: int, echo: bool):
        return self.engine.generate_with_logprobs(prompt, params, top_logprobs, echo)

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        return self.engine.embed(texts)

    def __del__(self) -> None:  # Serve calls it when it stops a replica gracefully (scale down, shutdown)
        engine, self.engine = getattr(self, "engine", None), None  # and the garbage collector may call it again
        if engine is not None:
            engine.close()

