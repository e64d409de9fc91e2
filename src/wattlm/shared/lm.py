"""LM math several stages share: packing token streams, the chunked (fused) next-token NLL, log-softmax.

Training, perplexity evaluation, export's quality column and the data stage's perplexity filter all
compute these numbers; one implementation keeps them comparable (the same windows, the same loss).

The loss fuses the output projection with the cross-entropy. Gemma's 262k-token vocabulary makes the
logits the memory hog (batch 4 x 256 x 262k fp32 is 1 GB, and autograd would keep it and its
gradient). `linear_cross_entropy` projects one chunk of hidden states at a time and, in the same pass,
computes the gradient of the loss with respect to those hidden states (softmax - one_hot) @ W, so no
logits outlive their chunk and nothing is recomputed in backward. Activation checkpointing of the head
(the simpler alternative) costs one extra head matmul per step, measured at ~25-30 % of a Gemma 270M
LoRA step here.

torch and numpy are imported inside the functions: the data stage imports `log_softmax` without torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

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


def pack(ids: list[int], seq_len: int):
    """(n_blocks, seq_len) blocks; a stream shorter than one block becomes one shorter block."""
    import torch

    if len(ids) < 2:
        raise WattError("the text has fewer than 2 tokens: nothing to train on or evaluate")
    if len(ids) < seq_len:
        return torch.tensor([ids], dtype=torch.long)
    n_blocks = len(ids) // seq_len
    return torch.tensor(ids[: n_blocks * seq_len], dtype=torch.long).view(n_blocks, seq_len)


def eval_windows(ids: list[int], seq_len: int) -> list:
    """Non-overlapping windows covering the whole stream (the last one may be shorter)."""
    import torch

    return [torch.tensor(ids[i : i + seq_len], dtype=torch.long) for i in range(0, len(ids) - 1, seq_len)
            if len(ids[i : i + seq_len]) >= 2]


def log_softmax(rows):
    """rows: (n, n_vocab) logits (numpy, e.g. llama.cpp's scores) -> (n, n_vocab) float64 log-probabilities."""
    import numpy as np

    rows = rows.astype(np.float64)
    peak = rows.max(axis=-1, keepdims=True)  # (n, 1)
    return rows - peak - np.log(np.exp(rows - peak).sum(axis=-1, keepdims=True))


def unwrap_model(model):
    """The HF *ForCausalLM module under a peft wrapper, if any."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if get_base is not None else model


def compute_dtype(reference):
    """The dtype matmuls run in: autocast's when it is on (bf16 training), else the tensor's own."""
    import torch

    device_type = reference.device.type  # the CPU, or the GPU a `device: cuda` run trains on
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return reference.dtype


def backbone_and_head(model) -> tuple:
    """(decoder stack, output projection, logit soft-cap or None) of a causal LM, for the fused losses."""
    causal_lm = unwrap_model(model)
    backbone = causal_lm.get_decoder() if hasattr(causal_lm, "get_decoder") else causal_lm.model
    head = causal_lm.get_output_embeddings()
    if getattr(head, "bias", None) is not None:
        raise WattError(f"{type(causal_lm).__name__}: output heads with a bias are not supported by the fused loss")
    return backbone, head, getattr(causal_lm.config, "final_logit_softcapping", None)


@cache
def _linear_cross_entropy_function():
    """The autograd Function, defined on first use so that importing this module does not import torch."""
    import torch

    class LinearCrossEntropy(torch.autograd.Function):
        """Summed cross-entropy of (hidden @ weight.T) against targets; gradients computed in forward."""

        @staticmethod
        def forward(ctx, hidden, weight, targets, chunk: int, softcap: float | None, dtype):
            # hidden: (n, d), weight: (vocab, d), targets: (n,) with -100 = ignored
            need_hidden, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
            grad_hidden = torch.zeros_like(hidden) if need_hidden else None
            grad_weight = torch.zeros_like(weight, dtype=torch.float32) if need_weight else None
            w = weight.to(dtype)
            total = torch.zeros((), dtype=torch.float32, device=hidden.device)
            with torch.autocast("cuda" if hidden.is_cuda else "cpu", enabled=False):  # full-precision logits
                for start in range(0, hidden.size(0), chunk):
                    h = hidden[start : start + chunk].to(dtype)  # (c, d)
                    t = targets[start : start + chunk]  # (c,)
                    logits = (h @ w.T).float()  # (c, vocab)
                    if softcap:  # Gemma 2 style logit soft-capping, when the config asks for it
                        capped = torch.tanh(logits / softcap)
                        logits = capped * softcap
                    valid = (t != -100).float()  # (c,)
                    safe_t = t.clamp(min=0)
                    lse = torch.logsumexp(logits, dim=-1)  # (c,)
                    picked = logits.gather(1, safe_t[:, None]).squeeze(1)  # (c,)
                    total += ((lse - picked) * valid).sum()
                    if not (need_hidden or need_weight):
                        continue
                    # d(loss)/d(logits) = softmax - one_hot, zero on ignored positions: (c, vocab)
                    grad_logits = logits.sub_(lse[:, None]).exp_()
                    grad_logits[torch.arange(t.numel(), device=t.device), safe_t] -= 1.0
                    grad_logits *= valid[:, None]
                    if softcap:
                        grad_logits *= 1.0 - capped * capped
                    g = grad_logits.to(dtype)
                    if need_hidden:
                        grad_hidden[start : start + chunk] = (g @ w).to(hidden.dtype)  # (c, d)
                    if need_weight:
                        grad_weight += (g.T @ h).float()  # (vocab, d)
            ctx.save_for_backward(grad_hidden, grad_weight)
            ctx.has = (need_hidden, need_weight)
            ctx.weight_dtype = weight.dtype
            return total

        @staticmethod
        def backward(ctx, grad_total):
            grad_hidden, grad_weight = ctx.saved_tensors
            need_hidden, need_weight = ctx.has
            return (
                grad_hidden * grad_total if need_hidden else None,
                (grad_weight * grad_total).to(ctx.weight_dtype) if need_weight else None,
                None, None, None, None,
            )

    return LinearCrossEntropy


def linear_cross_entropy(hidden, weight, targets, chunk: int = 1024, softcap: float | None = None):
    """Summed next-token NLL of `hidden @ weight.T` vs `targets`, never materialising all logits."""
    return _linear_cross_entropy_function().apply(hidden, weight, targets, chunk, softcap, compute_dtype(hidden))


def causal_lm_nll(model, input_ids, chunk: int = 1024, labels=None) -> tuple:
    """Summed next-token negative log-likelihood over a batch and the number of scored tokens.

    input_ids: (batch, seq). Positions 0..seq-2 predict tokens 1..seq-1; `labels` (same shape, -100 =
    not scored) replaces input_ids as the targets, e.g. to score only an answer.
    """
    import torch

    backbone, head, softcap = backbone_and_head(model)
    hidden = backbone(input_ids=input_ids).last_hidden_state  # (batch, seq, dim)
    hidden = hidden[:, :-1].reshape(-1, hidden.size(-1))  # (batch*(seq-1), dim)
    targets = (input_ids if labels is None else labels)[:, 1:].reshape(-1)  # (batch*(seq-1),)
    n_scored = targets.numel()
    if labels is not None:
        # Only scored positions go through the head: an SFT batch scores its answers, often under a tenth
        # of the positions, and with Gemma's 262k vocabulary the head is most of a step's work.
        scored = targets != -100
        hidden, targets = hidden[scored], targets[scored]
        n_scored = targets.numel()
    if not torch.is_grad_enabled():
        return _nll_no_grad(hidden, head.weight, targets, chunk, softcap), n_scored
    return linear_cross_entropy(hidden, head.weight, targets, chunk, softcap), n_scored


def _nll_no_grad(hidden, weight, targets, chunk, softcap):
    import torch
    import torch.nn.functional as F

    dtype = compute_dtype(hidden)
    total = torch.zeros((), dtype=torch.float32, device=hidden.device)
    w = weight.to(dtype)
    for start in range(0, hidden.size(0), chunk):
        logits = (hidden[start : start + chunk].to(dtype) @ w.T).float()  # (c, vocab)
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        total += F.cross_entropy(logits, targets[start : start + chunk], ignore_index=-100, reduction="sum")
    return total
