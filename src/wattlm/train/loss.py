"""Causal-LM loss computed in chunks of positions.

Gemma's 262k-token vocabulary makes the full logits tensor the memory hog (batch 4 x 256 x 262k fp32
is 1 GB, and autograd keeps it). Projecting hidden states to logits one chunk at a time under
activation checkpointing keeps only `chunk x vocab` logits alive; training and evaluation share this.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def _unwrap(model):
    """The HF *ForCausalLM module under a peft wrapper, if any."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if get_base is not None else model


def _chunk_nll(hidden: torch.Tensor, targets: torch.Tensor, head, softcap: float | None) -> torch.Tensor:
    logits = head(hidden).float()  # (n, vocab)
    if softcap:  # Gemma 2 style logit soft-capping, when the config asks for it
        logits = torch.tanh(logits / softcap) * softcap
    return F.cross_entropy(logits, targets, ignore_index=-100, reduction="sum")


def causal_lm_nll(model, input_ids: torch.Tensor, chunk: int = 1024) -> tuple[torch.Tensor, int]:
    """Summed next-token negative log-likelihood over a batch and the number of predicted tokens.

    input_ids: (batch, seq). Positions 0..seq-2 predict tokens 1..seq-1.
    """
    causal_lm = _unwrap(model)
    backbone = causal_lm.get_decoder() if hasattr(causal_lm, "get_decoder") else causal_lm.model
    head = causal_lm.get_output_embeddings()
    softcap = getattr(causal_lm.config, "final_logit_softcapping", None)

    hidden = backbone(input_ids=input_ids).last_hidden_state  # (batch, seq, dim)
    hidden = hidden[:, :-1].reshape(-1, hidden.size(-1))  # (batch*(seq-1), dim)
    targets = input_ids[:, 1:].reshape(-1)  # (batch*(seq-1),)
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, hidden.size(0), chunk):
        h, t = hidden[start : start + chunk], targets[start : start + chunk]
        if torch.is_grad_enabled():
            total = total + checkpoint(_chunk_nll, h, t, head, softcap, use_reentrant=False)
        else:
            total = total + _chunk_nll(h, t, head, softcap)
    return total, targets.numel()
