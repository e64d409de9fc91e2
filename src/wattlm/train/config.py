"""Typed training settings: the `train:` section of a recipe.

`TrainConfig` holds the fields every method shares (the loop's); a method's own fields (sft's
`chat_template`, distill's `teacher` and `kd_*`) are written beside them and validated by that method's
`Settings` model (`train/methods/`). Fields of another method are ignored, as before methods owned them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails

from wattlm.train.device import DeviceSetting
from wattlm.train.distributed import DistributedSettings
from wattlm.train.methods import METHODS, MethodSettings
from wattlm.train.quantized import QuantizeSetting, check_quantize_base


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: str | list[str] = Field(
        "all-linear", description="Module names to adapt, or 'all-linear' for every linear layer but the head."
    )


class TrainConfig(BaseModel):
    # Extra fields are the method's own; `_method_fields` checks them against its Settings.
    model_config = ConfigDict(extra="allow")

    method: str = Field(
        "cpt",
        description="A training method of the table in train/methods/: cpt (continued pretraining on documents), "
        "sft (chat examples, loss on the answer), distill (learn a teacher model's next-token distributions; "
        "see teacher, kd_*).",
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
    device: DeviceSetting = Field("auto", description="auto (CUDA when torch sees a GPU, else the CPU), cpu or cuda.")
    gradient_checkpointing: bool = Field(
        False, description="Recompute layer activations in backward: less memory, ~1 more forward of compute.")
    distributed: DistributedSettings | None = Field(
        None, description="Multi-process training under torchrun: {strategy: ddp|fsdp}; see docs/scale-out.md.")
    # After lora and distributed, which its check reads. "none" is left out of dumps, so recipes without
    # the field keep their cache keys; 8bit/4bit change the numbers and are part of the key.
    quantize_base: QuantizeSetting = Field(
        "none", exclude_if=lambda setting: setting == "none",
        description="QLoRA: base weights in 8 or 4 bits (bitsandbytes) under LoRA adapters; none keeps them fp32. "
        "Needs bitsandbytes support on the training device (CUDA); see docs/scale-out.md.")

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}: one of {', '.join(METHODS)}")
        return method

    @field_validator("quantize_base")
    @classmethod
    def _quantize_base_rules(cls, setting: QuantizeSetting, info: ValidationInfo) -> QuantizeSetting:
        return check_quantize_base(setting, info.data.get("lora"), info.data.get("distributed"))

    @model_validator(mode="after")
    def _method_fields(self) -> TrainConfig:
        settings_class = METHODS[self.method].Settings
        elsewhere = {name for method in METHODS.values() for name in method.Settings.model_fields}
        # Another method's fields are ignored (as when one flat config held every method's fields); the
        # rest must be this method's: its Settings (extra="forbid") names any unknown one.
        mine = {key: value for key, value in (self.model_extra or {}).items()
                if key in settings_class.model_fields or key not in elsewhere}
        try:
            settings = settings_class(**mine)
        except ValidationError as exc:  # re-raised as this model's errors, so the location reads train.<field>
            raise ValidationError.from_exception_data(type(self).__name__, [
                InitErrorDetails(type=e["type"], loc=e["loc"], input=e["input"], **({"ctx": e["ctx"]} if "ctx" in e else {}))
                for e in exc.errors()]) from None
        # The method's fields with their defaults: the dump (recipe, cache key) holds every setting that counts.
        self.__pydantic_extra__ = settings.model_dump()
        return self

    def method_settings(self) -> MethodSettings:
        """This run's method settings (typed), e.g. DistillSettings with teacher and kd_*."""
        return METHODS[self.method].Settings(**(self.model_extra or {}))
