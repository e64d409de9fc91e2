"""What flows between the serving layer and an engine: sampling settings, generated chunks, token facts.

Plain frozen dataclasses, no backend types: the OpenAI layer builds them from requests, every engine
reads and returns them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class JsonConstraint:
    """The answer must be JSON (`response_format`): any object, or a document valid under `schema`."""

    schema: str | None = None  # a JSON schema as JSON text (hashable, so grammars can be cached)


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one completion; defaults follow the OpenAI API, not llama.cpp."""

    max_tokens: int | None = None  # None: until the context window is full
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()  # the text stops before the first of these; it is not returned
    seed: int | None = None  # None: a fresh random seed per request
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    top_k: int = 0  # 0: off (OpenAI has no top_k; vLLM and llama.cpp clients send it)
    repetition_penalty: float = 1.0  # 1: off
    ignore_eos: bool = False  # keep generating past end-of-generation tokens (load generators ask for it)
    response_json: JsonConstraint | None = None  # None: free text; engines that cannot constrain raise WattError


@dataclass(frozen=True)
class GenerationChunk:
    """A piece of generated text and the token counts so far."""

    text: str
    finish_reason: FinishReason | None
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class TokenizerInfo:
    """What an evaluation harness needs to tokenize like the server (/tokenizer_info)."""

    vocab_size: int
    bos_token: str | None
    bos_token_id: int | None
    eos_token: str | None
    eos_token_id: int | None
    add_bos_token: bool
    chat_template: str | None

    @classmethod
    def describe(cls, vocab_size: int, bos: int, eos: int, token_text, add_bos: bool,
                 chat_template: str | None) -> TokenizerInfo:
        """From llama.cpp's ids (-1 = none) and a token -> text function; one wording for every engine."""
        return cls(
            vocab_size=vocab_size,
            bos_token=token_text(bos) or None,
            bos_token_id=bos if bos >= 0 else None,
            eos_token=token_text(eos) or None,
            eos_token_id=eos if eos >= 0 else None,
            add_bos_token=add_bos,
            chat_template=chat_template,
        )


@dataclass(frozen=True)
class LogprobCompletion:
    """A completion with per-token log-probabilities (legacy /v1/completions `logprobs`).

    The lists cover the prompt tokens first when `echo` was asked (the first prompt token has no
    logprob: nothing precedes it), then every generated token. `top_logprobs[i]` maps token text to
    logprob for the `n` most likely tokens at that position plus the token actually there.
    """

    text: str  # the prompt (when echoed) followed by the generated text
    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    token_bytes: list[bytes] | None = None  # each token's exact bytes (`tokens` may hold U+FFFD for a partial character)


Prompt = str | Sequence[int]  # text, or token ids (as evaluation harnesses send them)


@dataclass(frozen=True)
class ChatTurn:
    """One message of a conversation after the protocol layer flattened content parts to text."""

    role: str
    content: str
