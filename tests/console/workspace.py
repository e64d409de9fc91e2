"""A tiny workspace for the console tests: every kind of artifact the pages show, registered through the
registry as the stages do (small files instead of real weights), and one real knowledge base."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from wattlm.engines.params import GenerationChunk, SamplingParams
from wattlm.registry import Registry

from ..serve.fakes import FakeEngine

# Our own writing, English so the packaged embedding model reads it well.
KB_DOCS = {
    "pump_rules.md": "# Cooling pump rules\n\n## Inspection\n\nThe cooling pump bearing temperature must stay below "
                     "75 degrees Celsius.\n\n## Replacement\n\nReplace the pump seal every 8000 running hours.\n",
    "relay_test.txt": "Distance relay routine test\n\nZone 1 must trip within 30 ms during the routine test. "
                      "Never open a live current transformer secondary circuit.\n",
}
KEPT_DOCS = [
    {"id": "d1", "source": "shift_log.txt", "text": "Shift log. Call <PII_PHONE> or write to <PII_EMAIL> about the "
     "transformer outage at substation East; the load was moved to line 2 within ten minutes." * 2},
    {"id": "d2", "source": "relay.md", "text": "Relay settings: zone 1 trips within 30 ms; zone 2 after 300 ms." * 3},
    {"id": "d3", "source": "short_note.txt", "text": "Breaker 3 inspected on Monday, no defects found at all."},
]
DROPPED_SAMPLES = [{"reason": "too_short", "source": "stub.txt", "text": "Inspection record (to be written)"},
                   {"reason": "exact_duplicate", "source": "relay_copy.md", "text": KEPT_DOCS[1]["text"][:200]}]
TIER_MODELS = ("grid-foundation", "grid-industry", "grid-task")


class EchoEngine(FakeEngine):
    """Answers with the first line of the first passage in its prompt (so grounded answers cite it),
    or with the fake script when the prompt holds no passage."""

    def __init__(self) -> None:
        super().__init__(name="echo", context_length=100_000)

    def generate(self, prompt, params: SamplingParams) -> Iterator[GenerationChunk]:
        self.prompts.append(prompt)
        # The open-book prompt (shared/qa_format.py) holds the passage after "Passage: " (one passage, the
        # server's default layout) or as numbered "[n] source" blocks (the `numbered` layout).
        passages = re.findall(r"\[\d+\] [^\n]*\n([^\n]+)", prompt) or re.findall(r"Passage: ([^\n]+)", prompt)
        reply = passages[0] if passages else "Hello from the echo engine."
        pieces = re.findall(r"\S+\s*", reply)
        for produced, piece in enumerate(pieces, start=1):
            yield GenerationChunk(piece, "stop" if produced == len(pieces) else None, len(prompt.split()), produced)


def _staged(registry: Registry, kind: str, name: str, files: dict[str, str | bytes], **fields):
    with registry.staging() as staged:
        for rel, content in files.items():
            path = staged / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
        return registry.register(kind, name, staged=staged, **fields)


def build_workspace(root: Path) -> Path:
    """A workspace under `root/home`: three tiers, two exports, a corpus with a quality report, a run report
    with gates, and the KB `grid-docs` (embedded for real: a few seconds)."""
    from wattlm.kb.stage import build_kb
    from wattlm.run.knowledge import documents_dataset, kb_origins

    home = root / "home"
    registry = Registry(home)
    base_file = root / "base.gguf"
    base_file.write_bytes(b"GGUF" + b"\0" * 60)
    foundation = registry.register("model", "grid-foundation", path=base_file, tier="foundation", format="gguf",
                                   metrics={"ppl:grid-corpus/heldout:ppl": 130.5, "qa:grid-qa:char_f1": 10.0},
                                   meta={"file": "base.gguf"})
    report = {"docs_in": 6, "docs_kept": 3, "dropped": {"too_short": 1, "exact_duplicate": 2},
              "pii": {"email": 1, "mobile": 1},
              "steps": [{"name": "filter_too_short", "docs_in": 6, "docs_out": 5}],
              "length_histogram": [{"min_chars": 0, "max_chars": 100, "docs": 1},
                                   {"min_chars": 100, "max_chars": 200, "docs": 1},
                                   {"min_chars": 200, "max_chars": 500, "docs": 1}],
              "samples": {"kept": [], "dropped": DROPPED_SAMPLES}}
    shard = "".join(json.dumps(doc) + "\n" for doc in KEPT_DOCS)
    corpus = _staged(registry, "dataset", "grid-corpus", {"report.json": json.dumps(report),
                                                            "train/shard-00000.jsonl": shard},
                     format="jsonl", metrics={"docs_in": 6, "docs_kept": 3, "dropped": report["dropped"]},
                     recipe={"data": {"steps": [{"name": "filter_too_short", "params": {"min_chars": 50}},
                                                {"name": "scrub_pii", "params": {}}]}})
    log = {"losses": [5.0, 4.2, 3.9, 3.1, 2.8]}
    industry = _staged(registry, "model", "grid-industry", {"train_log.json": json.dumps(log), "config.json": "{}"},
                       tier="industry", format="hf", parents=[(foundation.id, "parent"), (corpus.id, "train_data")],
                       metrics={"ppl:grid-corpus/heldout:ppl": 45.25, "qa:grid-qa:char_f1": 24.5,
                                "train_steps": 5, "train_loss_end": 2.8}, meta={"method": "cpt"})
    task = _staged(registry, "model", "grid-task", {"train_log.json": json.dumps({"losses": [3.0, 2.0, 1.5]})},
                   tier="task", format="hf", parents=[(industry.id, "parent")],
                   metrics={"qa:grid-qa:char_f1": 51.75, "qa:grid-qa:exact_match": 30.0}, meta={"method": "sft"})
    for quant, size in (("q8_0", 0.3), ("q4_k_m", 0.2)):
        _staged(registry, "export", f"grid-task-{quant}", {f"model-{quant}.gguf": b"GGUF" + bytes(100)},
                tier="task", format="gguf", parents=[(task.id, "parent")],
                metrics={"quant": quant, "file": f"model-{quant}.gguf", "size_mb": size, "ppl": 50.5,
                         "decode_tok_s": 70.0, "greedy_match": 12, "greedy_total": 16},
                meta={"file": f"model-{quant}.gguf", "quant": quant})
    run_summary = {"recipe": "grid", "seconds": 42.0, "artifacts": {"industry": industry.id, "task": task.id},
                   "gates": [{"tier": "task", "passed": True, "message": "task qa_char_f1 51.75 >= industry 24.50 + 5"},
                             {"tier": "industry", "passed": True, "message": "industry domain_ppl 45.25 <= 0.8 x 130.5"}]}
    _staged(registry, "report", "grid-run", {"report.json": json.dumps(run_summary)}, format="html")
    docs = root / "kb-docs"
    docs.mkdir()
    for name, text in KB_DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    dataset = documents_dataset(registry, [docs], "grid-docs-documents", progress=False)
    build_kb(registry, dataset, "grid-docs", origins=kb_origins([docs], shown_under=docs))
    registry.close()
    return home
