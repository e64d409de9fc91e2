"""The models one server answers for: engines keyed by the id clients send, loaded and unloaded on demand.

A model is served either by an engine built before the app (always loaded), or by a *loader* (a
function that builds its engine). Loaded models whose last request ended more than `keep_alive`
seconds ago are unloaded (their engine closed, its memory freed) and loaded again by the next request
for them. With `discover`, a model id that is not served yet is looked up (in the registry) and
loaded on first use; an id not found is not looked up again for `MISS_SECONDS`. With `max_loaded`, at
most that many models loaded on demand stay loaded: loading one more unloads the least recently used
idle one first.

Routes get a `PooledEngine`: the `Engine` interface over whichever engine is loaded, counting the
calls and generations in flight, so a model is never unloaded under a running request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from wattlm.engines.base import Engine, EngineOverloaded
from wattlm.errors import NotFound, WattError
from wattlm.serve.protocol.common import ModelCard, now
from wattlm.serve.workers import current_pools

log = logging.getLogger(__name__)

MISS_SECONDS = 5.0  # an unknown model id is not looked up again for this long
MAX_REMEMBERED_MISSES = 1024

Loader = Callable[[], Engine]
Discover = Callable[[str], "tuple[Loader, Mapping[str, Any]] | None"]  # model id -> (loader, card) or None


class _Entry:
    """One served model: its card, its engine when loaded, and how busy it is."""

    def __init__(self, model_id: str, card: ModelCard, engine: Engine | None, load: Loader | None, clock,
                 loading: Callable[[_Entry], Any] | None = None) -> None:
        self.model_id, self.card, self.engine, self.load = model_id, card, engine, load
        self.active = 0  # calls and generations in flight
        self.last_used = clock()
        self.lock = threading.Lock()  # one load or unload at a time
        self._clock = clock
        self._loading = loading  # a context manager around a load: makes room under the cap on loaded models

    def acquire(self) -> Engine:
        with self.lock:
            if self.engine is None:
                assert self.load is not None  # an entry without a loader is never unloaded
                with self._loading(self) if self._loading is not None else nullcontext():
                    log.info("loading model %s", self.model_id)
                    try:
                        self.engine = self.load()
                    except WattError as error:  # the client sees the model id; paths are cut (serve.redact)
                        error.args = (f"cannot load model '{self.model_id}': {error}",)  # same class, same status
                        raise
            self.active += 1
            self.last_used = self._clock()
            return self.engine

    def release(self) -> None:
        with self.lock:
            self.active -= 1
            self.last_used = self._clock()

    def unload_if_idle(self, keep_alive: float) -> bool:
        with self.lock:
            if self.engine is None or self.load is None or self.active or self._clock() - self.last_used < keep_alive:
                return False
            engine, self.engine = self.engine, None
        log.info("unloading model %s after %.0f s idle", self.model_id, keep_alive)
        engine.close()
        return True

    def evict(self) -> bool:
        """Unload now if loaded on demand and idle; False if busy (in use, or being loaded/unloaded)."""
        if not self.lock.acquire(blocking=False):
            return False
        try:
            if self.engine is None or self.load is None or self.active:
                return False
            engine, self.engine = self.engine, None
        finally:
            self.lock.release()
        log.info("unloading model %s: least recently used beyond the cap on loaded models", self.model_id)
        engine.close()
        return True


class PooledEngine:
    """The `Engine` interface of a served model; loads it when needed, counts work in flight.

    It forwards every capability's methods; `supports` says which ones the loaded engine really has
    (serving asks `wattlm.engines.base.supports`, which defers to it).
    """

    def __init__(self, entry: _Entry) -> None:
        self._entry = entry

    @contextmanager
    def _using(self) -> Iterator[Engine]:
        engine = self._entry.acquire()
        try:
            yield engine
        finally:
            self._entry.release()

    def load(self) -> None:
        """Load the model now if it is not (blocking)."""
        with self._using():
            pass

    def supports(self, capability: type) -> bool:
        with self._using() as engine:
            return isinstance(engine, capability)

    @property
    def name(self) -> str:
        return self._entry.model_id

    @property
    def context_length(self) -> int:
        with self._using() as engine:
            return engine.context_length

    @property
    def has_chat_template(self) -> bool:
        with self._using() as engine:
            return engine.has_chat_template

    def generate(self, prompt, params):
        with self._using() as engine:  # held until the generation is finished or closed
            yield from engine.generate(prompt, params)

    def generate_with_logprobs(self, prompt, params, top_logprobs: int, echo: bool):
        with self._using() as engine:
            return engine.generate_with_logprobs(prompt, params, top_logprobs, echo)

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        with self._using() as engine:
            return engine.tokenize(text, add_special)

    def detokenize(self, tokens):
        with self._using() as engine:
            return engine.detokenize(tokens)

    def tokenizer_info(self):
        with self._using() as engine:
            return engine.tokenizer_info()

    def embed(self, texts):
        with self._using() as engine:
            return engine.embed(texts)

    def render_chat(self, messages):
        with self._using() as engine:
            return engine.render_chat(messages)

    def check_json(self, constraint) -> None:
        with self._using() as engine:
            engine.check_json(constraint)

    def close(self) -> None:
        """Nothing to free: the catalog closes the engine when it unloads the model."""


class ServedModels:
    """Look up an engine by model id; describe every served model for /v1/models; unload idle ones."""

    def __init__(
        self,
        engines: Mapping[str, Engine],
        model_cards: Sequence[Mapping[str, Any]] = (),
        loaders: Mapping[str, Loader] | None = None,
        keep_alive: float | None = None,
        discover: Discover | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_loaded: int | None = None,
        miss_seconds: float = MISS_SECONDS,
    ) -> None:
        loaders = dict(loaders or {})
        if not engines and not loaders and discover is None:
            raise WattError("serve needs at least one model")
        if keep_alive is not None and keep_alive <= 0:
            raise WattError(f"keep-alive must be positive seconds, got {keep_alive}")
        if max_loaded is not None and max_loaded < 1:
            raise WattError(f"max-loaded must be at least 1, got {max_loaded}")
        self._max_loaded = max_loaded
        self._load_lock = threading.Lock()  # loads one at a time, so the count of loaded models is exact
        self._miss_seconds = miss_seconds
        self._misses: OrderedDict[str, float] = OrderedDict()  # unknown model id -> when its miss expires
        self._clock = clock
        self._keep_alive = keep_alive
        self._discover = discover
        self._started = now()
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()  # guards _entries while a model is discovered
        ids = list(dict.fromkeys([*engines, *loaders]))
        extra_by_id = {}
        for card in model_cards:
            model_id = card.get("id")
            if model_id not in ids:
                # A card without an engine is a wiring mistake; listing it would invite 404s.
                raise WattError(f"model card '{model_id}' names no served model; served: {', '.join(sorted(ids))}")
            extra_by_id[model_id] = dict(card)
        for model_id in ids:
            self._add(model_id, engines.get(model_id), loaders.get(model_id), extra_by_id.get(model_id, {}))
        self._reaper: threading.Thread | None = None
        self._stop = threading.Event()

    def _add(self, model_id: str, engine: Engine | None, load: Loader | None, extra: Mapping[str, Any]) -> _Entry:
        card = ModelCard(**{"id": model_id, "created": self._started, **extra})
        entry = _Entry(model_id, card, engine, load, self._clock, self._loading)
        self._entries[model_id] = entry
        return entry

    # ---- lookups -----------------------------------------------------------------------------

    def engine(self, model_id: str) -> PooledEngine:
        """The engine of a served (or discoverable) model; blocking: it may look the model up."""
        entry = self._entries.get(model_id) or self._discovered(model_id)
        entry.last_used = self._clock()  # a request is about to use it: not idle
        return PooledEngine(entry)

    async def get(self, model_id: str) -> PooledEngine:
        """`engine`, with discovery and loading done in a worker thread (a load takes seconds)."""
        self._start_reaper()
        entry = self._entries.get(model_id)
        if entry is None or entry.engine is None:
            # Their own pool: a burst of requests for models being loaded must not fill the loop's
            # shared executor (grammar builds and KB searches run there).
            loading = current_pools().loading
            pooled = await loading.run(self.engine, model_id)
            await loading.run(pooled.load)
            return pooled
        return self.engine(model_id)

    def named_or_only(self, model_id: str | None) -> str:
        """`model_id`, or the one model served when a request names none (tokenizer endpoints)."""
        if model_id is not None:
            return model_id
        if len(self._entries) == 1:
            return next(iter(self._entries))
        raise WattError(f"name the model: several are served ({self._names()})")

    def _discovered(self, model_id: str) -> _Entry:
        if self._discover is not None:
            with self._lock:
                if model_id in self._entries:  # another request found it meanwhile
                    return self._entries[model_id]
                if not self._recent_miss(model_id):
                    found = self._discover(model_id)
                    if found is not None:
                        load, card = found
                        return self._add(model_id, None, load, {key: value for key, value in card.items() if key != "id"})
                    self._remember_miss(model_id)
        raise NotFound(f"model '{model_id}' is not served here; served: {self._names()}")

    # A client asking for unknown ids in a loop would otherwise cost a registry lookup per request.
    def _recent_miss(self, model_id: str) -> bool:
        expires = self._misses.get(model_id)
        if expires is not None and expires > self._clock():
            return True
        self._misses.pop(model_id, None)
        return False

    def _remember_miss(self, model_id: str) -> None:
        self._misses[model_id] = self._clock() + self._miss_seconds
        self._misses.move_to_end(model_id)
        while len(self._misses) > MAX_REMEMBERED_MISSES:
            self._misses.popitem(last=False)

    @contextmanager
    def _loading(self, entry: _Entry) -> Iterator[None]:
        """Held while `entry` loads: loads run one at a time, and beyond `max_loaded` models loaded on
        demand the least recently used idle ones are unloaded first (503 when every one is busy)."""
        with self._load_lock:
            if self._max_loaded is not None:
                loaded = sorted((other for other in list(self._entries.values())
                                 if other is not entry and other.load is not None and other.engine is not None),
                                key=lambda other: other.last_used)
                excess = len(loaded) + 1 - self._max_loaded
                for victim in loaded:
                    if excess <= 0:
                        break
                    if victim.evict():
                        excess -= 1
                if excess > 0:
                    raise EngineOverloaded(f"{self._max_loaded} models are loaded and all are in use; cannot load "
                                           f"'{entry.model_id}' now, retry shortly", retry_after=5)
            yield

    def engines(self) -> dict[str, Engine]:
        """The engines loaded now (metrics come from them)."""
        return {model_id: entry.engine for model_id, entry in self._entries.items() if entry.engine is not None}

    def card(self, model_id: str) -> ModelCard:
        entry = self._entries.get(model_id)
        if entry is None:
            raise NotFound(f"model '{model_id}' is not served here; served: {self._names()}")
        return self._described(entry)

    def cards(self) -> list[ModelCard]:
        return [self._described(entry) for entry in list(self._entries.values())]

    def _described(self, entry: _Entry) -> ModelCard:
        if entry.load is None:  # always loaded: nothing to say
            return entry.card
        return entry.card.model_copy(update={"loaded": entry.engine is not None})

    def is_loaded(self, model_id: str) -> bool:
        entry = self._entries.get(model_id)
        return entry is not None and entry.engine is not None

    def _names(self) -> str:
        return ", ".join(sorted(self._entries))

    # ---- keep-alive ---------------------------------------------------------------------------

    def unload_idle(self) -> list[str]:
        """Unload every model idle for longer than the keep-alive; the ids unloaded."""
        if self._keep_alive is None:
            return []
        return [entry.model_id for entry in list(self._entries.values()) if entry.unload_if_idle(self._keep_alive)]

    def _start_reaper(self) -> None:
        if self._keep_alive is None or self._reaper is not None:
            return
        interval = min(max(self._keep_alive / 4, 0.05), 5.0)

        def reap() -> None:
            while not self._stop.wait(interval):
                try:
                    self.unload_idle()
                except Exception:  # noqa: BLE001 -- a failed close must not stop later unloads
                    log.exception("unloading an idle model failed")

        self._reaper = threading.Thread(target=reap, name="wattlm-keep-alive", daemon=True)
        self._reaper.start()

    def close(self) -> None:
        """Stop the keep-alive thread and close the engines we loaded (engines given by the caller stay theirs)."""
        self._stop.set()
        for entry in list(self._entries.values()):
            engine = entry.engine if entry.load is not None else None
            if engine is not None:
                entry.engine = None
                engine.close()
