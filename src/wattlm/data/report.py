"""The dataset report: what came in, what was kept, and why the rest was dropped."""

from __future__ import annotations

from pydantic import BaseModel, Field


class StepStats(BaseModel):
    name: str
    docs_in: int
    docs_out: int


class FileError(BaseModel):
    file: str  # relative source path, as in the shards
    error: str  # one line


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

    def to_dict(self) -> dict[str, object]:
        return self.model_dump(mode="json")
