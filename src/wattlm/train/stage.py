"""`watt train` as a registry step: parent model + dataset -> a model of the next tier."""

from __future__ import annotations

import shutil

from wattlm.cache import fingerprint
from wattlm.errors import WattError
from wattlm.models.store import hf_dir
from wattlm.registry import Artifact, Registry
from wattlm.textsets import dataset_records, dataset_texts
from wattlm.train.config import TrainConfig

NEXT_TIER = {"foundation": "industry", "industry": "task", "task": "task"}


def train_model(
    registry: Registry, parent: Artifact, dataset: Artifact, config: TrainConfig, name: str,
    progress: bool = True, recipe: dict | None = None, replay: Artifact | None = None,
) -> tuple[Artifact, bool]:
    """Train (or reuse a finished run with the same inputs); returns (model, reused).

    `replay` is a text set mixed into training at `config.replay_ratio` (general data against forgetting).
    """
    if config.replay_ratio > 0 and replay is None:
        raise WattError("train.replay_ratio > 0 needs replay text (recipe field train.replay, or --replay)")
    # How often we checkpoint or how many threads run does not change the model: not part of the key.
    key = fingerprint("train", parent.id, dataset.id, replay.id if replay else None,
                      config.model_dump(exclude={"save_every", "threads"}))
    cached = registry.find(key)
    if cached is not None:
        return cached, True
    from wattlm.train.loop import train

    source_dir = hf_dir(registry, parent)
    if config.method == "sft":
        examples = list(dataset_records(dataset, "train"))
    else:
        examples = list(dataset_texts(dataset, "train"))
    replay_texts = list(dataset_texts(replay, "all")) if replay is not None and config.replay_ratio > 0 else []
    # Checkpoints live under the run's cache key: rerunning the same recipe after a kill resumes.
    checkpoints = registry.home / "runs" / key
    with registry.staging() as staged:
        result = train(source_dir, examples, staged, config, progress=progress, checkpoint_dir=checkpoints,
                       replay_texts=replay_texts)
        model = registry.register(
            "model", name, staged=staged, tier=NEXT_TIER[parent.tier or "foundation"], format="hf",
            parents=[(parent.id, "parent"), (dataset.id, "train_data")]
            + ([(replay.id, "replay_data")] if replay_texts else []),
            recipe=recipe or {"train": config.model_dump()}, metrics=result.metrics(),
            meta={"method": config.method, "lora": config.lora is not None}, cache_key=key,
        )
    shutil.rmtree(checkpoints, ignore_errors=True)
    return model, False
