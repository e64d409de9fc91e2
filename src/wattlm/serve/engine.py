"""The engine interface: the one extension point of `wattlm.serve`.

The HTTP layer speaks OpenAI; an engine speaks prompts and tokens. A new backend (vLLM, a batching
scheduler over llama.cpp, a remote replica) is one new file implementing `Engine`; routes and the
OpenAI protocol do not change.

Contract of `Engine.generate`:
- it is a *blocking* iterator; the app runs it in a worker thread, so it may be called from several
  threads at once (an engine serialises or batches requests as it sees fit);
- the prompt is validated on the first `next()` (before any text is produced), so errors such as
  `PromptTooLong` reach the client as HTTP 400 rather than a broken stream;
- every chunk carries cumulative token counts of what the model actually consumed and produced, and the
  last chunk, and only it, has a `finish_reason`;
- closing the iterator early (`close()`) aborts the request and frees the engine;
- an engine that cannot take more work raises `EngineOverloaded` on the first `next()` (HTTP 503).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from wattlm.errors import WattError

FinishReason = Literal["stop", "length"]


class NoChatTemplate(WattError):
    """The model cannot render a conversation (a base model, or a GGUF without a chat template)."""


class PromptTooLong(WattError):
    """The prompt leaves no room for a single generated token in the context window."""


class InvalidTokens(WattError):
    """A token id outside the vocabulary (HTTP 400)."""


class EngineOverloaded(WattError):
    """Every slot is busy and the waiting queue is full: the client should retry later (HTTP 503)."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds, sent as the Retry-After header


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


@runtime_checkable
class Engine(Protocol):
    """A loaded model that can complete text."""

    @property
    def name(self) -> str:
        """A human-readable name (the app keys engines by the model id clients send)."""
        ...

    @property
    def context_length(self) -> int:
        """Prompt plus generated tokens must fit in this many tokens."""
        ...

    @property
    def has_chat_template(self) -> bool: ...

    def generate(self, prompt: Prompt, params: SamplingParams) -> Iterator[GenerationChunk]:
        """Complete `prompt` (see the module docstring for the streaming contract)."""
        ...

    def generate_with_logprobs(
        self, prompt: Prompt, params: SamplingParams, top_logprobs: int, echo: bool
    ) -> LogprobCompletion:
        """Complete `prompt` (blocking, whole answer) reporting log-probabilities of each token."""
        ...

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """The token ids of `text` (`add_special`: with BOS when the model adds one)."""
        ...

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of token ids; raises `InvalidTokens` for ids outside the vocabulary."""
        ...

    def tokenizer_info(self) -> TokenizerInfo: ...

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        """One L2-normalised vector per text (mean-pooled hidden states), and the tokens read."""
        ...

    def render_chat(self, messages: Sequence[ChatTurn]) -> str:
        """Render a conversation into a prompt that asks for the assistant's reply.

        Raises `NoChatTemplate` when the model has none.
        """
        ...

    def count_tokens(self, text: str) -> int:
        """How many prompt tokens `generate(text, ...)` would consume."""
        ...


def check_token_ids(tokens: Sequence[int], vocab_size: int) -> list[int]:
    """`tokens` as a list, or `InvalidTokens` naming the first id outside [0, vocab_size)."""
    for token in tokens:
        if not 0 <= token < vocab_size:
            raise InvalidTokens(f"token id {token} is out of range; the vocabulary has {vocab_size} tokens")
    return list(tokens)


def no_chat_template_message(model: str) -> str:
    """One wording for every engine, so clients can match on it."""
    return (
        f"model '{model}' has no chat template (it is a base model), so it cannot chat; "
        "use /v1/completions with a plain-text prompt, or serve a chat-tuned model"
    )


def generation_budget(model: str, prompt_tokens: int, context_length: int, max_tokens: int | None) -> int:
    """Tokens a request may generate: what it asked for, capped by the room left in the context."""
    if prompt_tokens == 0:
        # "" tokenizes to nothing on models that add no BOS; llama.cpp cannot start from nothing (the
        # simple engine asserts, the batch engine's decode fails and takes the whole batch down with it).
        raise WattError("the prompt is empty; send at least one token")
    room = context_length - prompt_tokens
    if room <= 0:
        raise PromptTooLong(
            f"prompt is {prompt_tokens} tokens but the context window of '{model}' is {context_length}; "
            "shorten the prompt"
        )
    return room if max_tokens is None else min(max_tokens, room)
