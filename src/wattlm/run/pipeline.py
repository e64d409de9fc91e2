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
from wattlm.errors import NotFound, WattError
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
    synth: dict = field(default_factory=dict)
    task_train: dict = field(default_factory=dict)
    task_exports: list[dict] = field(default_factory=list)
    gates: list[dict] = field(default_factory=list)
    report_html: str = ""
    report_json: str = ""
    model_path: str = ""

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def corpus_dataset(registry: Registry, recipe: Recipe, progress: bool) -> tuple[Artifact, bool]:
    from wattlm.data.pipeline import build_corpus

    inputs = _check_inputs(recipe)
    config = recipe.data.data_config().with_paths_under(recipe.base_dir)
    # Workers and executor change speed, not output (the executors are deterministic): not in the key;
    # files the settings name (quality model, eval sets, perplexity GGUF) are, by content.
    key = fingerprint("data", files_fingerprint(inputs), config.cache_settings())
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
    for path in recipe.data.data_config().with_paths_under(recipe.base_dir).referenced_files():
        if not path.exists():
            raise NotFound(f"file named in the data section not found: {path}")
    task_files = [(p, f"eval.tasks[{i}]") for i, p in enumerate(recipe.eval.tasks)]
    if recipe.task is not None:
        task_files += [(p, f"task.eval[{i}]") for i, p in enumerate(recipe.task.eval)]
    for path, where in task_files:
        if not recipe.resolve(path).exists():
            raise NotFound(f"eval task file not found: {recipe.resolve(path)} (recipe field {where})")
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
    from wattlm.models.store import resolve_model

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

    industry = _industry_tier(registry, recipe, summary, foundation, corpus, say, progress)
    summary.model_path = str(industry.path)
    _gate(registry, recipe, summary, recipe.gates, "industry", "foundation", industry, say, start)

    if recipe.export is not None:
        summary.exports = _export(registry, recipe, industry, corpus, summary, "export", say)

    final = industry
    if recipe.task is not None:
        final = _task_tier(registry, recipe, summary, corpus, foundation, industry, say, progress, start)
        summary.model_path = str(final.path)

    summary.seconds = round(time.perf_counter() - start, 1)
    _write_report(registry, recipe, summary, final)
    return summary


def _industry_tier(registry: Registry, recipe: Recipe, summary: RunSummary, foundation: Artifact, corpus: Artifact,
                   say, progress: bool) -> Artifact:
    """Continued pretraining on the corpus, then perplexity (and task scores) beside the foundation."""
    from wattlm.eval.stage import perplexity_on
    from wattlm.train.stage import train_model

    replay = None
    if recipe.train.replay is not None:
        replay = text_dataset(registry, recipe.resolve(recipe.train.replay), f"{recipe.name}-replay")
        summary.artifacts["replay"] = replay.id
    industry, summary.reused["train"] = train_model(
        registry, foundation, corpus, _train_config(recipe, recipe.train), f"{recipe.name}-industry", progress=progress,
        recipe=recipe.model_dump(mode="json"), replay=replay,
    )
    summary.artifacts["industry"] = industry.id
    summary.train = {k: v for k, v in industry.metrics.items() if k.startswith("train_")}
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
    if recipe.eval.tasks:
        eval_reused &= _task_scores(registry, recipe, summary, recipe.eval.tasks,
                                    (("foundation", foundation), ("industry", industry)), say)
    summary.reused["eval"] = eval_reused
    return registry.get(industry.id)


def _train_config(recipe: Recipe, section):
    """The section's TrainConfig, with a teacher given as a folder resolved against the recipe file."""
    config = section.train_config()
    teacher = getattr(config, "teacher", None)  # a field of the methods that declare a teacher (distill)
    if teacher and recipe.resolve(Path(teacher)).exists():
        config = config.model_copy(update={"teacher": str(recipe.resolve(Path(teacher)))})
    return config


