"""A toy training method for the plugin test: continued pretraining on the first part of each text only
(e.g. to train on abstracts and keep the body for evaluation). One file; the test adds its table entry."""

from __future__ import annotations

from pydantic import Field

from wattlm.train.methods.base import MethodSettings, StepLoss, TrainingMethod


class FirstHalfSettings(MethodSettings):
    share: float = Field(0.5, gt=0, le=1, description="Leading share of each text (in characters) trained on.")


class FirstHalfMethod(TrainingMethod):
    name = "first-half"
    Settings = FirstHalfSettings

    def __init__(self, tokenizer, texts, config, replay_texts=(), settings=None):
        import torch

        from wattlm.shared.lm import pack, tokenize_stream

        super().__init__(tokenizer, texts, config, replay_texts, settings)
        heads = [text[: max(1, int(len(text) * self.settings.share))] for text in texts]
        self.chars = sum(len(head) for head in heads)
        self.blocks = pack(tokenize_stream(tokenizer, heads), config.seq_len)  # (n_blocks, seq_len)
        self.generator = torch.Generator().manual_seed(config.seed)

    def batches(self):
        import torch

        while True:  # rows drawn with replacement, seeded: every process draws the same global batch
            yield self.blocks[torch.randint(0, self.blocks.size(0), (self.config.batch_size,), generator=self.generator)]

    def loss(self, model, batch) -> StepLoss:
        from wattlm.shared.lm import causal_lm_nll

        nll, n_scored = causal_lm_nll(model, batch, chunk=self.config.loss_chunk)
        return StepLoss(nll, n_scored, batch.numel())

    def stats(self) -> dict:
        return {"blocks": self.blocks.size(0), "trained_chars": self.chars, "share": self.settings.share}
