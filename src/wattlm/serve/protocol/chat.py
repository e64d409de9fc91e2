"""Bodies of POST /v1/chat/completions: messages, response_format, logprobs, stream chunks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from wattlm.engines.schema_limits import FIELD as SCHEMA_FIELD
from wattlm.engines.schema_limits import SchemaTooLarge, check_schema
from wattlm.serve.protocol.caps import MAX_MESSAGES, too_many
from wattlm.serve.protocol.common import FinishReason, SamplingRequest, Usage, unsupported


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        """The content as one string; only text parts exist on a text model."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        for part in self.content:
            if part.type != "text":
                raise ValueError(f"message content of type '{part.type}' is not supported; send text")
        return "".join(part.text or "" for part in self.content)


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str | None = None
    json_schema: dict[str, Any] = Field(alias="schema")  # `schema` would shadow a BaseModel attribute
    strict: bool | None = None

    @field_validator("json_schema")
    @classmethod
    def _bounded(cls, schema: dict[str, Any]) -> dict[str, Any]:
        # Counts, depth and size before anything serialises or converts the schema (engines check again).
        try:
            check_schema(schema)
        except SchemaTooLarge as error:
            raise ValueError(str(error).removeprefix(SCHEMA_FIELD + ".").removeprefix(SCHEMA_FIELD + " ")) from None
        return schema


class ResponseFormat(BaseModel):
    """`text`, `json_object` (any JSON object) or `json_schema` (JSON valid under a schema)."""

    model_config = ConfigDict(extra="ignore")

    type: str = "text"
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type not in ("text", "json_object", "json_schema"):
            raise unsupported(f"response_format '{self.type}'")
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format of type json_schema needs json_schema.schema")
        return self


class KnowledgeChoice(BaseModel):
    """wattlm's extension `knowledge: {...}`: answer from this knowledge base (see docs/serving.md)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt option must not silently fall back to defaults

    kb: str | None = None  # a KB name or id; default: the server's --kb
    k: int | None = Field(None, ge=1, le=20)  # passages retrieved; default: the server's --kb-k
    mode: Literal["hybrid", "bm25", "dense"] | None = None


class ChatCompletionRequest(SamplingRequest):
    """Body of POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)  # the newer name of max_tokens
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: list[dict[str, Any]] | None = None
    response_format: ResponseFormat | None = None
    # wattlm's extension: false turns grounding off, true uses the server's KB, an object picks one.
    knowledge: bool | KnowledgeChoice | None = None

    @field_validator("messages", mode="before")
    @classmethod
    def _bounded_messages(cls, messages: Any) -> Any:
        if isinstance(messages, list) and len(messages) > MAX_MESSAGES:
            raise too_many("messages", len(messages), MAX_MESSAGES, "messages")
        return messages

    @model_validator(mode="after")
    def _supported(self) -> ChatCompletionRequest:
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs=true")
        if self.tools:
            raise unsupported("tool calling")
        for message in self.messages:
            message.text  # noqa: B018 -- raises now (a 400) on image or audio parts
        return self

    @property
    def completion_budget(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class Citation(BaseModel):
    """One passage a grounded answer cites as `[id]` (wattlm's extension)."""

    id: int
    source: str  # the document's path as given to `watt kb build`
    title: str
    heading: str
    text: str
    start: int  # character offsets of `text` in the cleaned document
    end: int
    score: float
    superseded: bool = False
    superseded_by: str | None = None


def _omit_none(keys: tuple[str, ...]):
    """A serializer dropping `keys` when None, so answers without grounding keep OpenAI's exact shape."""

    def serialize(self: BaseModel, handler: Any) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if not (key in keys and value is None)}

    return model_serializer(mode="wrap")(serialize)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    citations: list[Citation] | None = None  # grounded answers only
    refused: Literal["echo", "debris"] | None = None  # the closed-book guard replaced the answer (serve/closed_book_guard.py)

    _omit_citations = _omit_none(("citations", "refused"))


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None  # UTF-8 bytes of the token (a token may hold part of a character)


class ChatTokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]  # the `top_logprobs` most likely tokens at this position, best first


class ChatLogprobs(BaseModel):
    """The chat logprobs object: one entry per generated token."""

    content: list[ChatTokenLogprob] | None
    refusal: None = None


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    logprobs: ChatLogprobs | None = None
    finish_reason: FinishReason


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    citations: list[Citation] | None = None  # grounded streams: on the final chunk's delta
    refused: Literal["echo", "debris"] | None = None  # on the delta carrying the closed-book guard's refusal

    @model_serializer(mode="wrap")
    def _omit_unset_parts(self, handler: Any) -> dict[str, Any]:
        # OpenAI deltas carry only what changed: {"role": ...} first, then {"content": ...}, then {}.
        return {key: value for key, value in handler(self).items() if value is not None}


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: DeltaMessage
    logprobs: ChatLogprobs | None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
