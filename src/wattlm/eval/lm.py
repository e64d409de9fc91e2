"""The two model calls every task is built on: log-likelihood of a continuation, and greedy generation.

Both batch on CPU with left padding: sequences end at the same position, so a multiple-choice batch
only needs logits for its last few positions (`logits_to_keep`), which matters for Gemma's 262k-token
vocabulary (a full batch x length x vocab logits tensor would be gigabytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Continuation:
    logprob: float  # sum of log-probabilities of the continuation's tokens given the context
    greedy: bool  # every continuation token was the argmax, i.e. greedy decoding would produce it
    tokens: int


def _pad_id(tokenizer) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return pad if pad is not None else 0


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Context and continuation ids, encoded apart so the boundary is exact.

    Trailing spaces of the context move to the continuation ("Answer: " + "Paris" is scored as
    "Answer:" + " Paris"), because BPE vocabularies attach a space to the word that follows it.
    """
    stripped = context.rstrip(" ")
    continuation = context[len(stripped):] + continuation
    context_ids = tokenizer(stripped)["input_ids"] if stripped else []
    if not context_ids:  # an empty context still needs one token to predict from
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        context_ids = [start]
    continuation_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    return context_ids, continuation_ids


def _left_padded(rows: Sequence[list[int]], pad_id: int):
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row)
        mask[i, width - len(row):] = 1
    # Positions count real tokens only, so a padded row sees the same positions as an unpadded one.
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions


def loglikelihoods(model, tokenizer, requests: Sequence[tuple[str, str]], batch_size: int = 8,
                   max_length: int = 2048) -> list[Continuation]:
    """log P(continuation | context) for each (context, continuation) pair.

    Continuations that share a context (the choices of one multiple-choice item) are scored on one
    forward pass of that context: its key/value cache is reused for each of them. With grounded
    prompts (three passages, ~600 tokens, 4 choices of a few tokens) that is 4x fewer tokens through the
    model. Other requests go through whole, batched longest first.
    """
    import torch

    encoded = []
    for context, continuation in requests:
        context_ids, continuation_ids = encode_pair(tokenizer, context, continuation)
        if not continuation_ids:
            raise ValueError(f"empty continuation after context {context[-40:]!r}")
        encoded.append((context_ids, continuation_ids))
    by_context: dict[tuple[int, ...], list[int]] = {}
    for i, (context_ids, _) in enumerate(encoded):
        by_context.setdefault(tuple(context_ids), []).append(i)
    shared = [group for group in by_context.values() if len(group) > 1
              and len(encoded[group[0]][0]) + max(len(encoded[i][1]) for i in group) <= max_length]
    in_shared = {i for group in shared for i in group}
    results: list[Continuation | None] = [None] * len(encoded)
    pad_id = _pad_id(tokenizer)
    with torch.inference_mode():
        _score_whole([i for i in range(len(encoded)) if i not in in_shared], encoded, results, model, pad_id,
                     batch_size, max_length)
        _score_shared(shared, encoded, results, model, pad_id, batch_size)
    return results  # type: ignore[return-value]


def _continuation(logits, targets) -> Continuation:
    """Score `targets` from the logits that predict them (row k predicts targets[k])."""
    predictors = logits.float().log_softmax(-1)
    picked = predictors.gather(-1, targets[:, None]).squeeze(-1)
    return Continuation(float(picked.sum()), bool((predictors.argmax(-1) == targets).all()), len(targets))


def _score_whole(indices, encoded, results, model, pad_id: int, batch_size: int, max_length: int) -> None:
    """Context + continuation as one left-padded row each."""
    rows = {}
    for i in indices:
        context_ids, continuation_ids = encoded[i]
        row = (context_ids + continuation_ids)[-max_length:]  # keep the end: the continuation is scored
        rows[i] = (row, min(len(continuation_ids), len(row) - 1))
    order = sorted(indices, key=lambda i: -len(rows[i][0]))
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        ids, mask, positions = _left_padded([rows[i][0] for i in batch], pad_id)
        keep = max(rows[i][1] for i in batch) + 1
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                       logits_to_keep=keep).logits  # (batch, keep, vocab)
        for row, i in enumerate(batch):
            n = rows[i][1]
            # The token at position p is predicted by the logits at p - 1.
            results[i] = _continuation(logits[row, keep - n - 1: keep - 1], ids[row, -n:])