def _task_scores(registry: Registry, recipe: Recipe, summary: RunSummary, paths: list[Path],
                 models: tuple[tuple[str, Artifact], ...], say) -> bool:
    """Score each model on the task files (stored on the artifacts); returns whether all were reused."""
    from wattlm.eval.loaders import TaskSettings, load_task
    from wattlm.eval.runner import evaluate_model

    settings = TaskSettings(batch_size=recipe.eval.batch_size_tasks, max_new_tokens=recipe.eval.max_new_tokens,
                            seq_len=recipe.eval.seq_len, max_tokens=recipe.eval.max_tokens)
    tasks = [load_task(recipe.resolve(path), settings) for path in paths]
    names = [t.name for t in tasks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # scores are stored under the task name: two files of one name would overwrite each other
        raise WattError(f"two eval task files are both named {twice[0]!r}; rename one (recipe: {', '.join(map(str, paths))})")
    reused = True
    for role, model in models:
        for result in evaluate_model(registry, registry.get(model.id), tasks, say=lambda m: say(f"[bold]eval[/] {m}")):
            reused &= result.reused
            summary.scores.setdefault(role, {}).update(result.scores)
    return reused


def _gate(registry: Registry, recipe: Recipe, summary: RunSummary, gates, child: str, parent: str,
          model: Artifact, say, start: float) -> None:
    """Check `child` against `parent`; a failure writes the report and stops the run (exit code 4)."""
    if not gates:
        return
    from wattlm.eval.gates import GateFailed, check_gates

    results = [{**g, "tier": child} for g in check_gates(gates, summary.scores, child=child, parent=parent)]
    summary.gates.extend(results)
    for gate in results:
        say(f"[bold]gate[/] {'[green]pass[/]' if gate['passed'] else '[red]FAIL[/]'} {gate['message']}")
    failed = [g for g in results if not g["passed"]]
    if failed:
        summary.seconds = round(time.perf_counter() - start, 1)
        _write_report(registry, recipe, summary, model)
        raise GateFailed(f"quality gate failed: {failed[0]['message']} (report: {summary.report_html})")


def _export(registry: Registry, recipe: Recipe, model: Artifact, corpus: Artifact, summary: RunSummary, stage: str,
            say) -> list[dict]:
    from wattlm.export.stage import export_model

    exports, summary.reused[stage] = export_model(
        registry, model, recipe.export.quants, check_prompt=recipe.export.check_prompt,
        check_tokens=recipe.export.check_tokens, progress=lambda m: say(f"[bold]{stage}[/] {m}"),
        ppl_set=(corpus, "heldout"), seq_len=recipe.eval.seq_len, max_tokens=recipe.eval.max_tokens,
    )
    return [{"id": e.id, "path": str(e.path / e.meta["file"]), **e.metrics} for e in exports]


def _task_tier(registry: Registry, recipe: Recipe, summary: RunSummary, corpus: Artifact, foundation: Artifact,
               industry: Artifact, say, progress: bool, start: float) -> Artifact:
    """Teacher -> grounded QA from the corpus -> sft of the industry model -> task model, judged against it."""
    from wattlm.synth.stage import synthesize
    from wattlm.synth.teachers.resolve import make_teacher
    from wattlm.train.stage import train_model

    task = recipe.task
    if task.teacher_url is not None:
        teacher = make_teacher(registry, task.synth, url=task.teacher_url, model=task.teacher_model)
    else:
        local = {"industry": industry.id, "foundation": foundation.id}.get(task.teacher, task.teacher)
        teacher = make_teacher(registry, task.synth, local=local)
    # The task eval's own questions are kept out of the training data (eval_overlap), with any the recipe names.
    eval_sets = [recipe.resolve(p) for p in task.synth.eval_sets]
    eval_sets += [recipe.resolve(p) for p in task.eval if p.suffix == ".jsonl" and recipe.resolve(p) not in eval_sets]
    synth_config = task.synth.model_copy(update={"eval_sets": eval_sets})
    try:
        say(f"[bold]synth[/] teacher {teacher.name}")
        qa, summary.reused["synth"] = synthesize(registry, corpus, teacher, synth_config, name=f"{recipe.name}-synth",
                                                 progress=progress)
    finally:
        teacher.close()
    summary.artifacts["synth"] = qa.id
    summary.synth = {k: qa.metrics.get(k) for k in ("chunks", "requests", "examples", "question_source", "dropped",
                                                    "teacher_failures", "mean_grounding", "examples_per_minute")}
    say(f"[bold]synth[/] {qa.name}: {qa.metrics.get('examples')} examples{' (cached)' if summary.reused['synth'] else ''}")

    replay = None
    if task.train.replay is not None:
        replay = text_dataset(registry, recipe.resolve(task.train.replay), f"{recipe.name}-task-replay")
    model, summary.reused["task_train"] = train_model(
        registry, industry, qa, _train_config(recipe, task.train), f"{recipe.name}-task", progress=progress,
        recipe=recipe.model_dump(mode="json"), replay=replay,
    )
    summary.artifacts["task"] = model.id
    summary.task_train = {k: v for k, v in model.metrics.items() if k.startswith("train_")}
    say(f"[bold]train[/] {model.name} ({model.id}, tier {model.tier}){' (cached)' if summary.reused['task_train'] else ''}")

    if task.eval:
        summary.reused["task_eval"] = _task_scores(registry, recipe, summary, task.eval,
                                                   (("industry", industry), ("task", model)), say)
    _gate(registry, recipe, summary, task.gates, "task", "industry", model, say, start)
    if task.export and recipe.export is not None:
        summary.task_exports = _export(registry, recipe, model, corpus, summary, "task_export", say)
    return registry.get(model.id)


def _write_report(registry: Registry, recipe: Recipe, summary: RunSummary, model: Artifact) -> None:
    from wattlm.run.report import render_html

    parents = [(artifact_id, role) for role, artifact_id in summary.artifacts.items()]
    curves = {}
    for role in ("industry", "task"):
        log = registry.get(summary.artifacts[role]).path / "train_log.json" if role in summary.artifacts else None
        if log is not None and log.exists():
            curves[role] = json.loads(log.read_text()).get("losses", [])
    with registry.staging() as staged:
        summary.report_json = "report.json"
        (staged / "report.json").write_text(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
        (staged / "report.html").write_text(render_html(summary.to_dict(), curves), encoding="utf-8")
        report = registry.register(
            "report", f"{recipe.name}-run", staged=staged, format="html", parents=parents,
            metrics={"scores": summary.scores},
        )
    summary.report_html = str(report.path / "report.html")
    summary.report_json = str(report.path / "report.json")
