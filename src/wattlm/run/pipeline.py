"""`watt run recipe.yaml`: every stage in order, each cached in the registry by its inputs.

foundation --(data)--> corpus --(train)--> industry model --(eval)--> scores --(export)--> GGUF.
A rerun of an unchanged recipe finds each stage's artifact by its cache key and recomputes nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from wattlm.cache import files_fingerprint, fingerprint
from wattlm.errors import NotFound
from wattlm.recipe import Recipe
from wattlm.registry import Artifact, Registry


@dataclass
class RunSummary:
    recipe: str
    seconds: float = 0.0
    reused: dict[str, bool] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # role -> artifact id
    data: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # model role -> set -> ppl
    exports: list[dict] = field(default_factory=list)
    gates: list[dict] = field(default_factory=list)
    report_html: str = ""
    report_json: str = ""
    model_path: str = ""

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def corpus_dataset(registry: Registry, recipe: Recipe, progress: bool) -> tuple[Artifact, bool]:
    from wattlm.data.pipeline import build_corpus

    inputs = _check_inputs(recipe)
    config = recipe.data.data_config()
    # Worker count changes speed, not output (the executor is deterministic): not part of the key.
    key = fingerprint("data", files_fingerprint(inputs), config.model_dump(exclude={"workers"}))
    cached = registry.find(key)
    if cached is not None:
        return cached, True
    with registry.staging() as staged:
        report = build_corpus(inputs, staged, config, progress=progress)
        summary = report.to_dict() if hasattr(report, "to_dict") else report.model_dump()
        metrics = {k: summary[k] for k in ("docs_in", "docs_kept", "docs_train", "docs_heldout",
                                           "chars_in", "chars_kept", "files_failed") if k in summary}
        metrics["dropped"] = summary.get("dropped", {})
        artifact = registry.register(
            "dataset", f"{recipe.name}-corpus", staged=staged, format="jsonl",
            recipe={"data": recipe.data.model_dump(mode="json")}, metrics=metrics,
            meta={"inputs": [str(p) for p in inputs]}, cache_key=key,
        )
    return artifact, False


def _check_inputs(recipe: Recipe) -> list[Path]:
    inputs = [recipe.resolve(p) for p in recipe.data.inputs]
    for path in inputs:
        if not path.exists():
            raise NotFound(f"data input not found: {path} (recipe field data.inputs)")
    if recipe.train.replay is not None and not recipe.resolve(recipe.train.replay).exists():
        raise NotFound(f"replay text not found: {recipe.resolve(recipe.train.replay)} (recipe field train.replay)")
    if recipe.eval.general is not None and not recipe.resolve(recipe.eval.general).exists():
        raise NotFound(f"general text not found: {recipe.resolve(recipe.eval.general)} (recipe field eval.general)")
    return inputs


def text_dataset(registry: Registry, path: Path, name: str) -> Artifact:
    """A folder/file of plain texts registered by reference (e.g. the general set for forgetting)."""
    if not path.exists():
        raise NotFound(f"text set not found: {path}")
    key = fingerprint("textset", str(path), files_fingerprint([path]))
    return registry.find(key) or registry.register(
        "dataset", name, path=path, format="text", meta={"source": str(path)}, cache_key=key
    )


def run_recipe(recipe: Recipe, registry: Registry, console=None, progress: bool = True) -> RunSummary:
    from wattlm.eval.stage import perplexity_on
    from wattlm.export.stage import export_model
    from wattlm.models.store import resolve_model
    from wattlm.train.stage import train_model

    say = (lambda msg: console.print(msg)) if console else (lambda msg: None)
    start = time.perf_counter()
    summary = RunSummary(recipe=recipe.name)
    _check_inputs(recipe)  # fail before loading any model

    foundation = resolve_model(registry, recipe.foundation)
    summary.artifacts["foundation"] = foundation.id
    say(f"[bold]foundation[/] {foundation.name} ({foundation.id})")

    corpus, summary.reused["data"] = corpus_dataset(registry, recipe, progress)
    summary.artifacts["corpus"] = corpus.id
    summary.data = corpus.metrics
    say(f"[bold]data[/] {corpus.name}: {corpus.metrics.get('docs_in')} docs in, "
        f"{corpus.metrics.get('docs_kept')} kept{' (cached)' if summary.reused['data'] else ''}")

    replay = None
    if recipe.train.replay is not None:
        replay = text_dataset(registry, recipe.resolve(recipe.train.replay), f"{recipe.name}-replay")
        summary.artifacts["replay"] = replay.id
    industry, summary.reused["train"] = train_model(
        registry, foundation, corpus, recipe.train.train_config(), f"{recipe.name}-industry", progress=progress,
        recipe=recipe.model_dump(mode="json"), replay=replay,
    )
    summary.artifacts["industry"] = industry.id
    summary.train = {k: v for k, v in industry.metrics.items() if k.startswith("train_")}
    summary.model_path = str(industry.path)
    say(f"[bold]train[/] {industry.name} ({industry.id}){' (cached)' if summary.reused['train'] else ''}")

    sets = [(corpus, "heldout", "domain")]
    if recipe.eval.general is not None:
        general = text_dataset(registry, recipe.resolve(recipe.eval.general), f"{recipe.name}-general")
        summary.artifacts["general"] = general.id
        sets.append((general, "all", "general"))
    eval_reused = True
    for role, model in (("foundation", foundation), ("industry", industry)):
        for textset, split, label in sets:
            say(f"[bold]eval[/] {role} on {label} text")
            score, reused = perplexity_on(
                registry, registry.get(model.id), textset, split, seq_len=recipe.eval.seq_len,
                batch_size=recipe.eval.batch_size, max_tokens=recipe.eval.max_tokens,
            )
            eval_reused &= reused
            summary.scores.setdefault(role, {})[label] = score["ppl"]
    summary.reused["eval"] = eval_reused

    if recipe.gates:
        from wattlm.eval.gates import GateFailed, check_gates

        summary.gates = check_gates(recipe.gates, summary.scores)
        for gate in summary.gates:
            say(f"[bold]gate[/] {'[green]pass[/]' if gate['passed'] else '[red]FAIL[/]'} {gate['message']}")
        failed = [g for g in summary.gates if not g["passed"]]
        if failed:
            summary.seconds = round(time.perf_counter() - start, 1)
            _write_report(registry, recipe, summary, industry)
            raise GateFailed(f"quality gate failed: {failed[0]['message']} (report: {summary.report_html})")

    if recipe.export is not None:
        exports, summary.reused["export"] = export_model(
            registry, industry, recipe.export.quants, check_prompt=recipe.export.check_prompt,
            check_tokens=recipe.export.check_tokens, progress=lambda m: say(f"[bold]export[/] {m}"),
            ppl_set=(corpus, "heldout"), seq_len=recipe.eval.seq_len, max_tokens=recipe.eval.max_tokens,
        )
        summary.exports = [{"id": e.id, "path": str(e.path / e.meta["file"]), **e.metrics} for e in exports]

    summary.seconds = round(time.perf_counter() - start, 1)
    _write_report(registry, recipe, summary, industry)
    return summary


def _write_report(registry: Registry, recipe: Recipe, summary: RunSummary, industry: Artifact) -> None:
    from wattlm.run.report import render_html

    parents = [(artifact_id, role) for role, artifact_id in summary.artifacts.items()]
    with registry.staging() as staged:
        losses = json.loads((industry.path / "train_log.json").read_text()).get("losses", []) \
            if (industry.path / "train_log.json").exists() else []
        summary.report_json = "report.json"
        (staged / "report.json").write_text(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
        (staged / "report.html").write_text(render_html(summary.to_dict(), losses), encoding="utf-8")
        report = registry.register(
            "report", f"{recipe.name}-run", staged=staged, format="html", parents=parents,
            metrics={"scores": summary.scores},
        )
    summary.report_html = str(report.path / "report.html")
    summary.report_json = str(report.path / "report.json")