def _score_shared(groups, encoded, results, model, pad_id: int, batch_size: int) -> None:
    """Each group's context once (left-padded, keeping its cache), then its continuations on copies of
    that cache (right-padded: padding after a continuation cannot change the positions before it)."""
    import copy

    import torch

    order = sorted(groups, key=lambda g: -len(encoded[g[0]][0]))
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        ids, mask, positions = _left_padded([encoded[g[0]][0] for g in batch], pad_id)
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
        first = out.logits[:, -1]  # predicts each group's first continuation token
        lengths = mask.sum(-1)
        pairs = [(g, i) for g, group in enumerate(batch) for i in group]
        for chunk in range(0, len(pairs), batch_size):
            part = pairs[chunk:chunk + batch_size]
            rows = torch.tensor([g for g, _ in part])
            cache = copy.deepcopy(out.past_key_values)
            cache.batch_select_indices(rows)
            targets = [torch.tensor(encoded[i][1]) for _, i in part]
            width = max(len(t) for t in targets)
            cont_ids = torch.full((len(part), width), pad_id, dtype=torch.long)
            cont_mask = torch.zeros((len(part), width), dtype=torch.long)
            for r, t in enumerate(targets):
                cont_ids[r, :len(t)] = t
                cont_mask[r, :len(t)] = 1
            cont_positions = lengths[rows][:, None] + torch.arange(width)[None, :]
            logits = model(input_ids=cont_ids, attention_mask=torch.cat([mask[rows], cont_mask], dim=1),
                           position_ids=cont_positions, past_key_values=cache, use_cache=True).logits
            for r, (g, i) in enumerate(part):
                n = len(targets[r])
                predictors = torch.cat([first[g:g + 1], logits[r, :n - 1]])
                results[i] = _continuation(predictors, targets[r])


def chat_prompt(tokenizer, text: str) -> tuple[str, bool]:
    """The prompt as the model expects it: wrapped in its chat template if it has one.

    Returns the text and whether the tokenizer should still add its special tokens (a chat template
    writes its own BOS).
    """
    if getattr(tokenizer, "chat_template", None):
        wrapped = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                add_generation_prompt=True)
        return wrapped, False
    return text, True


def _stop_at_line_end(text: str) -> str | None:
    """The answer if it is complete: text up to the first newline that follows some content."""
    body = text.lstrip()
    cut = body.find("\n")
    return body[:cut] if cut >= 0 else None


def greedy_generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 32, batch_size: int = 8,
                    use_chat_template: bool = True, max_length: int = 2048) -> list[str]:
    """Greedy answers, one line each: generation stops at EOS or at a newline after the first content."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    pad_id = _pad_id(tokenizer)
    rows = []
    for prompt in prompts:
        text, add_special = chat_prompt(tokenizer, prompt) if use_chat_template else (prompt, True)
        rows.append(tokenizer(text, add_special_tokens=add_special)["input_ids"][-max_length:])

    class LineDone(StoppingCriteria):
        def __init__(self, width: int):
            self.width = width

        def __call__(self, input_ids, scores, **kwargs):
            texts = tokenizer.batch_decode(input_ids[:, self.width:], skip_special_tokens=True)
            return torch.tensor([_stop_at_line_end(t) is not None for t in texts], dtype=torch.bool)

    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    answers: list[str] = [""] * len(rows)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            ids, mask, _ = _left_padded([rows[i] for i in batch], pad_id)
            out = model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                pad_token_id=pad_id, stopping_criteria=StoppingCriteriaList([LineDone(ids.shape[1])]),
                top_p=None, top_k=None, temperature=None,
            )
            texts = tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)
            for i, text in zip(batch, texts, strict=True):
                line = _stop_at_line_end(text)
                answers[i] = (line if line is not None else text.strip()).strip()
    return answers
