"""Decontamination: drop documents that share a long n-gram with any item of an evaluation set.

A model trained on an eval set's text scores well on that set for the wrong reason. GPT-3 (Brown et
al. 2020, appendix C) called a training document contaminated when it shared a 13-gram of words with a
test item; we use the same test for Latin text. Chinese has no word boundaries, so Chinese text is
compared on 25-character n-grams of hanzi (about 13 words; punctuation, spaces and Latin letters are
left out, so layout differences cannot hide a copy).

Eval files are JSONL (lm-eval-harness-style docs: every string field -- question, context, choices,
answer, ... -- is an item segment, and so is their concatenation in field order, which catches a page
that copied question and answer together) or plain text (each paragraph is a segment). Both sides are
normalized like the corpus (transforms/normalize.py), so a traditional-character copy of an item still matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from wattlm.data.base import Filter, StepParams, path_under
from wattlm.data.document import Document
from wattlm.errors import NotFound, WattError
from wattlm.shared.records import parse_jsonl
from wattlm.shared.text import is_han

_WORD = re.compile(r"[^\W_]+")
_PARAGRAPHS = re.compile(r"\n\s*\n")
MAX_EXAMPLES = 5


def word_ngrams(text: str, n: int) -> Iterator[str]:
    """Word n-grams (casefolded; hanzi left out -- they have their own test)."""
    words = [word for word in _WORD.findall(text.casefold()) if not is_han(word[0])]
    for i in range(len(words) - n + 1):
        yield " ".join(words[i : i + n])


def han_ngrams(text: str, n: int) -> Iterator[str]:
    chars = "".join(ch for ch in text if is_han(ch))
    for i in range(len(chars) - n + 1):
        yield chars[i : i + n]


def segments_of_record(record: object) -> list[str]:
    """Every string inside a JSON record (depth first, in field order), plus their concatenation."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(record)
    return found + ([" ".join(found)] if len(found) > 1 else [])


def read_eval_items(path: Path) -> list[list[str]]:
    """The items of one eval file, each a list of text segments."""
    if not path.is_file():
        raise NotFound(f"eval set not found: {path} (field eval_sets)")
    text = path.read_text("utf-8", errors="replace")
    if path.suffix.lower() in (".jsonl", ".json"):
        items = []
        for line in parse_jsonl(text):
            if line.error is not None:
                raise WattError(f"eval set {path} line {line.number}: {line.error}")
            items.append(segments_of_record(line.value))
        return items
    return [[paragraph] for paragraph in _PARAGRAPHS.split(text) if paragraph.strip()]


@dataclass
class EvalIndex:
    """Hashes of every eval n-gram -> index of the eval file it came from."""

    files: list[str]
    items: list[int]  # items per file
    word_n: int
    char_n: int
    grams: dict[int, int] = field(default_factory=dict)

    def match(self, text: str) -> tuple[str, int] | None:
        """(the first shared n-gram, its eval file index), or None."""
        for grams in (word_ngrams(text, self.word_n), han_ngrams(text, self.char_n)):
            for gram in grams:
                # hash(): salted per process, but the index is built in the process that queries it.
                file_index = self.grams.get(hash(gram))
                if file_index is not None:
                    return gram, file_index
        return None


def build_index(paths: Sequence[Path], word_n: int, char_n: int, simplify: bool = True) -> EvalIndex:
    from wattlm.data.transforms.normalize import normalize_text

    names = [path.name for path in paths]
    if len(set(names)) < len(names):  # two test.jsonl from different suites: name them by path
        names = [str(path) for path in paths]
    index = EvalIndex(files=names, items=[], word_n=word_n, char_n=char_n)
    for file_index, path in enumerate(paths):
        items = read_eval_items(path)
        index.items.append(len(items))
        for segments in items:
            for segment in segments:
                clean = normalize_text(segment, simplify)
                for gram in (*word_ngrams(clean, word_n), *han_ngrams(clean, char_n)):
                    index.grams.setdefault(hash(gram), file_index)
    return index


@lru_cache(maxsize=2)
def _cached_index(files: tuple[tuple[str, int, int], ...], word_n: int, char_n: int, simplify: bool) -> EvalIndex:
    return build_index([Path(path) for path, _, _ in files], word_n, char_n, simplify)


def eval_index(paths: Sequence[Path], word_n: int, char_n: int, simplify: bool = True) -> EvalIndex:
    """`build_index`, once per process for the same files (every shard of a run asks again)."""
    for path in paths:
        if not Path(path).is_file():
            raise NotFound(f"eval set not found: {path} (field eval_sets)")
    key = tuple((str(Path(p).resolve()), Path(p).stat().st_mtime_ns, Path(p).stat().st_size) for p in paths)
    return _cached_index(key, word_n, char_n, simplify)


class DecontaminateParams(StepParams):
    eval_sets: list[Path] = Field(
        min_length=1, description="Eval sets to decontaminate against: JSONL (lm-eval-harness style docs; "
        "question/choices/answer/context... fields) or text files."
    )
    word_n: int = Field(13, ge=4, description="Word n-gram length for Latin text (GPT-3's 13-gram overlap test).")
    char_n: int = Field(
        25, ge=8, description="Character n-gram length for Chinese text (hanzi only; about 13 words of Chinese)."
    )
    simplify: bool = Field(
        True, description="Normalize eval items to simplified Chinese, as `normalize` does the corpus (keep equal)."
    )


class Decontaminator(Filter):
    """Drops documents sharing an n-gram with an eval item (reason `eval_contamination`)."""

    name = "decontaminate"
    drop_reason = "eval_contamination"
    Params = DecontaminateParams

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.index = eval_index(self.params.eval_sets, self.params.word_n, self.params.char_n, self.params.simplify)
        self.by_file = [0] * len(self.index.files)
        self.examples: list[dict[str, str]] = []

    def keep(self, doc: Document) -> bool:
        hit = self.index.match(doc.text)
        if hit is None:
            return True
        gram, file_index = hit
        self.by_file[file_index] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append({"source": doc.source, "eval_set": self.index.files[file_index], "ngram": gram})
        return False

    @classmethod
    def referenced_files(cls, params: DecontaminateParams) -> list[Path]:
        return list(params.eval_sets)

    @classmethod
    def with_paths_under(cls, params: DecontaminateParams, base: Path) -> DecontaminateParams:
        return params.model_copy(update={"eval_sets": [path_under(base, path) for path in params.eval_sets]})

    def report_extras(self) -> dict[str, object]:
        return {"contamination": {
            "eval_sets": {name: {"items": items, "docs_dropped": dropped}
                          for name, items, dropped in zip(self.index.files, self.index.items, self.by_file, strict=True)},
            "ngram": {"words": self.index.word_n, "hanzi": self.index.char_n},
            "eval_ngrams": len(self.index.grams),
            "examples": self.examples,
        }}

    def extra_state(self) -> dict[str, object]:
        return {"by_file": self.by_file, "examples": self.examples}

    def merge_extra(self, extra: dict) -> None:
        self.by_file = [a + b for a, b in zip(self.by_file, extra["by_file"], strict=True)]
        self.examples += extra["examples"][: MAX_EXAMPLES - len(self.examples)]
