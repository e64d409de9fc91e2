"""Knowledge bases in a run: raw files -> KB dataset -> KB (the `knowledge:` section), and the grounded
scores of each tier's models.

This is the glue between the data, KB and eval stages (a stage never imports another; the run layer
may import all of them). `watt kb` (kb/cli.py) uses the same functions for its dataset step, and
`watt eval run --kb` (eval/cli.py) the same retriever: the grounded eval tasks take a
`retrieve(question, k)` callable instead of importing `wattlm.kb` (docs/eval.md).
"""

from __future__ import annotations

from pathlib import Path

from wattlm.errors import NotFound
from wattlm.registry import Artifact, Registry

# The data stage's settings for a KB (docs/kb.md says why): clean and scrub, but drop nothing that is a
# distinct document. Near-duplicate and paragraph dedup would drop a superseded version of a rule beside
# the version in force; quality filters and a length floor would drop short rules and tables; boilerplate
# removal would strip clause headings repeated across an organisation's procedures.
KB_DATA_SETTINGS: dict[str, object] = {
    "min_chars": 1, "quality_filters": False, "near_dedup": False, "paragraph_dedup_min_docs": 0,
    "remove_boilerplate": False, "scrub_pii": True, "to_simplified": True, "repair_text": True,
}


def kb_origins(inputs: list[Path], shown_under: Path | None = None) -> dict[str, dict[str, str]]:
    """data-stage source -> the path as given (shown in hits) and the absolute file (front matter).

    With `shown_under` (a recipe's folder), paths are shown relative to it when they are inside it, so a
    recipe's KB names `raw/x.md` wherever the checkout lives."""
    from wattlm.data.readers.source import list_input_files

    origins = {}
    for item in list_input_files(inputs):  # the same walk, so the same sources, as build_corpus
        if item.path.name.endswith(".meta.json"):
            continue
        root = next(r for r in inputs if item.path == r or item.path.is_relative_to(r))
        shown = root if root.is_file() else root / item.path.relative_to(root)
        if shown_under is not None and shown.is_relative_to(shown_under):
            shown = shown.relative_to(shown_under)
        origins[item.source] = {"path": str(shown), "file": str(item.path.resolve())}
    return origins


def sidecar_hash(inputs: list[Path]) -> str:
    from wattlm.cache import files_fingerprint
    from wattlm.kb.origin import sidecar_files

    sidecars = sidecar_files(inputs)
    return files_fingerprint(sidecars) if sidecars else ""


def documents_dataset(registry: Registry, inputs: list[Path], name: str, progress: bool) -> Artifact:
    """Raw files -> a cleaned, PII-scrubbed dataset artifact (cached by the files' bytes and settings)."""
    from wattlm.cache import files_fingerprint, fingerprint
    from wattlm.data.config import DataConfig
    from wattlm.data.pipeline import build_corpus

    config = DataConfig(**KB_DATA_SETTINGS)
    key = fingerprint("data", files_fingerprint(inputs), config.cache_settings())

    def produce(staged: Path) -> dict:
        report = build_corpus(inputs, staged, config, progress=progress)
        metrics = {"docs_in": report.docs_in, "docs_kept": report.docs_kept, "files_failed": report.files_failed,
                   "dropped": report.dropped}
        return {"kind": "dataset", "name": name, "format": "jsonl", "metrics": metrics,
                "recipe": {"data": config.model_dump(mode="json")}, "meta": {"inputs": [str(p) for p in inputs]}}

    return registry.find_or_produce(key, produce)[0]


