"""Refusal pairs added to a dataset `watt synth` already wrote, without asking the teacher again.

A synthesized dataset's refusal share (`refusal_ratio`) is part of its cache key, so trying another
share through `watt synth` re-asks the teacher for every pair (minutes to hours for a local teacher).
The refusal examples depend only on the kept train pairs, the train passages and the seed
(synth/refusals.py), and all three can be recovered: the passages by chunking the source corpus again
with the dataset's own settings, the pairs from its train records. `add_refusals` therefore writes the
same train split that `watt synth` with that `refusal_ratio` would have written from the same teacher
replies (tests/synth/test_refusals.py compares the two). bench/refusal_bench.py measures ratios this way.
A dataset that has refusal examples already (the power-grid recipe's `refusal_ratio: 0.2`) is remixed from
its answerable rows in their original order (the seeded shuffle is undone), so ratio 0 gives back the
dataset `watt synth` would write without refusals.
"""

from __future__ import annotations

import json
import random
import shutil

from wattlm.cache import content_key, fingerprint
from wattlm.datasets import dataset_records
from wattlm.errors import WattError
from wattlm.registry import Artifact, Registry
from wattlm.shared.qa_format import qa_prompt
from wattlm.shared.records import atomic_write_jsonl, atomic_write_text
from wattlm.synth.chunking import Chunk
from wattlm.synth.config import SynthConfig
from wattlm.synth.refusals import REFUSALS_VERSION, Answerable, mix_refusals
from wattlm.synth.stage import Tally, select_chunks

_MARK = "\x00"  # stands for the question in a rendered prompt, to split it into the text around the question


def _question(prompt: str, chunk: Chunk, lang: str) -> str | None:
    """The question of a QA prompt rendered over `chunk` (None if the prompt is not that wording)."""
    before, after = qa_prompt(_MARK, chunk.text, lang)[0].split(_MARK)
    if not (prompt.startswith(before) and prompt.endswith(after)) or len(prompt) < len(before) + len(after):
        return None
    return prompt[len(before):len(prompt) - len(after)]


def _pairs(dataset: Artifact, rows: list[dict], chunks: dict[str, Chunk], config: SynthConfig) -> list[Answerable]:
    pairs = []
    for n, row in enumerate(rows, 1):
        where = f"dataset {dataset.name} ({dataset.id}) train record {n}"
        if row.get("kind") != "qa":
            continue
        chunk = chunks.get(str(row.get("chunk_id")))
        if chunk is None:
            raise WattError(f"{where}: passage {row.get('chunk_id')!r} is not a chunk of the source corpus "
                            f"chunked with the dataset's settings")
        lang = chunk.lang if config.language == "auto" else config.language
        question = _question(row["messages"][0]["content"], chunk, lang)
        if question is None:
            raise WattError(f"{where}: the prompt is not the QA wording over its passage")
        pairs.append(Answerable(question, row["messages"][1]["content"], chunk, lang))
    return pairs


def _without_refusals(dataset: Artifact, rows: list[dict], seed: int) -> list[dict]:
    """The train split as `watt synth` wrote it before mixing refusals in (`mix_refusals`): the seeded
    shuffle depends only on the row count, so it is undone exactly; its refusal rows are dropped."""
    if not any(row.get("kind") == "refusal" for row in rows):
        return rows
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)  # the same permutation mix_refusals applied
    unmixed: list[dict] = [{}] * len(rows)
    for position, index in enumerate(order):
        unmixed[index] = rows[position]
    answerable = sum(row.get("kind") != "refusal" for row in rows)
    if any(row.get("kind") == "refusal" for row in unmixed[:answerable]):
        raise WattError(f"dataset {dataset.name} ({dataset.id}): its refusal examples were not mixed in by "
                        f"`watt synth` with seed {seed}; remix a dataset made with refusal_ratio 0")
    return unmixed[:answerable]


def add_refusals(registry: Registry, dataset: Artifact, ratio: float, name: str | None = None,
                 shapes: list[str] | None = None) -> tuple[Artifact, bool]:
    """`dataset` (from `watt synth`) with refusal examples at `ratio` instead of the ones it has, if any
    (ratio 0: none); (artifact, reused)."""
    recorded = dataset.recipe.get("synth")
    if not isinstance(recorded, dict):
        raise WattError(f"dataset {dataset.name} ({dataset.id}) was not written by `watt synth`: no synth settings")
    config = SynthConfig(**{k: v for k, v in recorded.items() if k in SynthConfig.model_fields})
    config = SynthConfig(**{**config.model_dump(), "refusal_ratio": ratio,
                            **({"refusal_shapes": shapes} if shapes else {})})
    sources = [pid for pid, role in dataset.parents if role == "source"]
    if not sources:
        raise WattError(f"dataset {dataset.name} ({dataset.id}) has no source corpus to take passages from")
    corpus = registry.get(sources[0])
    key = fingerprint("synth-refusals", content_key(dataset), ratio, REFUSALS_VERSION,
                      *([sorted(config.refusal_shapes)] if shapes else []))  # default shapes: keys as before

    def produce(staged):
        chunks = select_chunks(corpus, config, Tally())
        train_chunks = [c for c in chunks if c.split == "train"]
        rows = _without_refusals(dataset, list(dataset_records(dataset, "train")), config.seed)
        pairs = _pairs(dataset, rows, {c.id: c for c in train_chunks}, config)
        # as synthesis: ratio 0 leaves the rows in their order (no shuffle)
        mixed, refusals = mix_refusals(rows, pairs, train_chunks, ratio, config.seed,
                                         config.refusal_shapes) if ratio else (rows, [])
        atomic_write_jsonl(staged / "train" / "shard-00000.jsonl", mixed)
        shutil.copytree(dataset.path / "heldout", staged / "heldout")  # answerable pairs only, as synth writes it
        if (dataset.path / "rag.jsonl").exists():
            shutil.copyfile(dataset.path / "rag.jsonl", staged / "rag.jsonl")
        counts: dict[str, int] = {}
        for record in refusals:
            counts[record["question_source"]] = counts.get(record["question_source"], 0) + 1
        metrics = {**dataset.metrics, "examples": {**dataset.metrics.get("examples", {}), "train": len(mixed)}, "refusals": counts}
        atomic_write_text(staged / "stats.json", json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
        return dict(kind="dataset", name=name or f"{dataset.name}-refusals-{ratio:g}{'-' + '+'.join(shapes) if shapes else ''}", format="jsonl",
                    parents=[(dataset.id, "source")], recipe={"synth": config.model_dump(mode="json")},
                    metrics=metrics, meta={**dataset.meta, "refusals_added_to": dataset.id})

    return registry.find_or_produce(key, produce)
