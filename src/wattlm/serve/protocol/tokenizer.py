"""Bodies of the tokenizer endpoints, as vLLM serves them (/tokenize, /detokenize, /tokenizer_info)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None  # optional: lm-eval's remote tokenizer sends none (one model served)
    prompt: str
    add_special_tokens: bool = True


class TokenizeResponse(BaseModel):
    tokens: list[int]
    count: int
    max_model_len: int


class DetokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None  # optional: lm-eval's remote tokenizer sends none (one model served)
    tokens: list[int]


class DetokenizeResponse(BaseModel):
    prompt: str


class TokenizerInfoRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None  # optional: lm-eval's remote tokenizer sends none (one model served)


class TokenizerInfoResponse(BaseModel):
    model: str
    tokenizer_class: str = "llama.cpp"
    vocab_size: int
    max_model_len: int
    bos_token: str | None
    bos_token_id: int | None
    eos_token: str | None
    eos_token_id: int | None
    pad_token: str | None = None
    add_bos_token: bool
    has_chat_template: bool
    chat_template: str | None
