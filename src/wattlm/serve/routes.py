"""HTTP routes: parse, pick the engine, hand over to `serving`. No model logic lives here."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from wattlm.serve import metrics, serving
from wattlm.serve.catalog import ServedModels
from wattlm.serve.protocol import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    DetokenizeRequest,
    DetokenizeResponse,
    ModelCard,
    ModelList,
    TokenizeRequest,
    TokenizeResponse,
    TokenizerInfoRequest,
    TokenizerInfoResponse,
)
from wattlm.serve.sse import event_stream


def get_served_models(request: Request) -> ServedModels:
    return request.app.state.served_models


Models = Annotated[ServedModels, Depends(get_served_models)]

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus_metrics(models: Models) -> PlainTextResponse:
    return PlainTextResponse(metrics.render(models.engines()), media_type="text/plain; version=0.0.4")


@router.get("/v1/models")
async def list_models(models: Models) -> ModelList:
    return ModelList(data=models.cards())


@router.get("/v1/models/{model_id:path}")  # ids of registry models may contain "/"
async def retrieve_model(model_id: str, models: Models) -> ModelCard:
    return models.card(model_id)


@router.post("/v1/completions", response_model=None)
async def completions(request: CompletionRequest, models: Models) -> CompletionResponse | Any:
    engine = models.engine(request.model)
    if request.stream:
        return event_stream(await serving.stream_completion(engine, request))
    return await serving.complete(engine, request)


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(request: ChatCompletionRequest, models: Models) -> ChatCompletionResponse | Any:
    engine = models.engine(request.model)
    if request.stream:
        return event_stream(await serving.stream_chat(engine, request))
    return await serving.chat(engine, request)


# ---- tokenizer endpoints: evaluation harnesses tokenize through the server, no download needed ----


@router.post("/tokenize")
async def tokenize(request: TokenizeRequest, models: Models) -> TokenizeResponse:
    engine = models.engine(request.model)
    tokens = await asyncio.to_thread(engine.tokenize, request.prompt, request.add_special_tokens)
    return TokenizeResponse(tokens=tokens, count=len(tokens), max_model_len=engine.context_length)


@router.post("/detokenize")
async def detokenize(request: DetokenizeRequest, models: Models) -> DetokenizeResponse:
    engine = models.engine(request.model)
    return DetokenizeResponse(prompt=await asyncio.to_thread(engine.detokenize, request.tokens))


def _tokenizer_info(model: str, models: ServedModels) -> TokenizerInfoResponse:
    engine = models.engine(model)
    info = engine.tokenizer_info()
    return TokenizerInfoResponse(
        model=model,
        vocab_size=info.vocab_size,
        max_model_len=engine.context_length,
        bos_token=info.bos_token,
        bos_token_id=info.bos_token_id,
        eos_token=info.eos_token,
        eos_token_id=info.eos_token_id,
        add_bos_token=info.add_bos_token,
        has_chat_template=engine.has_chat_template,
        chat_template=info.chat_template,
    )


@router.get("/tokenizer_info")
async def tokenizer_info(models: Models, model: Annotated[str, Query()]) -> TokenizerInfoResponse:
    return _tokenizer_info(model, models)


@router.post("/tokenizer_info")
async def tokenizer_info_post(request: TokenizerInfoRequest, models: Models) -> TokenizerInfoResponse:
    return _tokenizer_info(request.model, models)
