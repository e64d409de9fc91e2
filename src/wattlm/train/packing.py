"""Packing documents into fixed-length token blocks for causal-LM training (no padding wasted)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from wattlm.errors import WattError


def tokenize_stream(tokenizer, texts: Iterable[str]) -> list[int]:
    """Concatenate documents as BOS + text + EOS so the model learns where documents end."""
    ids: list[int] = []
    eos = tokenizer.eos_token_id
    for text in texts:
        doc = tokenizer(text, add_special_tokens=True)["input_ids"]
        ids.extend(doc)
        if eos is not None and (not doc or doc[-1] != eos):
            ids.append(eos)
    return ids


def pack(ids: list[int], seq_len: int) -> torch.Tensor:
    """(n_blocks, seq_len) blocks; a stream shorter than one block becomes one shorter block."""
    if len(ids) < 2:
        raise WattError("the text has fewer than 2 tokens: nothing to train on or evaluate")
    if len(ids) < seq_len:
        return torch.tensor([ids], dtype=torch.long)
    n_blocks = len(ids) // seq_len
    return torch.tensor(ids[: n_blocks * seq_len], dtype=torch.long).view(n_blocks, seq_len)


def eval_windows(ids: list[int], seq_len: int) -> list[torch.Tensor]:
    """Non-overlapping windows covering the whole stream (the last one may be shorter)."""
    return [torch.tensor(ids[i : i + seq_len], dtype=torch.long) for i in range(0, len(ids) - 1, seq_len)
            if len(ids[i : i + seq_len]) >= 2]
