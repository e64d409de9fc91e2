"""Recipes: one YAML file describing the whole factory run, validated by typed models on load."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wattlm.data.config import DataConfig
from wattlm.errors import NotFound, WattError
from wattlm.eval.gates import Gate
from wattlm.kb.config import KbConfig
from wattlm.shared.config import describe_validation_error
from wattlm.synth.config import SynthConfig
from wattlm.train.config import TrainConfig


class DataSection(DataConfig):
    """The data stage's settings (documented once, on DataConfig) plus where the documents are."""

    inputs: list[Path] = Field(description="Files or folders of raw documents, relative to the recipe file.")

    @field_validator("inputs")
    @classmethod
    def _not_empty(cls, value: list[Path]) -> list[Path]:
        if not value:
            raise ValueError("list at least one file or folder")
        return value

    def data_config(self) -> DataConfig:
        return DataConfig(**self.model_dump(exclude={"inputs"}))


class TrainSection(TrainConfig):
    """Training settings (documented once, on TrainConfig) plus the replay text to mix in."""

    replay: Path | None = Field(None, description="General text mixed into training at replay_ratio.")

    @model_validator(mode="after")
    def _replay_needs_text(self) -> TrainSection:
        if self.replay_ratio > 0 and self.replay is None:
            raise ValueError("replay_ratio > 0 needs a replay folder or file")
        return self

    def train_config(self) -> TrainConfig:
        return TrainConfig(**self.model_dump(exclude={"replay"}))


class EvalSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    general: Path | None = Field(None, description="Folder or file of general text for the forgetting check.")
    seq_len: int = Field(512, ge=8, description="Tokens per evaluation window.")
    batch_size: int = Field(4, ge=1, description="Windows per forward pass.")
    max_tokens: int | None = Field(20000, ge=16, description="Cap on evaluated tokens per text set.")
    tasks: list[Path] = Field(
        default_factory=list,
        description="Task files (multiple-choice / QA JSONL, lm-eval YAML) scored on the industry model beside its foundation.",
    )
    batch_size_tasks: int = Field(8, ge=1, description="Items per forward pass or generate call in task evaluation.")
    max_new_tokens: int = Field(32, ge=1, description="Cap on generated tokens per QA answer.")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="Scoring precision: fp32, or bf16 autocast (~1.7x faster on CPUs with bf16 units; "
                            "perplexities move ~0.1%). Part of every stored score's key.")


# The task tier's training defaults; a partial `task.train:` block is merged over them, so writing only
# `steps:` does not silently fall back to TrainConfig's cpt.
TASK_TRAIN_DEFAULTS = {"method": "sft", "steps": 24, "lr": 2e-4}


def _sft_default() -> TrainSection:
    return TrainSection(**TASK_TRAIN_DEFAULTS)


class TaskSection(BaseModel):
    """The third tier: a teacher writes grounded QA from the corpus, the industry model learns it (sft)."""

    model_config = ConfigDict(extra="forbid")

    teacher: str | None = Field(
        None, description="'industry' (this run's industry model, from its GGUF export; the default when no "
                          "teacher_url is given), 'foundation' (the recipe's foundation), or a registered "
                          "model/export name served locally through llama.cpp.",
    )
    teacher_url: str | None = Field(None, description="An OpenAI-compatible endpoint instead (its key: WATT_TEACHER_API_KEY).")
    teacher_model: str | None = Field(None, description="The model name that endpoint serves.")
    synth: SynthConfig = Field(default_factory=SynthConfig, description="Synthesis settings (docs/synth.md).")
    train: TrainSection = Field(default_factory=_sft_default, description="Training of the task model (method sft).")
    eval: list[Path] = Field(default_factory=list, description="Task files scored on the task model beside the industry model.")
    gates: list[Gate] = Field(default_factory=list, description="Gates of the task model against the industry model.")
    export: bool = Field(True, description="Export the task model to GGUF with the recipe's export settings.")

    @field_validator("train", mode="before")
    @classmethod
    def _task_defaults(cls, value):
        return {**TASK_TRAIN_DEFAULTS, **value} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _teacher_given_once(self) -> TaskSection:
        if self.teacher_url is not None:
            if not self.teacher_model:
                raise ValueError("teacher_url needs teacher_model (the name the endpoint serves)")
            if self.teacher is not None:
                raise ValueError("give teacher (a local model) or teacher_url (an endpoint), not both")
        elif self.teacher is None:
            self.teacher = "industry"
        for gate in self.gates:
            if not gate.on_task_score:
                raise ValueError(f"task.gates: {gate.metric} is not measured on the task model; "
                                 "use task scores (qa_*, mc_*) from task.eval")
        if any(g.on_task_score for g in self.gates) and not self.eval:
            raise ValueError("task.gates on task scores need task.eval files")
        return self


class ServeCheck(BaseModel):
    """The served file's speed in the run report (engines/batching/speed.py)."""

    model_config = ConfigDict(extra="forbid")

    tokens: int = Field(64, ge=8, le=1024, description="Tokens generated per request.")
    clients: int = Field(8, ge=1, le=64, description="Streams decoded at once in the concurrent measurement.")
    repeats: int = Field(3, ge=1, le=20, description="Timed repeats; medians are reported.")


class ExportSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quants: list[str] = Field(["q8_0", "q4_k_m"], description="Quantized GGUF types made from the f16 file.")
    check_prompt: str = Field("变电站巡视时，值班人员应当", description="Prompt for the llama.cpp vs transformers check.")
    check_tokens: int = Field(16, ge=1, le=256, description="Greedy tokens compared in that check.")
    serve: str | None = Field(
        None, description="The file `watt serve` loads for the model: f16 or one of quants (default: the first "
        "of quants, or f16 without any).")
    serve_check: ServeCheck | None = Field(
        ServeCheck(), description="Time the served file on this machine: llama.cpp's own decode against `watt "
        "serve`'s batch engine (one stream at temperature 0 and 0.8, and `clients` at once); null skips it.")
    check: Literal["served", "all"] = Field(
        "served", description="Which files get the llama.cpp check (greedy tokens against transformers, decode "
        "speed, perplexity on the held-out windows): the served one, or every file (slower).")

    @property
    def served_quant(self) -> str:
        return self.serve or (self.quants[0] if self.quants else "f16")

    @model_validator(mode="after")
    def _serve_is_exported(self) -> ExportSection:
        if self.serve is not None and self.serve not in ("f16", *self.quants):
            raise ValueError(f"export.serve {self.serve!r} is not exported; allowed: {['f16', *self.quants]}")
        return self

    @field_validator("quants")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from wattlm.export.gguf import QUANT_FTYPES

        unknown = [q for q in value if q not in QUANT_FTYPES]
        if unknown:
            raise ValueError(f"unknown quant {unknown[0]!r}; allowed: {sorted(QUANT_FTYPES)}")
        return value


class RetrievalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["hybrid", "bm25", "dense"] = Field("hybrid", description="How passages are found (docs/kb.md).")
    k: int = Field(3, ge=1, le=20, description="Passages put in each grounded prompt.")


class KnowledgeSection(BaseModel):
    """A knowledge base over the organisation's documents, and grounded scores of each tier (docs/recipes.md)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="KB name (default: <recipe name>-kb).")
    inputs: list[Path] | None = Field(None, description="Files or folders of documents (default: data.inputs).")
    chunking: KbConfig = Field(default_factory=KbConfig, description="Chunking and index settings (docs/kb.md).")
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings, description="Retrieval at eval time.")
    eval: list[Path] | None = Field(
        None, description="JSONL task files scored grounded on every tier (default: each tier's own JSONL task "
                          "files, eval.tasks and task.eval; a rag file {question, answer, source} works too).")
    gates: list[Gate] = Field(default_factory=list, description="Gates on grounded scores (rag_*, ragmc_*) of the "
                              "final tier, against its parent tier or, with baseline, its own closed-book score.")

    @field_validator("gates")
    @classmethod
    def _grounded_only(cls, gates: list[Gate]) -> list[Gate]:
        for gate in gates:
            if not gate.metric.startswith(("rag_", "ragmc_")):
                raise ValueError(f"knowledge.gates: {gate.metric} is not a grounded score; use rag_* or ragmc_* "
                                 "(other gates go in gates: or task.gates:)")
        return gates


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Recipe name; artifact names derive from it.")
    foundation: str = Field("gemma3-270m", description="Registered model name/id, or a packaged model name.")
    data: DataSection
    train: TrainSection = Field(default_factory=TrainSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    export: ExportSection | None = Field(default_factory=ExportSection, description="null skips export.")
    gates: list[Gate] = Field(default_factory=list, description="Quality gates checked after eval, before export.")
    task: TaskSection | None = Field(None, description="Optional task tier built on the industry model.")
    knowledge: KnowledgeSection | None = Field(None, description="Optional knowledge base and grounded evaluation.")

    # Set by load_recipe: the folder relative paths are resolved against.
    base_dir: Path = Field(Path("."), exclude=True)

    @model_validator(mode="after")
    def _checkable(self) -> Recipe:
        """What would otherwise fail only after hours of training fails here, at load."""
        if any(g.on_task_score for g in self.gates) and not self.eval.tasks:
            raise ValueError("gates on task scores (mc_*, qa_*) need eval.tasks files")
        if any(g.metric == "general_ppl" for g in self.gates) and self.eval.general is None:
            raise ValueError("a general_ppl gate needs eval.general")
        if self.task is not None and self.task.teacher == "industry" and self.export is None:
            raise ValueError("task.teacher 'industry' runs the industry model's GGUF export; set export:, "
                             "or name another teacher (task.teacher / task.teacher_url)")
        if self.knowledge is not None and self.knowledge.gates and self.knowledge.eval is None:
            final = self.task.eval if self.task is not None else self.eval.tasks
            if not any(p.suffix == ".jsonl" for p in final):
                raise ValueError("knowledge.gates need JSONL task files on the final tier "
                                 "(task.eval, or eval.tasks without a task tier) or knowledge.eval")
        return self

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path).resolve()


def load_recipe(path: Path) -> Recipe:
    """Parse and validate a recipe; every error is one line naming the file and the field."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"recipe not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise WattError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise WattError(f"{path}: expected a mapping of recipe sections at the top level")
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise WattError(describe_validation_error(exc, path)) from None
    recipe.base_dir = path.resolve().parent
    return recipe
