"""The filter that applies a trained quality classifier (classifier_model.py) with a threshold."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

from pydantic import Field

from wattlm.data.base import Step, StepParams, path_under
from wattlm.data.document import Document
from wattlm.data.stats import bin_index, histogram_rows

SCORE_EDGES = tuple(i / 10 for i in range(11))  # ten bins over [0, 1]
BATCH = 256  # documents scored per predict_proba call: one sparse matrix instead of 256 small ones


class QualityClassifierParams(StepParams):
    model: Path = Field(description="Quality classifier made by `watt data train-quality` (an .npz file; a joblib pickle only with WATT_ALLOW_PICKLE=1).")
    threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Minimum quality score (the classifier's probability of 'high'/'good')."
    )


class QualityClassifier(Step):
    """Drops documents whose quality score (P(high)) is below `threshold` (reason `quality_classifier`).

    The score of every document it sees goes into a histogram (report `quality_score_histogram`), so a
    threshold can be chosen from the card: where the kept and the dropped mass sit.
    """

    name = "filter_quality_classifier"
    Params = QualityClassifierParams
    requires = ("sklearn", "joblib")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        from wattlm.data.classifier_model import load_quality_model

        self.model = load_quality_model(self.params.model)  # fails here, before any file is read
        self.histogram = [0] * (len(SCORE_EDGES) - 1)

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        docs = iter(docs)
        while batch := list(islice(docs, BATCH)):
            for doc, score in zip(batch, self.model.scores([doc.text for doc in batch]), strict=True):
                self.histogram[bin_index(score, SCORE_EDGES)] += 1
                doc.meta["quality_score"] = f"{score:.4f}"
                if score >= self.params.threshold:
                    yield doc
                else:
                    self.drop("quality_classifier", doc)

    @classmethod
    def referenced_files(cls, params: QualityClassifierParams) -> list[Path]:
        return [params.model]

    @classmethod
    def with_paths_under(cls, params: QualityClassifierParams, base: Path) -> QualityClassifierParams:
        return params.model_copy(update={"model": path_under(base, params.model)})

    def report_extras(self) -> dict[str, object]:
        return {"quality_score_histogram": histogram_rows(self.histogram, SCORE_EDGES)}

    def extra_state(self) -> dict[str, object]:
        return {"histogram": list(self.histogram)}

    def merge_extra(self, extra: dict) -> None:
        self.histogram = [a + b for a, b in zip(self.histogram, extra["histogram"], strict=True)]
