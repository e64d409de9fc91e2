"""What runs inside a replica: the engine the table builds, answering the ingress's handle calls.

`EngineReplica` is a plain class; `cluster.deploy` makes it a Serve deployment at run time (so importing
this module needs no Ray). Streams are async generators over `iterate_in_thread`, like the app's own
bridge: the engine's blocking iterator runs in a thread, and when the ingress cancels (client gone,
stall bound) the cancellation reaches the generator here, which closes the engine's iterator and frees
its batch slot. Sync methods run in Serve's thread pool.

With `--lora`, a replica also holds one engine per adapter over its base engine's weights (as the server
without replicas does); every call then names its engine with `model=` (None: the base), so adapters
share the base's replicas and Serve routes their requests by the same queue lengths.
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
    """One replica of a served model: `engine` (a row of `ENGINES`) over `source` with `settings`, and an
    engine per LoRA adapter of `adapters` ({model name: adapter file}) over the same weights."""

    def __init__(self, source: str, name: str, engine: str, settings: dict[str, Any],
                 adapters: dict[str, str] | None = None) -> None:
        from wattlm.engines.table import EngineSettings, engine_spec

        engine_settings = EngineSettings(**settings)
        self.engine = engine_spec(engine).build(Path(source), name, engine_settings)
        self.adapters: dict[str, Any] = {}
        try:
            for adapter, path in (adapters or {}).items():
                self.adapters[adapter] = adapter_engine(self.engine, Path(source), adapter, Path(path), engine_settings)
        except BaseException:
            self._close_engines()
            raise
        self.identity = replica_identity()

    def _engine(self, model: str | None) -> Any:
        """The engine a call names: the base (None), or an adapter's."""
        if model is None:
            return self.engine
        if model not in self.adapters:
            raise WattError(f"this replica serves no adapter '{model}' (it has: {', '.join(self.adapters) or 'none'})")
        return self.adapters[model]

    def describe(self, model: str | None = None) -> dict[str, Any]:
        """The engine's static facts, read once by the ingress (and per replica by `broadcast`)."""
        engine = self._engine(model)
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

    def load(self, model: str | None = None) -> dict[str, Any]:
        """Requests in this replica now and in total (for `broadcast`: per-replica figures)."""
        figures: dict[str, Any] = dict(self.identity)
        engine = self._engine(model)
        if supports(engine, Metered):
            figures.update(requests=engine.metrics.requests, running=engine.running, waiting=engine.waiting,
                           counters=engine.counters)
        return figures

    def figures(self, model: str | None = None) -> dict[str, Any]:
        """`load()` plus what the ingress's /metrics shows per replica: requests in flight in the engine and
        its latency histograms as plain data ({"buckets", "counts" (per bucket, +Inf last), "total"})."""
        figures = self.load(model)
        engine = self._engine(model)
        if supports(engine, Metered):
            metrics = engine.metrics
            figures.update(in_flight=metrics.in_flight,
                           **{name: {"buckets": list(histogram.buckets), "counts": list(histogram.counts),
                                     "total": histogram.total}
                              for name, histogram in (("ttft", metrics.ttft), ("itl", metrics.itl))})
        return figures

    async def generate(self, prompt: Prompt, params: SamplingParams, model: str | None = None) -> AsyncIterator[Any]:
        """This replica's identity, then the engine's chunks as they come."""
        from wattlm.serve.bridge import iterate_in_thread

        engine = self._engine(model)
        yield self.identity
        async for chunk in iterate_in_thread(lambda: engine.generate(prompt, params)):
            yield chunk

    def render_chat(self, messages: Sequence[ChatTurn], model: str | None = None) -> str:
        return self._engine(model).render_chat(messages)

    def tokenize(self, text: str, add_special: bool = True, model: str | None = None) -> list[int]:
        return self._engine(model).tokenize(text, add_special)

    def detokenize(self, tokens: Sequence[int], model: str | None = None) -> str:
        return self._engine(model).detokenize(tokens)

    def check_json(self, constraint: JsonConstraint, model: str | None = None) -> None:
        self._engine(model).check_json(constraint)

    def generate_with_logprobs(self, prompt: Prompt, params: SamplingParams, top_logprobs: int, echo: bool,
                               model: str | None = None):
        return self._engine(model).generate_with_logprobs(prompt, params, top_logprobs, echo)

    def embed(self, texts: Sequence[str], model: str | None = None) -> tuple[list[list[float]], int]:
        return self._engine(model).embed(texts)

    def _close_engines(self) -> None:
        """Adapters first: they hold shares of the base engine's weights."""
        adapters, self.adapters = getattr(self, "adapters", {}), {}
        engine, self.engine = getattr(self, "engine", None), None  # the garbage collector may call it again
        for adapter in adapters.values():
            adapter.close()
        if engine is not None:
            engine.close()

    def __del__(self) -> None:  # Serve calls it when it stops a replica gracefully (scale down, shutdown)
        self._close_engines()


def adapter_engine(base: Any, source: Path, name: str, adapter: Path, settings: Any) -> Any:
    """The batch engine serving LoRA `adapter` as model `name` over `base`'s weights: what `--lora` builds
    without replicas (`serve.launch.lora_loader`, which this module cannot import: launch deploys replicas)."""
    from wattlm.engines.batching.engine import LlamaCppBatchEngine

    return LlamaCppBatchEngine(source, n_ctx=settings.n_ctx, n_threads=settings.n_threads, name=name,
                               max_seqs=settings.max_seqs, max_waiting=settings.max_waiting, lora_path=adapter,
                               share_weights_with=base, flash_attn=settings.flash_attn)
