"""The dataset report: what came in, what was kept, and why the rest was dropped."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class StepStats(BaseModel):
    name: str
    docs_in: int
    docs_out: int
    chars_in: int = 0
    chars_out: int = 0


class FileError(BaseModel):
    file: str  # relative source path, as in the shards
    error: str  # one line
    # Why a safety check refused the whole file: too_large, zip_bomb, timeout, not_regular_file, ...
    # (readers/limits.py, docs/security-inputs.md); absent for a damaged file or a bad record.
    reason: str | None = Field(None, exclude_if=lambda value: value is None)


class DataReport(BaseModel):
    """Counts of one `build_corpus` run; `report.json` is `to_dict()`."""

    files_seen: int = 0
    files_failed: int = Field(0, description="Files that could not be read (binary, empty, undecodable, malformed CSV); "
        "a bad JSONL line is an entry in `errors` only.")
    docs_in: int = Field(0, description="Documents read (a JSONL file with 8 good records counts 8).")
    docs_kept: int = 0
    docs_train: int = 0
    docs_heldout: int = 0
    chars_in: int = Field(0, description="Characters read (raw HTML for HTML files).")
    chars_kept: int = 0
    steps: list[StepStats] = Field(default_factory=list)
    dropped: dict[str, int] = Field(
        default_factory=dict,
        description="Reason -> count. Document reasons, plus `unsupported_type`, which counts skipped files.",
    )
    errors: list[FileError] = Field(default_factory=list)
    encodings: dict[str, int] = Field(
        default_factory=dict, description="Encoding -> number of files decoded with it."
    )

    pii: dict[str, int] = Field(default_factory=dict, description="PII kind -> spans replaced by a placeholder.")
    near_dup_clusters: list[dict[str, Any]] = Field(
        default_factory=list, description="Largest near-duplicate clusters: kept document, dropped copies, examples."
    )
    boilerplate_top: list[dict[str, Any]] = Field(
        default_factory=list, description="Most frequent removed boilerplate lines (digits masked as 0) and in how "
        "many documents each was removed."
    )
    boilerplate_lines_removed: int = 0
    page_chrome_lines: dict[str, Any] = Field(default_factory=dict, description="Lines removed as single-page "
                                              "chrome: total, documents changed, per rule, a few examples per rule.")
    paragraphs_removed: int = Field(0, description="Repeated paragraphs removed by paragraph-level dedup.")
    lang_mix: dict[str, int] = Field(default_factory=dict, description="Language tag -> kept documents.")
    length_histogram: list[dict[str, int]] = Field(
        default_factory=list, description="Kept documents per length bin: {min_chars, max_chars, docs} "
        "(max_chars exclusive; -1 = open)."
    )
    quality_score_histogram: list[dict[str, float | int]] = Field(
        default_factory=list, description="Documents per quality-classifier score bin {lo, hi, docs} (kept and "
        "dropped; empty without a quality_model)."
    )
    perplexity_histogram: list[dict[str, float | int]] = Field(
        default_factory=list, description="Documents per perplexity bin {lo, hi, docs} (hi = -1: open); empty "
        "without a perplexity_model."
    )
    contamination: dict[str, Any] = Field(
        default_factory=dict, description="Decontamination: per eval set its items and the documents dropped, "
        "the n-gram lengths, and examples of shared n-grams; empty without eval_sets."
    )
    samples: dict[str, list[dict[str, str]]] = Field(
        default_factory=dict, description="A few kept documents and a few dropped ones per reason (truncated)."
    )

    def to_dict(self) -> dict[str, object]:
        return self.model_dump(mode="json")
