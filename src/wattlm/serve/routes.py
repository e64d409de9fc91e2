"""HTTP routes: parse, pick the engine, hand over to `serving`. No model logic lives here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from wattlm.serve import metrics, serving
from wattlm.serve.catalog import ServedModels
from wattlm.serve.protocol import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    ModelCard,
    ModelList,
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
