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
        self.dropped: Counter[str] = Counter()

    @abstractmethod
    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        """Yield the documents that survive this step (possibly changed)."""

    def __call__(self, docs: Iterable[Document]) -> Iterator[Document]:
        # Counting lives here, not in every subclass, so a new step cannot forget it.
        for doc in self.run(self._count_in(docs)):
            self.docs_out += 1
            yield doc

    def _count_in(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            self.docs_in += 1
            yield doc

    def drop(self, reason: str) -> None:
        """Record that one document was dropped for `reason` (snake_case)."""
        self.dropped[reason] += 1


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
                self.drop(self.drop_reason)
