"""Caps on the lists and strings of a request, checked while the body is parsed (before any engine work).

Each list a client sends costs server time per entry: every stop string is matched against each
generated token (a 40k-entry stop list costs ~50 ms of GIL per token), every prompt and embedding input
is a sequence or a forward pass, every message is rendered through the chat template. A request above a
cap is a 400 naming the field and the cap. Defaults fit what real clients send; an operator can change
them with the environment variables named below (read when the server starts).
"""

from __future__ import annotations

import os


def _cap(variable: str, default: int) -> int:
    text = os.environ.get(variable)
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{variable}={text!r} must be a positive whole number")
    return int(text)


MAX_PROMPTS = _cap("WATT_MAX_PROMPTS", 64)  # prompts in one /v1/completions request
MAX_EMBEDDING_INPUTS = _cap("WATT_MAX_EMBEDDING_INPUTS", 256)  # texts in one /v1/embeddings request
MAX_STOP_STRINGS = _cap("WATT_MAX_STOP_STRINGS", 16)  # entries of `stop` (OpenAI allows 4)
MAX_STOP_CHARS = _cap("WATT_MAX_STOP_CHARS", 256)  # characters of one stop string
MAX_MESSAGES = _cap("WATT_MAX_MESSAGES", 512)  # messages in one chat request
MAX_CHOICES = _cap("WATT_MAX_CHOICES", 16)  # `n`: choices per prompt

SEED_RANGE = (-(2**63), 2**64 - 1)  # any signed or unsigned 64-bit integer; used modulo 2**32


def too_many(field: str, count: int, cap: int, what: str) -> ValueError:
    return ValueError(f"{field} has {count} {what}; this server allows at most {cap}")
