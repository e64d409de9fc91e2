"""Continued pretraining: the loss on every position of packed document blocks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from wattlm.train.methods.base import SharedSettings, StepLoss, TrainingMethod


class CptMethod(TrainingMethod):
    """Continued pretraining: next-token loss on every position of packed document blocks.

    With replay text and `replay_ratio`, that share of every batch's rows comes from the replay blocks
    (general text the parent was good at), the rest from the domain: the classic guard against
    catastrophic forgetting in continued pretraining.
    """

    name = "cpt"
    uses_replay = True

    def __init__(self, tokenizer, texts: Sequence[str], config: SharedSettings, replay_texts: Sequence[str] = (),
                 settings=None):
        import torch

        from wattlm.shared.lm import pack, tokenize_stream

        super().__init__(tokenizer, texts, config, replay_texts, settings)
        self.blocks = pack(tokenize_stream(tokenizer, texts), config.seq_len)  # (n_blocks, seq_len)
        self.replay = None
        if replay_texts and config.replay_ratio > 0:
            self.replay = pack(tokenize_stream(tokenizer, replay_texts), config.seq_len)  # (n_replay, seq_len)
        self.generator = torch.Generator().manual_seed(config.seed)

    def _rows(self, blocks) -> Iterator[int]:
        """Block indices forever; each epoch visits every block once in a seeded random order."""
        import torch

        while True:
            yield from torch.randperm(blocks.size(0), generator=self.generator).tolist()

    def batches(self) -> Iterator:
        import torch

        domain = self._rows(self.blocks)
        if self.replay is None:
            while True:
                yield self.blocks[[next(domain) for _ in range(self.config.batch_size)]]
        replay, owed = self._rows(self.replay), 0.0
        while True:
            # Carry the fractional share over so the long-run ratio is exact even for small batches.
            owed += self.config.replay_ratio * self.config.batch_size
            n_replay = min(int(owed), self.config.batch_size)
            owed -= n_replay
            rows = [self.blocks[next(domain)] for _ in range(self.config.batch_size - n_replay)]
            rows += [self.replay[next(replay)] for _ in range(n_replay)]
            yield torch.stack(rows)

    def stats(self) -> dict:
        stats = {"blocks": self.blocks.size(0), "block_tokens": self.blocks.numel()}
        if self.replay is not None:
            stats.update(replay_blocks=self.replay.size(0), replay_ratio=self.config.replay_ratio)
        return stats

    def loss(self, model, batch) -> StepLoss:
        from wattlm.train.head_loss import causal_lm_loss

        nll, n_scored = causal_lm_loss(model, batch, chunk=self.config.loss_chunk)
        return StepLoss(nll, n_scored, batch.numel())
