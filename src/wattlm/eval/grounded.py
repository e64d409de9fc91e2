"""What the grounded task kinds share: the retrieval they are given and how it is scored.

A grounded task (`rag`: open-book answers; `ragmc`: multiple choice with the passages in context) does
not search a knowledge base itself: `wattlm.kb` is another stage, and a stage never imports another.
The caller passes `retrieve(question, k) -> [passage dict]` in: `watt eval run --kb` (eval/cli.py) and
`watt run` (run/knowledge.py) build it from `wattlm.kb.retrieve.search`. A passage dict has at least
`text` and `source`; `supported` (the KB's calibrated "this can answer it" flag, default True), `title`
and `heading` are read when present.

Retrieval happens when the task is built, not when a model is scored: the passages are part of the
rendered prompts, so the task's content hash (and the cache key of every stored score) changes when
the knowledge base answers differently, and one retrieval serves every model scored on the task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from wattlm.errors import WattError

Passage = dict
Retrieve = Callable[[str, int], list[Passage]]

DEPTH = 10  # hits read for recall@n and MRR (a rank below this counts as not found)
RECALL_AT = (1, 3, 5)


def source_matches(hit_source: str, wanted: str) -> bool:
    """A hit comes from the wanted document: same path, a JSONL record of it (`f.jsonl#3`), or a path
    ending in the wanted one (a task file names `x.md` or `raw/x.md`; the KB shows the path as built)."""
    hit_file = hit_source.split("#")[0]
    wanted = wanted.strip().removeprefix("./")
    return wanted in (hit_source, hit_file) or hit_file.endswith("/" + wanted)


def first_rank(passages: Sequence[Passage], source: str) -> int | None:
    """1-based rank of the first passage from `source`, or None."""
    return next((n for n, p in enumerate(passages, 1) if source_matches(str(p.get("source", "")), source)), None)


def retrieval_scores(ranks: Sequence[int | None]) -> dict[str, float]:
    """recall@1/3/5 and MRR in points (0-100) over in-scope questions (their first right rank)."""
    if not ranks:
        return {}
    n = len(ranks)
    scores = {f"recall_at_{k}": 100.0 * sum(1 for r in ranks if r is not None and r <= k) / n for k in RECALL_AT}
    scores["mrr"] = 100.0 * sum(1.0 / r for r in ranks if r is not None) / n
    return scores


def checked_retrieve(retrieve: Retrieve, question: str, k: int, where: str) -> list[Passage]:
    passages = retrieve(question, k)
    if not isinstance(passages, list) or not all(isinstance(p, dict) and isinstance(p.get("text"), str)
                                                 for p in passages):
        raise WattError(f"{where}: the retriever must return a list of passage dicts with 'text'")
    return passages


def joined_passages(passages: Sequence[Passage]) -> str:
    """The passages as one reading text, best first (the training wording has one passage, no markers)."""
    return "\n".join(p["text"].strip() for p in passages)
