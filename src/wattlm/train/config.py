"""Typed training settings: the `train:` section of a recipe."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: str | list[str] = Field(
        "all-linear", description="Module names to adapt, or 'all-linear' for every linear layer but the head."
    )


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["cpt", "sft", "distill"] = Field(
        "cpt",
        description="cpt: continued pretraining on documents; sft: chat examples, loss on the answer; "
        "distill: learn a teacher model's next-token distributions (see teacher, kd_*).",
    )
    chat_template: str | None = Field(
        None, description="sft (and distill on chat data): 'chatml', 'gemma' or Jinja text, for parents without a template; saved with the model."
    )
    steps: int = Field(40, ge=1, description="Optimizer steps (the step budget).")
    seq_len: int = Field(256, ge=8, description="Tokens per packed training sequence.")
    batch_size: int = Field(4, ge=1, description="Sequences per step.")
    lr: float = Field(2e-4, gt=0, description="Peak learning rate (linear warm-up, cosine decay).")
    warmup_steps: int = Field(4, ge=0, description="Linear warm-up steps.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    lora: LoraSettings | None = Field(
        default_factory=LoraSettings, description="LoRA settings; null trains all parameters."
    )
    replay_ratio: float = Field(
        0.0, ge=0, lt=1, description="Share of training sequences drawn from replay text (general data, against forgetting)."
    )
    bf16: bool = Field(True, description="bf16 autocast on the CPU (measured ~1.4x faster for LoRA here).")
    seed: int = Field(0, description="Seed for initialisation and batch order.")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads; default: all cores.")
    save_every: int = Field(
        10, ge=0, description="Checkpoint every N steps (0: never); a rerun resumes from the last one."
    )
    loss_chunk: int = Field(
        1024, ge=16, description="Positions per chunk when computing the loss (bounds logits memory); "
        "distill uses a quarter of it, as it holds about four logit buffers (teacher and student) per chunk."
    )
    teacher: str | None = Field(
        None, description="distill: the teacher model (registered name or id, packaged model name, or HF folder); "
        "its tokenizer must be the student's."
    )
    kd_temperature: float = Field(
        2.0, gt=0, description="distill: softmax temperature for both distributions; the KL term is scaled by T^2."
    )
    kd_alpha: float = Field(
        0.5, ge=0, le=1, description="distill: weight of the KL term; the usual cross-entropy gets 1 - kd_alpha."
    )
    kd_data: Literal["text", "chat"] = Field(
        "text", description="distill: 'text' = documents packed like cpt, KL on every position; "
        "'chat' = examples like sft (chat template), KL and CE on the answer tokens only."
    )

    @model_validator(mode="after")
    def _distill_needs_teacher(self) -> TrainConfig:
        if self.method == "distill" and not self.teacher:
            raise ValueError("method distill needs a teacher (train.teacher: a model name, id or HF folder)")
        return self
