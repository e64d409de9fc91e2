"""`watt run recipe.yaml`: every stage in order, each cached in the registry by its inputs.

foundation --(data)--> corpus --(train)--> industry model --(eval)--> scores --(export)--> GGUF
           (--(synth)--> QA --(train)--> task model --(eval)--> scores --(export)--> GGUF)
           (--(kb)--> knowledge base: every tier is also scored grounded on it; run/knowledge.py).
This module only calls the stages' `stage.py` functions in order; a tier's training path (train ->
scores beside the parent -> gate -> export) is `_train_tier`, the same for the industry and task tiers.
A rerun of an unchanged recipe finds each stage's artifact by its content key and recomputes nothing.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from wattlm.data.stage import text_dataset
from wattlm.errors import NotFound
from wattlm.recipe import Recipe
from wattlm.registry import Artifact, Registry
from wattlm.run.scoring import LoadedModel, RunSets, mark_cached, score_model
from wattlm.shared.progress import emit, stage_started
from wattlm.shared.timeline import Timeline, recording, timed


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
    knowledge: dict = field(default_factory=dict)  # the KB: id, chunks, sources, threshold
    grounded: dict = field(default_factory=dict)  # role -> "<kind>:<set>" -> recall@3, MRR, closed vs grounded
    task_train: dict = field(default_factory=dict)
    task_exports: list[dict] = field(default_factory=list)
    serving: dict = field(default_factory=dict)  # the served file's speed (engines/batching/speed.py)
    task_serving: dict = field(default_factory=dict)
    gates: list[dict] = field(default_factory=list)
    timeline: list[dict] = field(default_factory=list)  # every stage and sub-step: name, depth, start, seconds
    stage_seconds: dict[str, float] = field(default_factory=dict)  # seconds per stage (top-level spans)
    report_html: str = ""
    report_json: str = ""
    log_file: str = ""  # llama.cpp / transformers log lines and the run's progress lines
    model_path: str = ""

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def corpus_dataset(registry: Registry, recipe: Recipe, progress: bool) -> tuple[Artifact, bool]:
    """The recipe's data section through the data stage (the same function `watt data build` calls)."""
    from wattlm.data.stage import build_dataset

    config = recipe.data.data_config().with_paths_under(recipe.base_dir)
    return build_dataset(registry, _check_inputs(recipe), config, f"{recipe.name}-corpus", progress=progress,
                         recipe={"data": recipe.data.model_dump(mode="json")})


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
    if recipe.knowledge is not None:
        task_files += [(p, f"knowledge.eval[{i}]") for i, p in enumerate(recipe.knowledge.eval or [])]
        for path in recipe.knowledge.inputs or []:
            if not recipe.resolve(path).exists():
                raise NotFound(f"knowledge input not found: {recipe.resolve(path)} (recipe field knowledge.inputs)")
    for path, where in task_files:
        if not recipe.resolve(path).exists():
            raise NotFound(f"eval task file not found: {recipe.resolve(path)} (recipe field {where})")
    return inputs


def run_recipe(recipe: Recipe, registry: Registry, console=None, progress: bool = True,
               log_file: Path | None = None, verbose: bool = False) -> RunSummary:
    """Every stage of `recipe` in order; the summary holds a timeline of where the time went.

    llama.cpp's and transformers' own log lines go to `log_file` (default: a new file under
    `$WATT_HOME/logs/`), with the run's progress lines; `verbose` also prints them (shared/logs.py)."""
    from wattlm.shared.logs import hide_progress_bars, third_party_logs

    if not verbose:
        hide_progress_bars()
    log_file = log_file or registry.home / "logs" / f"run-{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    timeline = Timeline()
    summary = RunSummary(recipe=recipe.name, log_file=str(log_file))
    with third_party_logs(log_file, verbose), recording(timeline):
        try:
            _run(recipe, registry, summary, console, progress, timeline)
        finally:  # a failed gate still reports its stages' times (its report is written before it raises)
            _close_timeline(summary, timeline)
    return summary


def _close_timeline(summary: RunSummary, timeline: Timeline) -> None:
    summary.timeline = timeline.to_list()
    summary.stage_seconds = timeline.stage_seconds()
    summary.seconds = round(timeline.elapsed(), 1)


