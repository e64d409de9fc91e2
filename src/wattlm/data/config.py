"""Typed configuration of the data stage (the `data:` section of a recipe).

Run-wide settings (split, shard format, workers) are fields here; what the pipeline does is `steps`, a
list of step specs `{name, params}` checked against the table in steps.py, each step's params against
its own `Params` model. The flat keys of earlier recipes (`min_chars: 80`, `near_dedup: false`) are
still accepted and become steps on load (flat_keys.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wattlm.data.base import PHASES
from wattlm.data.flat_keys import FLAT_KEYS, default_step_specs, steps_from_flat_keys
from wattlm.data.readers.limits import ReadLimits
from wattlm.data.steps import StepSpec, step_class
from wattlm.errors import NotFound, WattError

# Settings that change how fast the data stage runs, never what it writes: cache keys leave them out.
EXECUTION_FIELDS = frozenset({"workers", "executor", "ray_address"})


class DataConfig(BaseModel):
    """How raw documents become a clean corpus; every field is documented once, here."""

    model_config = ConfigDict(extra="forbid")

    heldout_fraction: float = Field(
        0.1,
        gt=0.0,
        lt=0.5,
        description="Share of documents sent to the held-out split, chosen by a hash of each document id "
        "and the seed (0 < x < 0.5).",
    )
    seed: int = Field(0, description="Salt of the split hash: change it to draw a different held-out set.")
    text_field: str = Field("text", min_length=1, description="Field (JSONL) or column (CSV) holding the text.")
    shard_docs: int = Field(1000, ge=1, description="Maximum number of documents per output shard.")
    output_format: Literal["jsonl", "parquet"] = Field(
        "jsonl", description="Shard format: train/shard-00000.jsonl or .parquet (same columns: id, text, source, "
        "lang, chars); both load with HF datasets."
    )
    workers: int = Field(
        1, ge=0, description="Worker processes for the per-document steps (read, extract, normalize, PII, language, "
        "filters); 0 = all cores. The output is identical whatever the number."
    )
    split_bytes: int = Field(
        4 * 2**20, ge=1024, description="JSONL and text files larger than this are cut into line-aligned byte ranges "
        "of about this size, read by different workers. JSONL record ids are unchanged; a text file's piece "
        "is a document of its own (source file.txt@<byte offset>)."
    )
    executor: Literal["local", "ray"] = Field(
        "local", description="Where the shards run: `local` (a process pool of `workers`) or `ray` (Ray tasks; "
        "a local Ray with `workers` CPUs, or the cluster at `ray_address`). Same shards, markers and output."
    )
    ray_address: str | None = Field(
        None, description="Address of a running Ray cluster (e.g. ray://head:10001 or auto); None starts a local one."
    )

    limits: ReadLimits = Field(default_factory=ReadLimits, description="Per-file caps on untrusted inputs (docs/security-inputs.md).")

    steps: list[StepSpec] = Field(
        default_factory=lambda: [StepSpec(**spec) for spec in default_step_specs()], validate_default=True,
        description="The pipeline, in order: read steps, then clean steps, then dedup steps (docs/data.md). "
        "Default: the full cleaning pipeline; or give the flat keys of earlier recipes instead.",
    )

    @model_validator(mode="before")
    @classmethod
    def _flat_keys_to_steps(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not FLAT_KEYS & set(data):
            return data
        flat = {key: value for key, value in data.items() if key in FLAT_KEYS}
        if "steps" in data:
            raise ValueError(f"give `steps` or the flat keys ({', '.join(sorted(flat))}), not both")
        rest = {key: value for key, value in data.items() if key not in FLAT_KEYS}
        return {**rest, "steps": steps_from_flat_keys(flat)}

    @field_validator("steps")
    @classmethod
    def _valid_steps(cls, specs: list[StepSpec]) -> list[StepSpec]:
        checked = []
        for spec in specs:
            step = step_class(spec.name)
            try:
                params = step.Params.model_validate(spec.params)
            except ValidationError as err:
                first = err.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                raise ValueError(f"step {spec.name}: param {where}: {first['msg']}") from None
            # Stored with every default filled in: the resolved config is what a corpus records.
            checked.append(StepSpec(name=spec.name, params=params.model_dump(mode="json")))
        phases = [PHASES.index(step_class(spec.name).phase) for spec in checked]
        for before, after, spec in zip(phases, phases[1:], checked[1:], strict=False):
            if after < before:
                raise ValueError(f"step {spec.name} ({PHASES[after]} phase) comes after a {PHASES[before]} step; "
                                 f"order the steps {' -> '.join(PHASES)}")
        for index, spec in enumerate(checked):
            step = step_class(spec.name)
            if step.counts_corpus and index > 0 and step_class(checked[index - 1].name).phase == step.phase:
                raise ValueError(f"step {spec.name} counts the whole corpus first: put it first in its phase")
        return checked

    def step_params(self) -> list[tuple[type, Any]]:
        """(step class, validated params) per step, in order."""
        return [(step_class(spec.name), step_class(spec.name).Params(**spec.params)) for spec in self.steps]

    def params_of(self, name: str) -> Any:
        """The validated params of the first step called `name`, or None when the pipeline has no such step."""
        return next((params for step, params in self.step_params() if step.name == name), None)

    def referenced_files(self) -> list[Path]:
        """Files whose *content* the output depends on (a path alone says nothing about a retrained model)."""
        return [path for step, params in self.step_params() for path in step.referenced_files(params)]

    def cache_settings(self) -> dict[str, object]:
        """What a data cache key should hash: the settings that change the output, plus the content of the
        files they name (sha256), so a retrained quality model or an edited eval set invalidates the key."""
        from wattlm.data.classifier_model import file_sha256

        settings = self.model_dump(mode="json", exclude=set(EXECUTION_FIELDS))
        settings["file_sha256"] = {str(path): file_sha256(path) if path.is_file() else None
                                   for path in self.referenced_files()}
        return settings

    def with_paths_under(self, base: Path) -> DataConfig:
        """A copy with relative file params resolved against `base` (a recipe's folder)."""
        steps = [StepSpec(name=step.name, params=step.with_paths_under(params, base).model_dump(mode="json"))
                 for step, params in self.step_params()]
        return self.model_copy(update={"steps": steps})


def load_data_config(path: Path) -> DataConfig:
    """A DataConfig from a YAML file: the `data:` section of a recipe (its `inputs` are ignored) or a file
    of its fields alone. Relative file params are resolved against the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"data config not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise WattError(f"{path}: not valid YAML ({getattr(err, 'problem', err)})") from None
    section = raw.get("data", raw) if isinstance(raw, dict) else raw
    if not isinstance(section, dict):
        raise WattError(f"{path}: expected a mapping of data settings")
    section = {key: value for key, value in section.items() if key != "inputs"}
    try:
        config = DataConfig.model_validate(section)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise WattError(f"{path}: field {where}: {first['msg'].removeprefix('Value error, ')}") from None
    return config.with_paths_under(path.resolve().parent)
