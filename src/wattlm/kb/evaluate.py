"""Retrieval scores of a KB on a `rag` task: JSONL lines `{"question", "answer", "source"}`.

A question is answered at rank r when the r-th hit's source is the question's source (the path as given
to `kb build`; a hit of a JSONL record `f.jsonl#3` matches `f.jsonl` too, and a bare file name matches
the path's last part). recall@n is the share of in-scope questions answered within the first n hits,
MRR the mean of 1/r (0 when not in the top 10). An out-of-scope question has `source: null`; it is
refused correctly when no hit is `supported` (see calibrate.py), and `refusal_rate` is the share of
those; `false_refusals` is the share of in-scope questions with no supported hit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from wattlm.errors import NotFound, WattError
from wattlm.kb.retrieve import search

DEPTH = 10


@dataclass
class RagItem:
    question: str
    answer: str
    source: str | None


def load_rag_task(path: Path) -> list[RagItem]:
    """The items of a rag task file; a malformed line is a one-line error naming the file and line."""
    if not path.is_file():
        raise NotFound(f"rag task file not found: {path}")
    items = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise WattError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("question"), str) \
                    or not record["question"].strip():
                raise WattError(f"{path}:{line_no}: expected an object with a non-empty string 'question'")
            source = record.get("source")
            if source is not None and not isinstance(source, str):
                raise WattError(f"{path}:{line_no}: 'source' must be a string path or null")
            items.append(RagItem(record["question"], str(record.get("answer", "")), source))
    if not items:
        raise WattError(f"{path}: no questions")
    return items


def source_matches(hit_source: str, wanted: str) -> bool:
    hit_file = hit_source.split("#")[0]
    if wanted in (hit_source, hit_file):
        return True
    return "/" not in wanted and Path(hit_file).name == wanted


def evaluate_retrieval(kb, items: list[RagItem], mode: str = "hybrid") -> dict:
    """recall@1/3/5, MRR over in-scope questions; refusal rate over out-of-scope ones; per-item ranks."""
    in_scope = [item for item in items if item.source]
    out_scope = [item for item in items if not item.source]
    ranks: list[int | None] = []
    details = []
    false_refusals = 0
    for item in in_scope:
        hits = search(kb, item.question, k=DEPTH, mode=mode)
        rank = next((hit.rank for hit in hits if source_matches(hit.source, item.source)), None)
        ranks.append(rank)
        false_refusals += not any(hit.supported for hit in hits)
        details.append({"question": item.question, "source": item.source, "rank": rank,
                        "top": hits[0].source if hits else None})
    refused = 0
    for item in out_scope:
        hits = search(kb, item.question, k=5, mode=mode)
        refused += not any(hit.supported for hit in hits)
        details.append({"question": item.question, "source": None, "refused": not any(h.supported for h in hits),
                        "top_similarity": hits[0].similarity if hits else None})
    n = max(len(in_scope), 1)
    scores = {f"recall@{k}": round(sum(1 for r in ranks if r is not None and r <= k) / n, 4) for k in (1, 3, 5)}
    scores["mrr"] = round(sum(1.0 / r for r in ranks if r is not None) / n, 4)
    scores["questions"] = len(in_scope)
    scores["out_of_scope"] = len(out_scope)
    scores["refusal_rate"] = round(refused / len(out_scope), 4) if out_scope else None
    scores["refused"] = refused
    scores["false_refusals"] = round(false_refusals / n, 4) if in_scope else None
    return {"mode": mode, "scores": scores, "items": details}
