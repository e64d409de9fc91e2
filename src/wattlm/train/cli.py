"""`watt train`: the verb (a plain function over `train/stage.py`), also what each torchrun process runs.

    torchrun --nproc_per_node 2 -m wattlm.cli train --model M --data D --name N --config train.yaml
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from wattlm.cli_common import AsJson, Home, Quiet, emit, registry_from
from wattlm.errors import WattError


def _config_fields(config_file: Path | None, overrides: list[str]) -> dict:
    """TrainConfig fields from a YAML/JSON file, then `FIELD=VALUE` overrides (values read as YAML)."""
    import yaml

    fields = {}
    if config_file is not None:
        if not config_file.exists():
            raise WattError(f"training config not found: {config_file}")
        fields = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        if not isinstance(fields, dict):
            raise WattError(f"{config_file}: expected a mapping of TrainConfig fields")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise WattError(f"--set {item!r}: expected FIELD=VALUE")
        fields[key.strip()] = yaml.safe_load(value)
    return fields


def train_command(
    model: Annotated[str, typer.Option("--model", help="Parent model name or id.")],
    data: Annotated[str, typer.Option("--data", help="Dataset name or id (its train split), or a JSONL/text path.")],
    name: Annotated[str, typer.Option(help="Name of the new model.")],
    config_file: Annotated[Optional[Path], typer.Option(
        "--config", help="YAML or JSON file of `train:` fields; the options below override it.")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Optimizer steps (default 40).")] = None,
    seq_len: Annotated[Optional[int], typer.Option(help="Tokens per sequence (default 256).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Sequences per step (default 4).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (default 2e-4).")] = None,
    method: Annotated[Optional[str], typer.Option(help="A training method: cpt (documents, the default), sft (chat "
                                                       "examples: messages / prompt+response) or distill (learn a "
                                                       "teacher's logits).")] = None,
    chat_template: Annotated[Optional[str], typer.Option(help="sft: chatml, gemma or Jinja text, if the parent has none.")] = None,
    replay: Annotated[Optional[Path], typer.Option(help="General text mixed in against forgetting.")] = None,
    replay_ratio: Annotated[Optional[float], typer.Option(help="Share of sequences drawn from --replay (default 0).")] = None,
    teacher: Annotated[Optional[str], typer.Option(
        help="distill: teacher model name/id, packaged name or HF folder (same tokenizer).")] = None,
    kd_alpha: Annotated[Optional[float], typer.Option(help="distill: weight of the KL term; CE gets 1 - it (default 0.5).")] = None,
    kd_temperature: Annotated[Optional[float], typer.Option(help="distill: softmax temperature T (KL scaled by T^2; default 2).")] = None,
    kd_data: Annotated[Optional[str], typer.Option(help="distill: text (documents, like cpt) or chat (examples, like sft; default text).")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="FIELD=VALUE", help="Any `train:` field (a method's own too), e.g. --set kd_alpha=0.9.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto (CUDA when torch sees a GPU; default), cpu or cuda.")] = None,
    home: Home = None, as_json: AsJson = False, quiet: Quiet = False,
) -> None:
    """Train a model on a dataset (cpt, sft, distill, ...; LoRA merged) -> a model of the next tier."""
    from pydantic import ValidationError

    from wattlm.data.stage import text_dataset
    from wattlm.models.store import resolve_model
    from wattlm.shared.config import describe_validation_error
    from wattlm.train.config import TrainConfig
    from wattlm.train.device import resolve_device
    from wattlm.train.dist import context
    from wattlm.train.stage import train_model

    fields = _config_fields(config_file, overrides or [])
    given = dict(steps=steps, seq_len=seq_len, batch_size=batch_size, lr=lr, method=method, replay_ratio=replay_ratio,
                 chat_template=chat_template, teacher=teacher, kd_alpha=kd_alpha, kd_temperature=kd_temperature,
                 kd_data=kd_data, device=device)
    fields.update({key: value for key, value in given.items() if value is not None})
    try:
        config = TrainConfig(**fields)
    except ValidationError as exc:
        message = describe_validation_error(exc, "watt train options")
        if exc.errors()[0]["type"] == "extra_forbidden":  # say whose fields were expected
            message = message.replace("unknown field", f"unknown field for method {fields.get('method', 'cpt')}", 1)
        raise WattError(message) from None
    resolve_device(config.device)  # device: cuda without a GPU fails here, in one line, before any work
    registry = registry_from(home)
    dist = context()
    # Under torchrun every process runs this verb: rank 0 registers inputs first, the others find them.
    with dist.main_first():
        replay_set = text_dataset(registry, replay.resolve(), replay.name) if replay else None
        path = Path(data)
        dataset = text_dataset(registry, path.resolve(), path.name) if path.exists() else registry.get(data, kind="dataset")
        parent = resolve_model(registry, model)
    art, reused = train_model(registry, parent, dataset, config, name, progress=not quiet, replay=replay_set)
    if dist.is_main:
        row = {"id": art.id, "name": art.name, "tier": art.tier, "kind": art.kind, "format": art.format,
               "parents": [pid for pid, _ in art.parents], "path": str(art.path), "reused": reused,
               "metrics": art.metrics}
        emit(row, as_json,
             lambda r: print(f"{'reused' if reused else 'trained'} {r['name']} ({r['id']}, {r['tier']}): {r['metrics']}"))
    dist.leave()
    dist.exit_worker()
