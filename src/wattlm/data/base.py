"""The data stage's extension point: a `Step` (generator over documents) and a `Filter` (keep or drop).

As in datatrove, every step counts the documents it sees and lets through, and every drop carries a
snake_case reason, so the report can say exactly where the corpus went. A step declares its `phase`
(where the executor runs it) and owns a small pydantic `Params` model (its settings in a recipe's
`steps:` list); `steps.py` holds the one table from step names to classes.
"""

from __future__ import annotations

import importlib.util
import re
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from wattlm.data.document import Document
from wattlm.errors import WattError

SAMPLES_PER_REASON = 2
SAMPLE_CHARS = 300
# Where a step runs, in this order (docs/data.md): `read` in the shard workers before the corpus-wide
# counts, `clean` in the shard workers after them, `dedup` in one process over all documents in input order.
Phase = Literal["read", "clean", "dedup"]
PHASES: tuple[Phase, ...] = ("read", "clean", "dedup")
_SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
_END = object()  # what next() returns at the end of a generator, in the timed loops below


def path_under(base: Path, path: Path) -> Path:
    """`path` if absolute, else resolved against `base` (a recipe's folder, or the working directory)."""
    return path if path.is_absolute() else (base / path).resolve()


class StepParams(BaseModel):
    """Base of a step's settings: unknown keys are errors, so a typo in a recipe is never ignored."""

    model_config = ConfigDict(extra="forbid")