def _run(recipe: Recipe, registry: Registry, summary: RunSummary, console, progress: bool,
         timeline: Timeline) -> None:
    from wattlm.models.store import resolve_model

    say = _sayer(console)
    _check_inputs(recipe)  # fail before loading any model

    with timed("foundation"):
        foundation = resolve_model(registry, recipe.foundation)
    summary.artifacts["foundation"] = foundation.id
    say(f"[bold]foundation[/] {foundation.name} ({foundation.id})")

    with timed("data") as span:
        corpus, summary.reused["data"] = corpus_dataset(registry, recipe, progress)
        mark_cached(span, summary.reused["data"])
    summary.artifacts["corpus"] = corpus.id
    summary.data = corpus.metrics
    say(f"[bold]data[/] {corpus.name}: {corpus.metrics.get('docs_in')} docs in, "
        f"{corpus.metrics.get('docs_kept')} kept{' (cached)' if summary.reused['data'] else ''}")

    kb = None
    if recipe.knowledge is not None:
        with timed("kb") as span:
            kb = _knowledge(registry, recipe, summary, say, progress)
            mark_cached(span, summary.reused["kb"])
    sets = RunSets(registry, recipe, summary, corpus, kb)
    knowledge_gates = recipe.knowledge.gates if recipe.knowledge is not None else []
    industry = _train_tier(registry, recipe, summary, Tier(
        role="industry", parent_role="foundation", parent=foundation, data=corpus, section=recipe.train,
        stage="", perplexity=True, tasks=recipe.eval.tasks,
        gates=recipe.gates + (knowledge_gates if recipe.task is None else []), export=recipe.export is not None,
        kb=kb, next_tasks=recipe.task.eval if recipe.task is not None else [],
    ), corpus, sets, say, progress, timeline)

    final = industry
    if recipe.task is not None:
        with timed("synth") as span:
            qa = _synth(registry, recipe, summary, corpus, foundation, industry, say, progress)
            mark_cached(span, summary.reused["synth"])
        final = _train_tier(registry, recipe, summary, Tier(
            role="task", parent_role="industry", parent=industry, data=qa, section=recipe.task.train,
            stage="task_", perplexity=False, tasks=recipe.task.eval, gates=recipe.task.gates + knowledge_gates,
            export=recipe.task.export and recipe.export is not None, kb=kb,
        ), corpus, sets, say, progress, timeline)

    _close_timeline(summary, timeline)
    stage_started("report")
    _write_report(registry, recipe, summary, final)


def _sayer(console):
    """Progress lines to the terminal (when there is a console) and, without markup, to the run's log."""
    import logging

    from rich.text import Text

    from wattlm.shared.logs import OURS

    log = logging.getLogger(OURS)

    def say(message: str) -> None:
        if console is not None:
            console.print(message)
        plain = Text.from_markup(message).plain
        log.info(plain)
        emit("message", text=plain)  # a recorded job's log and events (wattlm.run.recording)
    return say


@dataclass
class Tier:
    """One tier's training path: trained from `parent` on `data`, scored beside it, gated, exported."""

    role: str  # "industry" or "task": its name in the summary, the artifact name and the gates
    parent_role: str  # the tier it is judged against
    parent: Artifact
    data: Artifact
    section: object  # the recipe's TrainSection for this tier
    stage: str  # prefix of the summary's stage names: "" (train, eval, export) or "task_"
    perplexity: bool  # scored on the domain held-out and the general text (recipe.eval) beside its parent
    tasks: list[Path]  # eval task files
    gates: list
    export: bool
    kb: Artifact | None = None  # the recipe's knowledge base: each model is also scored grounded on it
    # The next tier's task files: this tier's model is scored on them now, while it is loaded, so the
    # next tier finds its parent's scores stored and loads it no more.
    next_tasks: list[Path] = field(default_factory=list)


def _train_tier(registry: Registry, recipe: Recipe, summary: RunSummary, tier: Tier, corpus: Artifact,
                sets: RunSets, say, progress: bool, timeline: Timeline) -> Artifact:
    """train -> scores beside the parent -> gate -> export: the same path for the industry and task tiers.

    Each model is loaded once for all its scores (run/scoring.py) and the export's reference reads the
    same copy; a model whose scores are all stored is not loaded at all."""
    from wattlm.train.stage import train_model

    replay = None
    with timed(f"{tier.role} train") as span:
        if tier.section.replay is not None:
            replay = text_dataset(registry, recipe.resolve(tier.section.replay),
                                  f"{recipe.name}-{tier.stage.replace('_', '-')}replay")
            summary.artifacts[f"{tier.stage}replay"] = replay.id
        model, summary.reused[f"{tier.stage}train"] = train_model(
            registry, tier.parent, tier.data, _train_config(recipe, tier.section), f"{recipe.name}-{tier.role}",
            progress=progress, recipe=recipe.model_dump(mode="json"), replay=replay,
        )
        mark_cached(span, summary.reused[f"{tier.stage}train"])
    summary.artifacts[tier.role] = model.id
    setattr(summary, f"{tier.stage}train", {k: v for k, v in model.metrics.items() if k.startswith("train_")})
    say(f"[bold]train[/] {model.name} ({model.id}, tier {model.tier})"
        f"{' (cached)' if summary.reused[f'{tier.stage}train'] else ''}")

    loaded = LoadedModel(registry, model)
    try:
        with timed(f"{tier.role} eval") as span:
            reused = {"eval": True, "grounded_eval": True}
            models = ((tier.parent_role, tier.parent, tier.tasks), (tier.role, model, [*tier.tasks, *tier.next_tasks]))
            for role, art, paths in models:
                holder = loaded if art.id == model.id else LoadedModel(registry, art)
                got = score_model(registry, recipe, summary, role, art, sets.for_model(tier.perplexity, paths),
                                  holder, say)
                if holder is not loaded:  # the parent is done; the child stays loaded for its export
                    holder.release()
                reused = {k: reused[k] and got[k] for k in reused}
            mark_cached(span, all(reused.values()))
        if tier.perplexity or tier.tasks:
            summary.reused[f"{tier.stage}eval"] = reused["eval"]
        if tier.kb is not None:
            from wattlm.run.knowledge import grounded_summary

            summary.reused[f"{tier.stage}grounded_eval"] = reused["grounded_eval"]
            summary.grounded = grounded_summary(summary.scores)
        summary.model_path = str(model.path)
        _gate(registry, recipe, summary, tier.gates, tier.role, tier.parent_role, model, say, timeline)
        if tier.export:
            with timed(f"{tier.role} export") as span:
                setattr(summary, f"{tier.stage}exports", _export(registry, recipe, model, corpus, summary,
                                                                 f"{tier.stage}export", say, loaded))
                mark_cached(span, summary.reused[f"{tier.stage}export"])
    finally:
        loaded.release()
    return registry.get(model.id)


