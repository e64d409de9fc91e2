"""Logit distillation: the student learns a teacher's next-token distributions, not only the next token.

Data is either documents packed like `cpt` (`kd_data: text`, the KL on every position: a small model
takes on a large one's knowledge of the domain) or chat examples like `sft` (`kd_data: chat`, KL and CE on
the answer tokens only: a small task model learns how a large one answers). Batching is delegated to
those methods, so packing, replay and chat templates behave exactly as there.

Sequence-level distillation (training on the teacher's generated answers) needs no method of its own:
generate the data with `watt synth` from the teacher, then train with `sft`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from wattlm.errors import WattError
from wattlm.train.methods.base import SharedSettings, StepLoss, TrainingMethod
from wattlm.train.methods.cpt import CptMethod
from wattlm.train.methods.sft import SftMethod, SftSettings


def check_same_vocab(student_tokenizer, teacher_tokenizer, teacher_name: str) -> None:
    """Distillation compares distributions id by id: both tokenizers must map every token to the same id."""
    student_vocab, teacher_vocab = student_tokenizer.get_vocab(), teacher_tokenizer.get_vocab()
    if student_vocab == teacher_vocab:
        return
    differing = sorted(set(student_vocab.items()) ^ set(teacher_vocab.items()), key=lambda item: item[1])
    token = differing[0][0]
    raise WattError(
        f"teacher {teacher_name} and the student use different tokenizers ({len(teacher_vocab)} vs "
        f"{len(student_vocab)} tokens; {token!r} is id {teacher_vocab.get(token, 'missing')} in the teacher and "
        f"{student_vocab.get(token, 'missing')} in the student): distillation needs the same vocabulary"
    )


class DistillSettings(SftSettings):
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
    def _needs_teacher(self) -> DistillSettings:
        if not self.teacher:
            raise ValueError("method distill needs a teacher (train.teacher: a model name, id or HF folder)")
        return self


class DistillMethod(TrainingMethod):
    name = "distill"
    Settings = DistillSettings
    uses_replay = True  # on text data, through cpt's batches

    @classmethod
    def reads(cls, settings: DistillSettings):
        return "records" if settings.kd_data == "chat" else "texts"

    @classmethod
    def teacher(cls, settings: DistillSettings) -> str | None:
        return settings.teacher

    @classmethod
    def from_config(cls, config, tokenizer, examples, replay_texts=(), teacher_dir=None):
        teacher = config.method_settings().teacher
        if teacher_dir is None and teacher and (Path(teacher) / "config.json").exists():
            teacher_dir = Path(teacher)  # a plain HF folder works without the registry
        return cls(tokenizer, examples, config, replay_texts, teacher_dir=teacher_dir)

    def __init__(self, tokenizer, examples: Sequence, config: SharedSettings, replay_texts: Sequence[str] = (),
                 teacher_dir: Path | None = None, settings: DistillSettings | None = None):
        from wattlm.models.hf import load_causal_lm, load_tokenizer

        super().__init__(tokenizer, examples, config, replay_texts, settings)
        if teacher_dir is None:
            raise WattError("method distill needs a teacher model (train.teacher)")
        self.teacher_name = str(self.settings.teacher or teacher_dir)
        check_same_vocab(tokenizer, load_tokenizer(teacher_dir), self.teacher_name)
        self.n_tokens = len(tokenizer)
        if self.settings.kd_data == "chat":
            self.data = SftMethod(tokenizer, examples, config, replay_texts,
                                  SftSettings(chat_template=self.settings.chat_template))
        else:
            self.data = CptMethod(tokenizer, examples, config, replay_texts, CptMethod.Settings())
        # The teacher only scores: eval mode (no dropout), frozen, never in the optimizer.
        self.teacher = load_causal_lm(teacher_dir).eval().requires_grad_(False)
        if config.bf16:
            import torch

            # Under bf16 autocast its matmuls run in bf16 anyway: bf16 weights halve its memory and save
            # autocast re-casting every weight on every step.
            self.teacher.to(torch.bfloat16)

    def batches(self):
        return self.data.batches()

    def stats(self) -> dict:
        return {**self.data.stats(), "kd_data": self.settings.kd_data, "teacher": self.teacher_name}

    def vocab_width(self, model) -> int:
        """Logit columns compared: heads may be padded past the tokenizer (e.g. to a multiple of 128), and
        padding rows are never a real token, so the shorter head decides as long as it covers the tokenizer."""
        from wattlm.shared.lm import unwrap_model

        student = unwrap_model(model).get_output_embeddings().weight.size(0)
        teacher = self.teacher.get_output_embeddings().weight.size(0)
        width = min(student, teacher)
        if width < self.n_tokens:
            raise WattError(f"teacher {self.teacher_name} has {teacher} output rows and the student {student}, but "
                            f"the tokenizer has {self.n_tokens} tokens: the vocabularies do not match")
        return width

    def place_teacher(self, device) -> None:
        """The teacher runs where the batches are: the loop puts them on the training device (a GPU under
        `device: cuda`), and the teacher was loaded on the CPU before that device was known. Moved once."""
        if next(self.teacher.parameters()).device != device:
            self.teacher.to(device)

    def loss(self, model, batch) -> StepLoss:
        from wattlm.train.kd_loss import causal_lm_distill

        ids, labels = batch if isinstance(batch, tuple) else (batch, None)
        self.place_teacher(ids.device)
        parts = causal_lm_distill(
            model, self.teacher, ids, vocab=self.vocab_width(model), temperature=self.settings.kd_temperature,
            alpha=self.settings.kd_alpha, chunk=max(16, self.config.loss_chunk // 4), labels=labels,
        )
        return StepLoss(parts.loss, parts.n_scored, ids.numel(), parts={"kl": parts.kl, "ce": parts.ce})