def kb_retrieve(kb, mode: str = "hybrid", cache_dir: Path | None = None):
    """The `retrieve(question, k) -> [passage dict]` callable the grounded eval tasks take.

    With `cache_dir`, hits are kept in one JSON file per KB content and mode: a KB artifact never
    changes, so a rerun builds its grounded tasks (whose prompts hold the passages, hence their cache
    keys) without loading the index or embedding a question. The index is loaded on the first miss."""
    import json

    from wattlm.kb.index import load_index
    from wattlm.kb.retrieve import search
    from wattlm.shared.records import atomic_write_text

    index = []
    cache_file = cache_dir / f"{kb.cache_key or kb.id}-{mode}.json" if cache_dir is not None else None
    cached: dict[str, list[dict]] = {}
    if cache_file is not None and cache_file.exists():
        try:
            cached = json.loads(cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # a damaged cache is only a cache: search again
            cached = {}

    def retrieve(question: str, k: int) -> list[dict]:
        key = json.dumps([question, k], ensure_ascii=False)
        if key not in cached:
            if not index:
                index.append(load_index(Path(kb.path)))  # once, for every question that misses
            cached[key] = [hit.to_dict() for hit in search(index[0], question, k=k, mode=mode)]
            if cache_file is not None:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(cache_file, json.dumps(cached, ensure_ascii=False))
        return cached[key]
    return retrieve


def recipe_kb(registry: Registry, recipe, progress: bool, say=lambda msg: None) -> tuple[Artifact, bool]:
    """The recipe's `knowledge:` section through the KB stage: its inputs (default: the data inputs) as a
    KB dataset, then the KB. An unchanged recipe finds both by their content keys."""
    from wattlm.kb.stage import build_kb

    section = recipe.knowledge
    fields = "knowledge.inputs" if section.inputs else "data.inputs"
    inputs = [recipe.resolve(p) for p in (section.inputs or recipe.data.inputs)]
    for path in inputs:
        if not path.exists():
            raise NotFound(f"knowledge input not found: {path} (recipe field {fields})")
    name = section.name or f"{recipe.name}-kb"
    dataset = documents_dataset(registry, inputs, f"{name}-documents", progress=progress)
    origins = kb_origins(inputs, shown_under=recipe.base_dir.resolve())
    return build_kb(registry, dataset, name, section.chunking, origins, sidecar_hash(inputs),
                    progress=lambda msg: say(f"[bold]kb[/] {msg}"))


def grounded_tasks(recipe, kb: Artifact, paths: list[Path], cache_dir: Path | None = None) -> list:
    """The tier's JSONL task files as grounded tasks (QA -> rag, multiple choice -> ragmc); `cache_dir`
    keeps the retrieval's hits for the next run (kb_retrieve)."""
    from wattlm.eval.loaders import grounded_task
    from wattlm.eval.task import TaskSettings, read_jsonl

    settings = TaskSettings(batch_size=recipe.eval.batch_size_tasks, max_new_tokens=recipe.eval.max_new_tokens)
    retrieve = kb_retrieve(kb, recipe.knowledge.retrieval.mode, cache_dir)
    if recipe.knowledge.eval is not None:  # named on purpose: a file that is not a question set is an error
        files = [recipe.resolve(p) for p in recipe.knowledge.eval]
    else:  # the tier's own sets: only its question files (a perplexity JSONL or a harness YAML is skipped)
        files = [f for f in map(recipe.resolve, paths) if f.suffix == ".jsonl" and "question" in read_jsonl(f)[0]]
    return [grounded_task(f, settings, retrieve, recipe.knowledge.retrieval.k) for f in files]


def grounded_summary(scores: dict[str, dict[str, float]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per role and eval set, what a reader looks at first: retrieval recall@3 / MRR, closed-book vs
    grounded char-F1 and key-character recall (QA) and grounded accuracy (MC)."""
    wanted = {"rag": ("recall_at_3", "mrr", "closed_char_f1", "char_f1", "closed_key_recall", "key_recall",
                      "refusal_rate", "false_refusals"),
              "ragmc": ("recall_at_3", "mrr", "acc")}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for role, values in scores.items():
        for name, value in values.items():
            kind, _, rest = name.partition(":")
            task, _, score = rest.rpartition(":")
            if kind in wanted and score in wanted[kind]:
                out.setdefault(role, {}).setdefault(f"{kind}:{task}", {})[score] = value
    return out
