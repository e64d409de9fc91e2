"""Bodies of POST /v1/embeddings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from wattlm.serve.protocol.caps import MAX_EMBEDDING_INPUTS, too_many
from wattlm.serve.protocol.common import unsupported


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _text_input(cls, value: Any) -> Any:
        if isinstance(value, list) and value and not isinstance(value[0], str):
            raise unsupported("embedding input given as token ids (send text)")
        if isinstance(value, list) and len(value) > MAX_EMBEDDING_INPUTS:
            raise too_many("input", len(value), MAX_EMBEDDING_INPUTS, "texts")
        return value

    @model_validator(mode="after")
    def _supported(self) -> EmbeddingRequest:
        if isinstance(self.input, list) and not self.input:
            raise ValueError("input must not be an empty list")
        if self.dimensions is not None:
            raise unsupported("dimensions (shortened embeddings)")
        return self

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    embedding: list[float] | str  # str: base64 of little-endian float32
    index: int


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
