"""What every OpenAI endpoint shares: the sampling fields of a request, usage, model cards, errors."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    seed: int | None = None
    n: int = Field(1, ge=1, le=16)  # choices per prompt, each an independent sequence
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    # Extensions that vLLM and llama.cpp servers accept and load generators send.
    top_k: int = Field(0, ge=-1)  # 0 or -1: off
    repetition_penalty: float = Field(1.0, gt=0.0, le=10.0)
    ignore_eos: bool = False

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
