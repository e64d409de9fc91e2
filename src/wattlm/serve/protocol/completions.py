"""Bodies of POST /v1/completions (the legacy text completions endpoint)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from wattlm.serve.protocol.caps import MAX_PROMPTS, too_many
from wattlm.serve.protocol.common import FinishReason, SamplingRequest, Usage, unsupported


class CompletionRequest(SamplingRequest):
    """Body of POST /v1/completions."""

    # Text, texts, token ids, or lists of token ids (evaluation harnesses send ids).
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(16, ge=0)  # the OpenAI default for completions; 0 only with echo
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=20)
    best_of: int | None = None
    suffix: str | None = None

    @field_validator("prompt", mode="before")
    @classmethod
    def _bounded_prompts(cls, prompt: Any) -> Any:
        # A list of texts or of token-id lists is one sequence per entry (a flat id list is one prompt).
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, list)) and len(prompt) > MAX_PROMPTS:
            raise too_many("prompt", len(prompt), MAX_PROMPTS, "prompts")
        return prompt

    @model_validator(mode="after")
    def _supported(self) -> CompletionRequest:
        if self.max_tokens == 0 and not self.echo:
            raise ValueError("max_tokens must be at least 1 (0 is only allowed with echo, to score a prompt)")
        if self.best_of not in (None, 1):
            raise unsupported("best_of > 1")
        if self.suffix:
            raise unsupported("suffix (insertion)")
        if isinstance(self.prompt, list) and not self.prompt:
            raise ValueError("prompt must not be an empty list")
        return self

    @property
    def prompts(self) -> list[str | list[int]]:
        if isinstance(self.prompt, str):
            return [self.prompt]
        if isinstance(self.prompt[0], int):
            return [list(self.prompt)]  # type: ignore[arg-type]
        return list(self.prompt)  # type: ignore[arg-type]

    @property
    def wants_logprobs(self) -> bool:
        """echo or logprobs: answered by the engine's scoring path (whole answer, then one chunk)."""
        return self.echo or self.logprobs is not None


class CompletionLogprobs(BaseModel):
    """The legacy completions logprobs object (one entry per token of the returned text)."""

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: FinishReason | None = None


class CompletionResponse(BaseModel):
    """A whole completion, and also the shape of each streamed chunk (then usage is mostly null)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