class Step(ABC):
    """Consumes documents and yields documents. Subclasses set `name`, `phase` and `Params`, and
    implement `run`; `self.params` holds the validated settings."""

    name: ClassVar[str] = "step"
    phase: ClassVar[Phase] = "clean"
    Params: ClassVar[type[StepParams]] = StepParams
    # Import names of optional packages the step needs. Checked when the step is built, so a missing
    # package fails in one line before any file is read, not with a traceback halfway through a corpus.
    requires: ClassVar[tuple[str, ...]] = ()
    # True for a `clean` step that needs counts over the whole `read` output before it can run (a
    # barrier): the executor calls `count_corpus` once, between the phases, and hands each shard's
    # copy its share through `use_counts`. Such a step must come first in its phase.
    counts_corpus: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        self.params = self.Params(**params)
        for package in self.required_packages():
            if importlib.util.find_spec(package) is None:
                raise WattError(f"the {self.name} step needs the '{package}' package: pip install {package}")
        self.docs_in = 0
        self.docs_out = 0
        self.chars_in = 0
        self.chars_out = 0
        self.dropped: Counter[str] = Counter()
        # A few dropped documents per reason, for the quality card: a count says how much was lost,
        # an example says whether the filter is right.
        self.dropped_samples: list[dict[str, str]] = []
        # Seconds spent in this step's own code (the steps before it not counted), summed over the shard
        # copies: the per-step breakdown of bench/data_bench.py. Not in report.json, which stays the same
        # from run to run.
        self.seconds = 0.0

    def required_packages(self) -> tuple[str, ...]:
        """`requires`, unless the step's settings make a package unnecessary (see Normalizer)."""
        return self.requires

    @abstractmethod
    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        """Yield the documents that survive this step (possibly changed)."""

    def __call__(self, docs: Iterable[Document]) -> Iterator[Document]:
        # Counting (and timing) lives here, not in every subclass, so a new step cannot forget it.
        clock, run = time.perf_counter, self.run(self._count_in(docs))
        while True:
            start = clock()
            doc = next(run, _END)
            self.seconds += clock() - start
            if doc is _END:
                return
            self.docs_out += 1
            self.chars_out += len(doc.text)
            yield doc

    def _count_in(self, docs: Iterable[Document]) -> Iterator[Document]:
        clock, upstream = time.perf_counter, iter(docs)
        while True:
            start = clock()
            doc = next(upstream, _END)
            self.seconds -= clock() - start  # the steps before this one: their time, not ours
            if doc is _END:
                return
            self.docs_in += 1
            self.chars_in += len(doc.text)
            yield doc

    def drop(self, reason: str, doc: Document | None = None) -> None:
        """Record that one document was dropped for `reason` (snake_case); `doc` keeps an example."""
        self.dropped[reason] += 1
        if doc is not None and self.dropped[reason] <= SAMPLES_PER_REASON:
            self.dropped_samples.append(
                {"reason": reason, "source": doc.source, "text": doc.text[:SAMPLE_CHARS]}
            )

    # Hooks for the executor; the defaults do nothing.
    @classmethod
    def preload(cls) -> None:
        """Load, once per process, what every copy of the step needs whatever its params (a library, a
        model, a character table). The local executor's forkserver calls it for every step class before
        it forks the workers (executors/preload.py), so each worker starts with it instead of loading its
        own copy. It must not fail: the step then loads what it needs on first use, as without it."""
        return None

    def prepare(self, doc: Document) -> None:
        """Per-document work of a `dedup` step that can run early, in the shard workers (after the
        `clean` steps), so the serial dedup pass does less (see NearDedup's MinHash sketches)."""
        del doc

    def count_corpus(self, shards: Sequence[Iterable[Document]]) -> list[Any]:
        """For `counts_corpus` steps: count over every shard's documents, return one picklable share
        per shard (what that shard's copy needs)."""
        raise NotImplementedError(f"{self.name} does not count the corpus")

    def use_counts(self, counts: Any) -> None:
        """For `counts_corpus` steps: take this shard's share of `count_corpus`."""
        raise NotImplementedError(f"{self.name} does not count the corpus")

    # Files the output depends on (hashed into cache keys) and their resolution against a recipe's folder.
    @classmethod
    def referenced_files(cls, params: StepParams) -> list[Path]:
        del params
        return []

    @classmethod
    def with_paths_under(cls, params: StepParams, base: Path) -> StepParams:
        del base
        return params

    def report_extras(self) -> dict[str, object]:
        """Extra top-level keys this step adds to report.json (e.g. PII counts); none by default."""
        return {}

    # A sharded run gives every shard a fresh copy of the step and merges the copies' counts, in shard
    # order, into one step for the report. The state is JSON (it is saved in the shard's completion
    # marker, so a resumed run can skip the shard and still report it).
    def stats_state(self) -> dict[str, object]:
        return {"docs_in": self.docs_in, "docs_out": self.docs_out, "chars_in": self.chars_in,
                "chars_out": self.chars_out, "dropped": dict(self.dropped),
                "dropped_samples": list(self.dropped_samples), "extra": self.extra_state(),
                "seconds": self.seconds}

    def merge_stats(self, state: dict) -> None:
        """Add a shard copy's `stats_state()`; merging shards in input order gives a serial run's numbers."""
        for key in ("docs_in", "docs_out", "chars_in", "chars_out"):
            setattr(self, key, getattr(self, key) + state[key])
        self.dropped.update(state["dropped"])
        self.seconds += state.get("seconds", 0.0)  # markers written before timing existed have none
        for sample in state["dropped_samples"]:  # the first SAMPLES_PER_REASON per reason, as in a serial run
            if sum(1 for kept in self.dropped_samples if kept["reason"] == sample["reason"]) < SAMPLES_PER_REASON:
                self.dropped_samples.append(sample)
        self.merge_extra(state["extra"])

    def extra_state(self) -> dict[str, object]:
        """Step-specific counts behind `report_extras` (JSON); none by default."""
        return {}

    def merge_extra(self, extra: dict) -> None:
        """Add another copy's `extra_state()`; nothing to add by default."""
        del extra


class Filter(Step):
    """A step that keeps or drops each document unchanged; one filter, one counted drop reason."""

    drop_reason: ClassVar[str] = "filtered"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not _SNAKE_CASE.fullmatch(cls.drop_reason):
            raise TypeError(f"{cls.__name__}.drop_reason {cls.drop_reason!r} is not snake_case")

    @abstractmethod
    def keep(self, doc: Document) -> bool:
        """True to keep `doc`, False to drop it with `drop_reason`."""

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            if self.keep(doc):
                yield doc
            else:
                self.drop(self.drop_reason, doc)
