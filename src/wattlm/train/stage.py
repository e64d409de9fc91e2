"""`watt train` as a registry step: parent model + dataset (+ teacher) -> a model of the next tier."""

from __future__ import annotations

import shutil
from pathlib import Path

from wattlm.cache import fingerprint
from wattlm.datasets import dataset_records, dataset_texts
from wattlm.errors import WattError
from wattlm.models.store import hf_dir
from wattlm.registry import Artifact, Registry
from wattlm.train.config import TrainConfig

NEXT_TIER = {"foundation": "industry", "industry": "task", "task": "task"}


def resolve_teacher(registry: Registry, ref: str) -> Artifact:
    """The teacher by registered name/id or packaged name; an HF folder is registered once, by path."""
    from wattlm.models.store import add_model, resolve_model

    folder = Path(ref).expanduser()
    if (folder / "config.json").exists():
        # Reuse the folder's earlier registration: a new id on every run would defeat the cache key.
        for model in registry.list("model"):
            if model.format == "hf" and model.path == folder.resolve():
                return model
        return add_model(registry, str(folder))
    return resolve_model(registry, ref)


def _cache_key(parent: Artifact, dataset: Artifact, replay: Artifact | None, teacher: Artifact | None,
               config: TrainConfig) -> str:
    # How often we checkpoint or how many threads run does not change the model: not part of the key.
    settings = config.model_dump(exclude={"save_every", "threads", "teacher"})
    parts = ["train", parent.id, dataset.id, replay.id if replay else None]
    if teacher is None:  # cpt / sft keys stay as before distillation existed: their cached runs stay valid
        for unused in ("kd_temperature", "kd_alpha", "kd_data"):
            settings.pop(unused)
    else:  # keyed by artifact id: the name in config.teacher may later point at another model
        parts.append(teacher.id)
    return fingerprint(*parts, settings)


def train_model(
    registry: Registry, parent: Artifact, dataset: Artifact, config: TrainConfig, name: str,
    progress: bool = True, recipe: dict | None = None, replay: Artifact | None = None,
    teacher: Artifact | None = None,
) -> tuple[Artifact, bool]:
    """Train (or reuse a finished run with the same inputs); returns (model, reused).

    `replay` is a text set mixed into training at `config.replay_ratio` (general data against forgetting).
    `teacher` is distillation's teacher; when None it is resolved from `config.teacher`. Under torchrun
    every process calls this; rank 0 registers the model and the others return that artifact.
    """
    from wattlm.train.dist import context

    if config.replay_ratio > 0 and replay is None:
        raise WattError("train.replay_ratio > 0 needs replay text (recipe field train.replay, or --replay)")
    dist = context()
    if config.method == "distill" and teacher is None:
        with dist.main_first():  # registering a packaged teacher on first use: once, not once per process
            teacher = resolve_teacher(registry, config.teacher)
    if config.method != "distill":
        teacher = None
    # Processes launched by `torchrun watt train` may each have registered the same input under its own
    # id; rank 0's key decides, so all processes agree on reuse, checkpoints and the result.
    key = dist.from_main(_cache_key(parent, dataset, replay, teacher, config))
    cached = registry.find(key)
    if cached is not None:
        return cached, True
    from wattlm.train.loop import train

    with dist.main_first():  # a GGUF parent or teacher is converted to an HF folder once
        source_dir = hf_dir(registry, parent)
        teacher_dir = hf_dir(registry, teacher) if teacher is not None else None
    if config.method == "sft" or (config.method == "distill" and config.kd_data == "chat"):
        examples = list(dataset_records(dataset, "train"))
    else:
        examples = list(dataset_texts(dataset, "train"))
    replay_texts = list(dataset_texts(replay, "all")) if replay is not None and config.replay_ratio > 0 else []
    # Checkpoints live under the run's cache key: rerunning the same recipe after a kill resumes.
    checkpoints = registry.home / "runs" / key
    run = dict(config=config, progress=progress, checkpoint_dir=checkpoints, replay_texts=replay_texts,
               teacher_dir=teacher_dir)
    if not dist.is_main:
        train(source_dir, examples, None, **run)
        return registry.get(dist.from_main(None)), False  # waits for rank 0 to register
    with registry.staging() as staged:
        result = train(source_dir, examples, staged, **run)
        model = registry.register(
            "model", name, staged=staged, tier=NEXT_TIER[parent.tier or "foundation"], format="hf",
            parents=[(parent.id, "parent"), (dataset.id, "train_data")]
            + ([(replay.id, "replay_data")] if replay_texts else [])
            + ([(teacher.id, "teacher")] if teacher is not None else []),
            recipe=recipe or {"train": config.model_dump()}, metrics=result.metrics(),
            meta={"method": config.method, "lora": config.lora is not None, "processes": result.processes,
                  **({"teacher": teacher.id} if teacher is not None else {})},
            cache_key=key,
        )
    shutil.rmtree(checkpoints, ignore_errors=True)
    dist.from_main(model.id)
    return model, False
