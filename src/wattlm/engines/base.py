"""The engine interface: a small core every engine has, plus optional capabilities.

The HTTP layer speaks OpenAI; an engine speaks prompts and tokens. A new backend is one new file
implementing `Engine` (five members) and one row in `wattlm.engines.table.ENGINES`; routes and the
OpenAI protocol do not change. What a backend can do beyond plain generation it declares by
implementing a capability protocol (`Scoring`, `Embeddings`, `ChatTemplates`, `Vocabulary`,
`JsonOutput`, `Metered`); the serving layer asks `supports(engine, Scoring)` and answers a request that
needs a missing capability with `MissingCapability` (HTTP 400 naming it), never by probing attributes.

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
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from wattlm.engines.params import (
    ChatTurn,
    GenerationChunk,
    JsonConstraint,
    LogprobCompletion,
    Prompt,
    SamplingParams,
    TokenizerInfo,
)
from wattlm.errors import WattError

if TYPE_CHECKING:
    from wattlm.engines.metrics import EngineMetrics


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


class MissingCapability(WattError):
    """The request needs something this engine does not do (HTTP 400 naming the capability)."""

    def __init__(self, model: str, capability: type, feature: str) -> None:
        super().__init__(f"{feature} needs the '{capability.__name__}' capability, which the engine serving "
                         f"model '{model}' does not have; serve it with an engine that has it (see docs/serving.md)")
        self.capability = capability


# ---- the core: every engine ----------------------------------------------------------------------


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

    def generate(self, prompt: Prompt, params: SamplingParams) -> Iterator[GenerationChunk]:
        """Complete `prompt` (see the module docstring for the streaming contract)."""
        ...

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """The token ids of `text` (`add_special`: with BOS when the model adds one)."""
        ...

    def close(self) -> None:
        """Free the model now (keep-alive unloading, shutdown)."""
        ...


# ---- capabilities: what some engines do besides ----------------------------------------------------


@runtime_checkable
class Scoring(Protocol):
    """Per-token log-probabilities (`echo`/`logprobs` on completions, `logprobs` on chat)."""

    def generate_with_logprobs(
        self, prompt: Prompt, params: SamplingParams, top_logprobs: int, echo: bool
    ) -> LogprobCompletion:
        """Complete `prompt` (blocking, whole answer) reporting log-probabilities of each token."""
        ...


@runtime_checkable
class Embeddings(Protocol):
    """Sentence vectors (`/v1/embeddings`)."""

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        """One L2-normalised vector per text (mean-pooled hidden states), and the tokens read."""
        ...


@runtime_checkable
class ChatTemplates(Protocol):
    """The model's own chat template. Engines without it get a plain transcript (`plain_transcript`)."""

    @property
    def has_chat_template(self) -> bool:
        """False for a base model: `render_chat` then raises `NoChatTemplate`."""
        ...

    def render_chat(self, messages: Sequence[ChatTurn]) -> str:
        """Render a conversation into a prompt that asks for the assistant's reply."""
        ...


@runtime_checkable
class Vocabulary(Protocol):
    """Token ids back to text and the tokenizer's facts (`/detokenize`, `/tokenizer_info`)."""

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of token ids; raises `InvalidTokens` for ids outside the vocabulary."""
        ...

    def tokenizer_info(self) -> TokenizerInfo: ...


@runtime_checkable
class JsonOutput(Protocol):
    """Generation held to JSON by a grammar (`response_format`)."""

    def check_json(self, constraint: JsonConstraint) -> None:
        """Raise `WattError` (HTTP 400) now if answers cannot be held to `constraint`."""
        ...


@runtime_checkable
class Metered(Protocol):
    """Figures for `/metrics`: request latencies, slots in use, queue, token totals."""

    metrics: EngineMetrics

    @property
    def running(self) -> int: ...

    @property
    def waiting(self) -> int: ...

    @property
    def counters(self) -> dict[str, int]:
        """steps, prompt_tokens, reused_prompt_tokens, generated_tokens."""
        ...


CAPABILITIES: tuple[type, ...] = (Scoring, Embeddings, ChatTemplates, Vocabulary, JsonOutput, Metered)


@runtime_checkable
class EngineWrapper(Protocol):
    """Something that stands in for an engine (serve's pooled engine) and answers for its capabilities."""

    def supports(self, capability: type) -> bool: ...


def supports(engine: object, capability: type) -> bool:
    """Whether `engine` (or, for a wrapper, the engine it holds) implements the `capability` protocol."""
    if isinstance(engine, EngineWrapper):
        return engine.supports(capability)
    return isinstance(engine, capability)


def require(engine: Engine, capability: type, feature: str) -> None:
    """`MissingCapability` naming `feature` unless `engine` has `capability`."""
    if not supports(engine, capability):
        raise MissingCapability(engine.name, capability, feature)


def capabilities_of(engine: object) -> list[str]:
    """The names of the capabilities `engine` has (for `watt serve`'s start line and the docs)."""
    return [capability.__name__ for capability in CAPABILITIES if supports(engine, capability)]


# ---- helpers shared by engines ------------------------------------------------------------------


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
