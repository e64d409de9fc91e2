"""What every OpenAI endpoint shares: the sampling fields of a request, usage, model cards, errors."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wattlm.serve.protocol.caps import MAX_CHOICES, MAX_STOP_CHARS, MAX_STOP_STRINGS, SEED_RANGE, too_many

FinishReason = Literal["stop", "length"]


def unsupported(feature: str) -> ValueError:
    return ValueError(f"{feature} is not supported by wattlm yet")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class SamplingRequest(BaseModel):
    """The fields /v1/completions and /v1/chat/completions share."""

    model_config = ConfigDict(extra="ignore")

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    # Any 64-bit integer (clients send int64 or uint64; llama.cpp's servers send -1), used modulo 2**32.
    seed: int | None = Field(None, ge=SEED_RANGE[0], le=SEED_RANGE[1])
    n: int = Field(1, ge=1, le=MAX_CHOICES)  # choices per prompt, each an independent sequence
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    # Extensions that vLLM and llama.cpp servers accept and load generators send.
    top_k: int = Field(0, ge=-1, le=2**31 - 1)  # 0 or -1 (vLLM's spelling): off; llama.cpp takes an int32
    repetition_penalty: float = Field(1.0, gt=0.0, le=10.0)
    ignore_eos: bool = False

    @field_validator("stop", mode="before")
    @classmethod
    def _bounded_stop(cls, stop: Any) -> Any:
        # Checked before pydantic validates each entry: a 40k-entry list is refused in microseconds.
        if isinstance(stop, list) and len(stop) > MAX_STOP_STRINGS:
            raise too_many("stop", len(stop), MAX_STOP_STRINGS, "strings")
        for text in [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []:
            if isinstance(text, str) and len(text) > MAX_STOP_CHARS:
                raise ValueError(f"stop has a string of {len(text)} characters; this server allows at most "
                                 f"{MAX_STOP_CHARS}")
        return stop

    @property
    def sampling_seed(self) -> int | None:
        """`seed` as the engines take it (0 .. 2**32-1): -1 and 2**32-1 are the same seed."""
        return None if self.seed is None else self.seed % 2**32

    @field_validator("logit_bias")
    @classmethod
    def _no_logit_bias(cls, bias: dict[str, float] | None) -> None:
        if bias:
            raise unsupported("logit_bias")
        return None

    @property
    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="allow")  # registry metadata: tier, parent, ...

    id: str
    object: Literal["model"] = "model"
    created: int  # unix seconds, as OpenAI sends it
    owned_by: str = "wattlm"

    @field_validator("created", mode="before")
    @classmethod
    def _unix_seconds(cls, created: Any) -> Any:
        # Registry rows carry datetimes or ISO-8601 strings; clients expect an integer timestamp.
        if isinstance(created, str) and not created.isdigit():
            created = datetime.fromisoformat(created)
        if isinstance(created, datetime):
            return int(created.timestamp())
        return created


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo
