"""The ingress side: a model served by Serve replicas, as the `Engine` interface the app already uses.

`replicated_engine` builds a `ReplicatedEngine` with exactly the capabilities the replicas' engine has
(a class per set of capabilities, so `isinstance(engine, Scoring)` is as true or false as for the engine
itself). Generation goes through Serve's streaming handle: each chunk reaches the client as the replica
produces it. The static facts (context length, tokenizer info, whether there is a chat template) are read
once from a replica; chat prompts are rendered here when the template renders a probe conversation exactly
as the replica's engine does (the app renders on its event loop, where a Ray round trip would stall every
other request), otherwise by a call to a replica.

`Metered` figures are the ingress's view: requests, latencies as the ingress receives the tokens,
requests waiting for their first token (queued at Serve's router or in a replica) and those decoding,
and token totals from each answer's counts. `replica_counts` gives requests per replica as routed here;
`replica_figures` asks every replica for its own engine's figures (the per-replica series of /metrics).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from wattlm.engines import cancel
from wattlm.engines.metrics import EngineMetrics
from wattlm.engines.params import ChatTurn, GenerationChunk, JsonConstraint, Prompt, SamplingParams, TokenizerInfo
from wattlm.serve.replicas.errors import replica_error
from wattlm.serve.replicas.options import ReplicaSettings
from wattlm.serve.replicas.stall import StallWatcher


class ReplicaBook:
    """Requests per replica, as Serve routed them: total, in flight, and failed (ended without their last
    chunk: an error, or a client that left)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replicas: dict[str, dict[str, Any]] = {}

    def started(self, identity: dict[str, Any]) -> None:
        with self._lock:
            row = self._replicas.setdefault(identity["replica"], {"pid": identity["pid"], "host": identity["host"],
                                                                  "requests": 0, "in_flight": 0, "failed": 0})
            row["requests"] += 1
            row["in_flight"] += 1

    def ended(self, identity: dict[str, Any], failed: bool) -> None:
        with self._lock:
            row = self._replicas[identity["replica"]]
            row["in_flight"] -= 1
            row["failed"] += int(failed)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {replica: dict(row) for replica, row in self._replicas.items()}


class ReplicatedEngine:
    """One model, answered by the replicas of its Serve deployment behind `handle`; with `adapter`, the
    engine of that LoRA adapter that each replica holds beside the base (every call names it)."""

    def __init__(self, handle: Any, name: str, profile: dict[str, Any], settings: ReplicaSettings,
                 on_close: Callable[[], None] | None = None, adapter: str | None = None) -> None:
        self._handle, self._streams = handle, handle.options(stream=True)
        self._name, self._profile, self._settings, self._on_close = name, profile, settings, on_close
        self._target: dict[str, str] = {"model": adapter} if adapter is not None else {}
        self._stall = StallWatcher(settings.stall_timeout)
        self._calls = ThreadPoolExecutor(max_workers=4, thread_name_prefix="wattlm-replica-call")
        self._lock = threading.Lock()
        self._waiting = self._running = 0
        self._totals = {"prompt_tokens": 0, "generated_tokens": 0}
        self.book = ReplicaBook()
        self.metrics = EngineMetrics()

    # ---- the Engine core ----

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_length(self) -> int:
        return self._profile["context_length"]

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return self._call("tokenize", text, add_special)

    def generate(self, prompt: Prompt, params: SamplingParams) -> Iterator[GenerationChunk]:
        response = self._send(self._streams.generate, prompt, params)
        watch = self._stall.watch(response.cancel)
        unwatch = cancel.on_cancel(watch.cancel_soon)  # client gone while this thread waits for a chunk
        identity, finished, failed, last = None, False, True, None
        self.metrics.started()
        self._count(waiting=1)
        chunks = iter(response)
        try:
            while True:
                try:
                    item = next(chunks)
                except StopIteration:
                    break
                except Exception as error:  # noqa: BLE001 -- mapped to the app's errors, or re-raised as it is
                    raise replica_error(error, self._name, watch.stalled_after) from error
                watch.touch()
                if identity is None:  # the replica's identity comes first, before the engine is asked
                    identity = item
                    self.book.started(identity)
                    continue
                now = time.monotonic()
                self.metrics.token(now - (last or watch.started), first=last is None)
                if last is None:
                    self._count(waiting=-1, running=1)
                last = now
                if item.finish_reason is not None:
                    finished = True
                    with self._lock:
                        self._totals["prompt_tokens"] += item.prompt_tokens
                        self._totals["generated_tokens"] += item.completion_tokens
                yield item
            failed = not finished
        finally:
            watch.stop()
            unwatch()
            if not finished:  # closed early (client gone, error): free the replica's slot
                watch.run_cancel()
            self._count(waiting=-1 if last is None else 0, running=0 if last is None else -1)
            if identity is not None:
                self.book.ended(identity, failed)
            self.metrics.ended()

    def adapter(self, name: str) -> ReplicatedEngine:
        """The ingress engine of LoRA adapter `name`, deployed with this model (`ReplicaCluster.deploy`'s
        `adapters`): the same replicas and handle, its own figures."""
        response = self._send(self._handle.describe, model=name)
        try:
            profile = response.result(timeout_s=self._settings.call_timeout)
        except Exception as error:  # noqa: BLE001 -- e.g. no such adapter in the replicas
            raise replica_error(error, name) from error
        return replicated_engine(self._handle, name, profile, self._settings, adapter=name)

    def close(self) -> None:
        self._stall.close()
        self._calls.shutdown(wait=False)
        if self._on_close is not None:
            self._on_close()

    # ---- Metered: the ingress's view ----

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._totals)

    # ---- per replica ----

    def replica_counts(self) -> dict[str, dict[str, Any]]:
        """Requests per replica id as routed so far: pid, host, requests, in_flight, failed."""
        return self.book.snapshot()

    def replicas(self) -> list[dict[str, Any]]:
        """Every running replica's identity and load, asked of each (Serve's broadcast); a replica that does
        not answer in time is left out."""
        results = self._handle.broadcast("load", **self._target).results(
            timeout_s=self._settings.call_timeout, return_exceptions=True)
        return [row for row in results if isinstance(row, dict)]

    def replica_figures(self) -> tuple[list[dict[str, Any]], int]:
        """(each replica's `figures()`, how many of the `replicas` asked for did not answer), asked of every
        running replica at once and waited for at most `metrics_timeout` seconds in all. A replica misses
        when it is dead or not started yet, or when all its slots are taken (Serve queues the call behind
        them): /metrics must come back in time all the same."""
        try:
            results = self._handle.broadcast("figures", **self._target).results(
                timeout_s=self._settings.metrics_timeout, return_exceptions=True)
        except Exception:  # noqa: BLE001 -- no replica reachable in time (deployment gone or restarting)
            results = []
        answered = [row for row in results if isinstance(row, dict)]
        return answered, max(0, self._settings.replicas - len(answered))

    # ---- plumbing ----

    def _send(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method.remote(*args, **{**self._target, **kwargs})
        except Exception as error:  # noqa: BLE001 -- e.g. the deployment is gone: mapped like a failed answer
            raise replica_error(error, self._name) from error

    def _count(self, waiting: int = 0, running: int = 0) -> None:
        with self._lock:
            self._waiting += waiting
            self._running += running

    def _call(self, method: str, *args: Any) -> Any:
        """A one-shot call to some replica, bounded by `call_timeout`, cancelled with its request."""
        response = self._send(getattr(self._handle, method), *args)
        watch = self._stall.watch(response.cancel)
        unwatch = cancel.on_cancel(watch.cancel_soon)
        try:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return response.result(timeout_s=self._settings.call_timeout)
            # On the event loop (the app renders chat prompts there): Ray refuses to block a loop, so the
            # wait happens in a helper thread; the loop is held for one round trip, as a local render would.
            return self._calls.submit(lambda: response.result(timeout_s=self._settings.call_timeout)).result()
        except Exception as error:  # noqa: BLE001 -- mapped to the app's errors, or re-raised as it is
            watch.cancel_soon()
            raise replica_error(error, self._name, watch.stalled_after) from error
        finally:
            watch.stop()
            unwatch()


# ---- capabilities: one mixin each, added when the replicas' engine has it ----


class _ScoringClient:
    def generate_with_logprobs(self, prompt: Prompt, params: SamplingParams, top_logprobs: int, echo: bool):
        return self._call("generate_with_logprobs", prompt, params, top_logprobs, echo)


class _EmbeddingsClient:
    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        return self._call("embed", list(texts))


class _ChatTemplatesClient:
    @property
    def has_chat_template(self) -> bool:
        return self._profile.get("has_chat_template", False)

    def render_chat(self, messages: Sequence[ChatTurn]) -> str:
        local = self._profile.get("local_template")
        return local.render(messages) if local is not None else self._call("render_chat", list(messages))


class _VocabularyClient:
    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._call("detokenize", list(tokens))

    def tokenizer_info(self) -> TokenizerInfo:
        return self._profile["tokenizer_info"]


class _JsonOutputClient:
    def check_json(self, constraint: JsonConstraint) -> None:
        self._call("check_json", constraint)


_MIXINS = {"Scoring": _ScoringClient, "Embeddings": _EmbeddingsClient, "ChatTemplates": _ChatTemplatesClient,
           "Vocabulary": _VocabularyClient, "JsonOutput": _JsonOutputClient}
_CLASSES: dict[tuple[str, ...], type] = {}


def engine_class(capabilities: Sequence[str]) -> type:
    """`ReplicatedEngine` with the mixins of `capabilities` (names from `capabilities_of`); Metered always."""
    key = tuple(sorted(name for name in capabilities if name in _MIXINS))
    if key not in _CLASSES:
        _CLASSES[key] = type("ReplicatedEngine", (ReplicatedEngine, *(_MIXINS[name] for name in key)), {})
    return _CLASSES[key]


def local_template(profile: dict[str, Any], name: str):
    """A `ChatTemplate` rendering here exactly what the replica renders, or None (then replicas render)."""
    from wattlm.engines.chat_template import ChatTemplate
    from wattlm.errors import WattError
    from wattlm.serve.replicas.deployment import PROBE_CHAT

    info, probe = profile.get("tokenizer_info"), profile.get("probe_chat")
    if info is None or probe is None or not info.chat_template:
        return None
    try:
        template = ChatTemplate(info.chat_template, info.bos_token or "", info.eos_token or "", name)
        return template if template.render(PROBE_CHAT) == probe else None
    except (WattError, ImportError):
        return None


def replicated_engine(handle: Any, name: str, profile: dict[str, Any], settings: ReplicaSettings,
                      on_close: Callable[[], None] | None = None, adapter: str | None = None) -> ReplicatedEngine:
    """The engine of model `name` served by `handle`'s deployment; `profile` is a replica's `describe()`
    (of the engine of `adapter`, when given)."""
    profile = {**profile, "local_template": local_template(profile, name)}
    return engine_class(profile["capabilities"])(handle, name, profile, settings, on_close, adapter)
