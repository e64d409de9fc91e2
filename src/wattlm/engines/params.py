"""What flows between the serving layer and an engine: sampling settings, generated chunks, token facts.

Plain frozen dataclasses, no backend types: the OpenAI layer builds them from requests, every engine
reads and returns them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

FinishReason = Literal["stop", "length"]
# One position of a logprobs answer: (token id, its logprob or None for the first prompt token, {text: logprob}
# of the most likely tokens there plus the token itself, or None).
LogprobEntry = tuple[int, float | None, dict[str, float] | None]


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

    @classmethod
    def from_entries(cls, entries: Sequence[LogprobEntry], token_bytes: Callable[[int], bytes], prompt_text: str,
                     generated_text: str, echo: bool, finish_reason: FinishReason, prompt_tokens: int,
                     completion_tokens: int) -> LogprobCompletion:
        """The completion an engine collected as `entries` (prompt positions first when `echo`), each token's
        text taken from its bytes (`token_bytes`). Offsets count characters of the returned text: from the
        start of the echoed prompt, or from the end of the prompt when it is not echoed (as OpenAI's API)."""
        exact = [token_bytes(token) for token, _, _ in entries]
        pieces = [data.decode("utf-8", errors="replace") for data in exact]
        offsets, position = [], 0 if echo else len(prompt_text)
        for piece in pieces:
            offsets.append(position)
            position += len(piece)
        return cls(
            text=prompt_text + generated_text if echo else generated_text, tokens=pieces,
            token_logprobs=[logprob for _, logprob, _ in entries], top_logprobs=[top for _, _, top in entries],
            text_offset=offsets, finish_reason=finish_reason, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, token_bytes=exact,
        )


Prompt = str | Sequence[int]  # text, or token ids (as evaluation harnesses send them)


@dataclass(frozen=True)
class ChatTurn:
    """One message of a conversation after the protocol layer flattened content parts to text."""

    role: str
    content: str
