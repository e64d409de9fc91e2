"""Labelled examples for `watt data train-quality`: a JSONL file of {text, label}, or good/bad folders.

Examples are cleaned the way the pipeline cleans a document before the classifier sees it
(normalization, PII placeholders), so the model learns from the same kind of text it will score.
"""

from __future__ import annotations

from pathlib import Path

from wattlm.errors import NotFound, WattError
from wattlm.shared.records import parse_jsonl


def prepare(text: str) -> str:
    """What the pipeline's classifier step sees of a raw text: normalized, PII replaced."""
    from wattlm.data.transforms.normalize import normalize_text
    from wattlm.data.transforms.pii import scrub_pii

    return scrub_pii(normalize_text(text))[0]


def read_jsonl_examples(path: Path, text_field: str = "text", label_field: str = "label") -> tuple[list[str], list[str]]:
    """(texts, labels) from one JSONL file; a bad line stops with its line number (labels are curated
    by hand, so a typo should be fixed, not skipped)."""
    if not path.is_file():
        raise NotFound(f"examples file not found: {path}")
    texts, labels = [], []
    for line in parse_jsonl(path.read_text("utf-8")):
        line_no, record = line.number, line.value
        if line.error is not None:
            raise WattError(f"{path} line {line_no}: {line.error}")
        text = record.get(text_field) if isinstance(record, dict) else None
        label = record.get(label_field) if isinstance(record, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise WattError(f"{path} line {line_no}: no non-empty string field '{text_field}'")
        if not isinstance(label, str) or not label.strip():
            raise WattError(f"{path} line {line_no}: no string field '{label_field}'")
        texts.append(prepare(text))
        labels.append(label.strip().lower())
    return texts, labels


def read_folder_examples(folder: Path, label: str, text_field: str = "text") -> tuple[list[str], list[str]]:
    """Every document under `folder` (any format `watt data build` reads; HTML main text extracted)."""
    from wattlm.data.readers.source import FileSource, list_input_files
    from wattlm.data.transforms.extract_html import HtmlExtractor

    if not folder.exists():
        raise NotFound(f"examples folder not found: {folder}")
    docs = HtmlExtractor()(FileSource(list_input_files([folder]), text_field).run())
    texts = [prepare(doc.text) for doc in docs if doc.text.strip()]
    return texts, [label] * len(texts)


def read_examples(examples: Path | None, good: Path | None, bad: Path | None, text_field: str = "text",
                  label_field: str = "label") -> tuple[list[str], list[str]]:
    if examples is None and (good is None or bad is None):
        raise WattError("give --examples FILE.jsonl, or both --good DIR and --bad DIR")
    texts: list[str] = []
    labels: list[str] = []
    if examples is not None:
        texts, labels = read_jsonl_examples(examples, text_field, label_field)
    for folder, label in ((good, "good"), (bad, "bad")):
        if folder is not None:
            more_texts, more_labels = read_folder_examples(folder, label, text_field)
            texts += more_texts
            labels += more_labels
    return texts, labels