def _knowledge(registry: Registry, recipe: Recipe, summary: RunSummary, say, progress: bool) -> Artifact:
    """The recipe's knowledge base (built once; an unchanged recipe reuses it)."""
    from wattlm.run.knowledge import recipe_kb

    kb, summary.reused["kb"] = recipe_kb(registry, recipe, progress, say)
    summary.artifacts["kb"] = kb.id
    summary.knowledge = {"id": kb.id, "name": kb.name, **{k: kb.metrics.get(k) for k in ("chunks", "sources", "threshold")}}
    say(f"[bold]kb[/] {kb.name} ({kb.id}): {kb.metrics.get('chunks')} chunks from {kb.metrics.get('sources')} sources"
        f"{' (cached)' if summary.reused['kb'] else ''}")
    return kb


def _train_config(recipe: Recipe, section):
    """The section's TrainConfig, with a teacher given as a folder resolved against the recipe file."""
    config = section.train_config()
    teacher = getattr(config, "teacher", None)  # a field of the methods that declare a teacher (distill)
    if teacher and recipe.resolve(Path(teacher)).exists():
        config = config.model_copy(update={"teacher": str(recipe.resolve(Path(teacher)))})
    return config


def _gate(registry: Registry, recipe: Recipe, summary: RunSummary, gates, child: str, parent: str,
          model: Artifact, say, timeline: Timeline) -> None:
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
        _close_timeline(summary, timeline)
        _write_report(registry, recipe, summary, model)
        raise GateFailed(f"quality gate failed: {failed[0]['message']} (report: {summary.report_html})")


def _export(registry: Registry, recipe: Recipe, model: Artifact, corpus: Artifact, summary: RunSummary, stage: str,
            say, loaded: LoadedModel) -> list[dict]:
    from wattlm.export.stage import export_model

    served = recipe.export.served_quant
    exports, summary.reused[stage] = export_model(
        registry, model, recipe.export.quants, check_prompt=recipe.export.check_prompt,
        check_tokens=recipe.export.check_tokens, progress=lambda m: say(f"[bold]{stage}[/] {m}"),
        ppl_set=(corpus, "heldout"), seq_len=recipe.eval.seq_len, max_tokens=recipe.eval.max_tokens, loaded=loaded,
        checked=None if recipe.export.check == "all" else {served},
    )
    if registry.get(model.id).metrics.get("served_quant") != served:  # which file `watt serve` loads
        registry.add_metrics(model.id, {"served_quant": served})
    check = recipe.export.serve_check
    if check is not None:  # timed every run, cached or not: it is this machine's speed now
        from wattlm.engines.batching.speed import SpeedCheck, measure

        served_file = next(e.path / e.meta["file"] for e in exports if e.meta["quant"] == served)
        with timed("serve check"):
            speed = measure(served_file, SpeedCheck(tokens=check.tokens, clients=check.clients, repeats=check.repeats))
        setattr(summary, stage.replace("export", "serving"), speed)
        say(f"[bold]{stage}[/] served {served}: one stream {speed['single_t0_pct_of_raw']:.0f} % of llama.cpp's "
            f"{speed['raw_tok_s']} tok/s; {check.clients} streams {speed['concurrent_tok_s']} tok/s")
    return [{"id": e.id, "path": str(e.path / e.meta["file"]), "served": e.meta["quant"] == served, **e.metrics}
            for e in exports]


def _synth(registry: Registry, recipe: Recipe, summary: RunSummary, corpus: Artifact, foundation: Artifact,
           industry: Artifact, say, progress: bool) -> Artifact:
    """Teacher -> grounded QA from the corpus: the task tier's training data."""
    from wattlm.synth.stage import synthesize
    from wattlm.synth.teachers.resolve import make_teacher

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
    return qa


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
