"""The two kinds of pipeline step: a step (generator over documents) and a filter (keep or drop).

As in datatrove, every step counts the documents it sees and lets through, and every drop carries a
snake_case reason, so the report can say exactly where the corpus went.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator

from wattlm.data.document import Document
from wattlm.errors import WattError

SAMPLES_PER_REASON = 2
SAMPLE_CHARS = 300


class PipelineStep(ABC):
    """A stage that consumes documents and yields documents. Subclasses implement `run`."""

    name: str = "step"
    # Import names of optional packages the step needs. Checked when the step is built, so a missing
    # package fails in one line before any file is read, not with a traceback halfway through a corpus.
    requires: tuple[str, ...] = ()

    def __init__(self) -> None:
        for package in self.requires:
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

    @abstractmethod
    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        """Yield the documents that survive this step (possibly changed)."""

    def __call__(self, docs: Iterable[Document]) -> Iterator[Document]:
        # Counting lives here, not in every subclass, so a new step cannot forget it.
        for doc in self.run(self._count_in(docs)):
            self.docs_out += 1
            self.chars_out += len(doc.text)
            yield doc

    def _count_in(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
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

    def report_extras(self) -> dict[str, object]:
        """Extra top-level keys this step adds to report.json (e.g. PII counts); none by default."""
        return {}

    # A sharded run gives every shard a fresh copy of the step and merges the copies' counts, in shard
    # order, into one step for the report. The state is JSON (it is saved in the shard's completion
    # marker, so a resumed run can skip the shard and still report it).
    def stats_state(self) -> dict[str, object]:
        return {"docs_in": self.docs_in, "docs_out": self.docs_out, "chars_in": self.chars_in,
                "chars_out": self.chars_out, "dropped": dict(self.dropped),
                "dropped_samples": list(self.dropped_samples), "extra": self.extra_state()}

    def merge_stats(self, state: dict) -> None:
        """Add a shard copy's `stats_state()`; merging shards in input order gives a serial run's numbers."""
        for key in ("docs_in", "docs_out", "chars_in", "chars_out"):
            setattr(self, key, getattr(self, key) + state[key])
        self.dropped.update(state["dropped"])
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


class BaseFilter(PipelineStep):
    """A step that keeps or drops each document unchanged; one filter, one drop reason."""

    drop_reason: str = "filtered"

    @abstractmethod
    def keep(self, doc: Document) -> bool:
        """True to keep `doc`, False to drop it with `drop_reason`."""

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            if self.keep(doc):
                yield doc
            else:
                self.drop(self.drop_reason, doc)
