"""Scoring a tier's models in a run: every score a model needs, from one load of it.

A model's scores (perplexity on the domain held-out and the general text, the tier's task files, the
grounded tasks on the recipe's KB, and the sets the next tier will compare it on) are computed while
one loaded copy of it is in memory, and the export's transformers reference reads the same copy. A
score stored with the same content key is reused and loads nothing (eval/stage.py, eval/runner.py), so
a second run, or the next tier scoring this model as its parent, recomputes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wattlm.data.stage import text_dataset
from wattlm.errors import WattError
from wattlm.registry import Artifact, Registry
from wattlm.shared.progress import emit
from wattlm.shared.timeline import timed


class LoadedModel:
    """One model's transformers weights and tokenizer, loaded on first use and kept until `release`.

    Callable both ways the stages take a loader: `loaded()` (eval/stage.py, export/stage.py) and
    `loaded(registry, model)` (eval/runner.py's `loader`)."""

    def __init__(self, registry: Registry, model: Artifact):
        self.registry, self.model = registry, model
        self._pair: tuple[object, object] | None = None
        self.loads = 0

    def __call__(self, registry: Registry | None = None, model: Artifact | None = None) -> tuple[object, object]:
        if model is not None and model.id != self.model.id:
            raise WattError(f"internal: a loader of {self.model.id} was asked for {model.id}")
        if self._pair is None:
            from wattlm.models.hf import load_causal_lm, load_tokenizer
            from wattlm.models.store import hf_dir

            with timed(f"load {self.model.name}"):
                folder = hf_dir(self.registry, self.model)
                self._pair = (load_causal_lm(folder), load_tokenizer(folder))
            self.loads += 1
        return self._pair

    def release(self) -> None:
        self._pair = None  # the weights go with the last reference (a model is ~1 GB in fp32)


@dataclass
class ScoreSets:
    """What a model is scored on in a run."""

    texts: list[tuple[Artifact, str, str]] = field(default_factory=list)  # (text set, split, label)
    tasks: list = field(default_factory=list)  # eval Task objects (closed-book)
    grounded: list = field(default_factory=list)  # grounded Task objects (rag / ragmc)


def perplexity_sets(registry: Registry, recipe, summary, corpus: Artifact) -> list[tuple[Artifact, str, str]]:
    """(text set, split, label): the domain held-out, and the general text (did the model forget?)."""
    sets = [(corpus, "heldout", "domain")]
    if recipe.eval.general is not None:
        general = text_dataset(registry, recipe.resolve(recipe.eval.general), f"{recipe.name}-general")
        summary.artifacts["general"] = general.id
        sets.append((general, "all", "general"))
    return sets


def task_file(recipe, path: Path):
    """A task file as an eval task with the recipe's settings."""
    from wattlm.eval.loaders import TaskSettings, load_task

    settings = TaskSettings(batch_size=recipe.eval.batch_size_tasks, max_new_tokens=recipe.eval.max_new_tokens,
                            seq_len=recipe.eval.seq_len, max_tokens=recipe.eval.max_tokens)
    return load_task(recipe.resolve(path), settings)


def check_unique_names(tasks: list, paths: list[Path]) -> None:
    """Scores are stored under the task name: two files of one name would overwrite each other."""
    names = [t.name for t in tasks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise WattError(f"two eval task files are both named {twice[0]!r}; rename one (recipe: {', '.join(map(str, paths))})")


class RunSets:
    """The run's eval sets, each built once however many models are scored on it: text sets, task files
    and grounded tasks (a grounded task retrieves its passages when built; one retrieval serves all)."""

    def __init__(self, registry: Registry, recipe, summary, corpus: Artifact, kb: Artifact | None):
        self.registry, self.recipe, self.summary, self.corpus, self.kb = registry, recipe, summary, corpus, kb
        self._texts: list | None = None
        self._tasks: dict[Path, object] = {}
        self._grounded: dict[Path | None, list] = {}

    def for_model(self, perplexity: bool, paths: list[Path]) -> ScoreSets:
        if perplexity and self._texts is None:
            self._texts = perplexity_sets(self.registry, self.recipe, self.summary, self.corpus)
        for path in paths:
            if path not in self._tasks:
                self._tasks[path] = task_file(self.recipe, path)
        tasks = [self._tasks[path] for path in paths]
        check_unique_names(tasks, paths)
        return ScoreSets(texts=self._texts if perplexity else [], tasks=tasks, grounded=self._grounded_tasks(paths))

    def _grounded_tasks(self, paths: list[Path]) -> list:
        if self.kb is None:
            return []
        from wattlm.run.knowledge import grounded_tasks

        # `knowledge.eval` names the grounded sets of every tier; otherwise each tier's own files.
        wanted = [None] if self.recipe.knowledge.eval is not None else paths
        for path in wanted:
            if path not in self._grounded:
                with timed("retrieve for grounded tasks"):
                    self._grounded[path] = grounded_tasks(self.recipe, self.kb, [path] if path else [],
                                                          cache_dir=self.registry.home / "cache" / "retrieval")
        return [task for path in wanted for task in self._grounded[path]]


def score_model(registry: Registry, recipe, summary, role: str, model: Artifact, sets: ScoreSets,
                loaded: LoadedModel, say) -> dict[str, bool]:
    """Every score of `model` on `sets` into summary.scores[role]; returns whether each group was reused
    ({"eval": ..., "grounded_eval": ...}). Only a missing score loads the model (through `loaded`)."""
    from wattlm.eval.runner import evaluate_model
    from wattlm.eval.stage import perplexity_on

    scores = summary.scores.setdefault(role, {})
    reused = {"eval": True, "grounded_eval": True}
    for textset, split, label in sets.texts:
        with timed(f"perplexity {label} ({role})") as span:
            score, was_reused = perplexity_on(
                registry, registry.get(model.id), textset, split, seq_len=recipe.eval.seq_len,
                batch_size=recipe.eval.batch_size, max_tokens=recipe.eval.max_tokens, loaded=loaded,
                precision=recipe.eval.precision,
            )
            mark_cached(span, was_reused)
        if not was_reused:
            say(f"[bold]eval[/] {role} on {label} text: perplexity {score['ppl']:.2f}")
        reused["eval"] &= was_reused
        scores[label] = score["ppl"]
        emit("eval", model=role, scores={label: score["ppl"]})  # to a recorded job's events
    for group, tasks, tag in (("eval", sets.tasks, "eval"), ("grounded_eval", sets.grounded, "grounded")):
        if not tasks:
            continue
        results = evaluate_model(registry, registry.get(model.id), tasks, loader=loaded,
                                 say=lambda m, tag=tag: say(f"[bold]{tag}[/] {m}"), precision=recipe.eval.precision)
        for result in results:
            reused[group] &= result.reused
            scores.update(result.scores)
            emit("eval", model=role, scores=result.scores)
    return reused


def mark_cached(span, reused: bool) -> None:
    if span is not None and reused:
        span.note = "cached"
