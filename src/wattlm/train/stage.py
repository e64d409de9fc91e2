"""`watt train` as a registry step: parent model + dataset (+ teacher) -> a model of the next tier."""

from __future__ import annotations

import shutil
from pathlib import Path

from wattlm.cache import content_key, fingerprint
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
    # How often we checkpoint, how many threads run or where (device, processes, recomputed activations)
    # does not change the model: not part of the key, so existing runs keep their keys.
    settings = config.model_dump(exclude={"save_every", "threads", "teacher", "device", "gradient_checkpointing",
                                          "distributed"})
    # Inputs by their content keys, never ids: the same recipe from another checkout finds this model.
    parts = ["train", content_key(parent), content_key(dataset), content_key(replay) if replay else None]
    if teacher is not None:  # by content: the name in config.teacher may later point at another model
        parts.append(content_key(teacher))
    return fingerprint(*parts, settings)


def train_model(
    registry: Registry, parent: Artifact, dataset: Artifact, config: TrainConfig, name: str,
    progress: bool = True, recipe: dict | None = None, replay: Artifact | None = None,
    teacher: Artifact | None = None,
) -> tuple[Artifact, bool]:
    """Train (or reuse a finished run with the same inputs); returns (model, reused).

    `replay` is a text set mixed into training at `config.replay_ratio` (general data against forgetting).
    `teacher` is the teacher of a method that declares one (distill); when None it is resolved from the
    method's settings (`config.teacher`). Under torchrun every process calls this; rank 0 registers the
    model and the others return that artifact.
    """
    from wattlm.train.dist import context
    from wattlm.train.methods import method_class

    if config.replay_ratio > 0 and replay is None:
        raise WattError("train.replay_ratio > 0 needs replay text (recipe field train.replay, or --replay)")
    dist = context()
    method, settings = method_class(config.method), config.method_settings()
    teacher_ref = method.teacher(settings)
    if teacher_ref is None:  # a teacher only matters to a method that declares one
        teacher = None
    elif teacher is None:
        with dist.main_first():  # registering a packaged teacher on first use: once, not once per process
            teacher = resolve_teacher(registry, teacher_ref)
    # Content keys agree across processes; rank 0's key still decides, so all agree on one run.
    key = dist.from_main(_cache_key(parent, dataset, replay, teacher, config))
    from wattlm.train.loop import train

    def start_training(staged: Path | None):
        """Every process: the HF folders, the examples, then the shared loop (rank 0 writes `staged`)."""
        with dist.main_first():  # a GGUF parent or teacher is converted to an HF folder once
            source_dir = hf_dir(registry, parent)
            teacher_dir = hf_dir(registry, teacher) if teacher is not None else None
        if method.reads(settings) == "records":
            examples = list(dataset_records(dataset, "train"))
        else:
            examples = list(dataset_texts(dataset, "train"))
        use_replay = method.uses_replay and replay is not None and config.replay_ratio > 0
        replay_texts = list(dataset_texts(replay, "all")) if use_replay else []
        # Checkpoints live under the run's cache key: rerunning the same recipe after a kill resumes.
        result = train(source_dir, examples, staged, config=config, progress=progress,
                       checkpoint_dir=registry.home / "runs" / key, replay_texts=replay_texts,
                       teacher_dir=teacher_dir)
        return result, bool(replay_texts)

    if not dist.is_main:  # rank 0 decides (under the key's lock) whether to train; then all train together
        cached_id = dist.from_main(None)
        if cached_id is not None:
            return registry.get(cached_id), True
        start_training(None)
        return registry.get(dist.from_main(None)), False  # waits for rank 0 to register

    def produce(staged: Path) -> dict:
        dist.from_main(None)  # tells the other processes: nothing cached, train
        result, replayed = start_training(staged)
        return dict(
            kind="model", name=name, tier=NEXT_TIER[parent.tier or "foundation"], format="hf",
            parents=[(parent.id, "parent"), (dataset.id, "train_data")]
            + ([(replay.id, "replay_data")] if replayed else [])
            + ([(teacher.id, "teacher")] if teacher is not None else []),
            recipe=recipe or {"train": config.model_dump()}, metrics=result.metrics(),
            meta={"method": config.method, "lora": config.lora is not None, "processes": result.processes,
                  **({"teacher": teacher.id} if teacher is not None else {})},
        )

    model, reused = registry.find_or_produce(key, produce)
    if not reused:
        shutil.rmtree(registry.home / "runs" / key, ignore_errors=True)
    dist.from_main(model.id)  # the cached or new model, to the other processes
    return model, reused
