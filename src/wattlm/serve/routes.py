"""HTTP routes: parse, pick the engine, hand over to `serving`. No model logic lives here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from wattlm.engines.base import ChatTemplates, Embeddings, Vocabulary, require, supports
from wattlm.serve import closed_book_guard, grounding, metrics, serving
from wattlm.serve.catalog import ServedModels
from wattlm.serve.disconnect import unless_disconnected
from wattlm.serve.knowledge_routes import Knowledge
from wattlm.serve.limits import Limits, capped_max_tokens, deadline_for, stream_within_deadline, within_deadline
from wattlm.serve.protocol.chat import ChatCompletionRequest, ChatCompletionResponse
from wattlm.serve.protocol.common import ModelCard, ModelList
from wattlm.serve.protocol.completions import CompletionRequest, CompletionResponse
from wattlm.serve.protocol.embeddings import Embedding, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage
from wattlm.serve.protocol.tokenizer import (
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeRequest,
    TokenizeResponse,
    TokenizerInfoRequest,
    TokenizerInfoResponse,
)
from wattlm.serve.sse import event_stream
from wattlm.serve.workers import current_pools


def get_served_models(request: Request) -> ServedModels:
    return request.app.state.served_models


Models = Annotated[ServedModels, Depends(get_served_models)]

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus_metrics(models: Models, request: Request) -> PlainTextResponse:
    text = await metrics.exposition(models.engines(), current_pools().all()) + request.app.state.closed_book_guard.render()
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


@router.get("/v1/models")
async def list_models(models: Models) -> ModelList:
    return ModelList(data=models.cards())


@router.get("/v1/models/{model_id:path}")  # ids of registry models may contain "/"
async def retrieve_model(model_id: str, models: Models) -> ModelCard:
    return models.card(model_id)


def get_limits(request: Request) -> Limits:
    return request.app.state.limits


ServerLimits = Annotated[Limits, Depends(get_limits)]


async def _answer(response: Any, stream: bool, limits: Limits, http: Request) -> Any:
    """Run a (streaming or whole) answer under the request timeout, cancelled if the client hangs up first
    (a stream, once started, notices a departed client itself)."""
    deadline = deadline_for(limits)
    result = await within_deadline(unless_disconnected(response, http.receive), deadline, limits)
    if stream:
        return event_stream(stream_within_deadline(result, deadline, limits))
    return result


@router.post("/v1/completions", response_model=None)
async def completions(request: CompletionRequest, models: Models, limits: ServerLimits, http: Request
                      ) -> CompletionResponse | Any:
    engine = await models.get(request.model)
    explicit = "max_tokens" in request.model_fields_set
    request.max_tokens = capped_max_tokens(request.max_tokens, explicit, "max_tokens", limits, engine.context_length)
    if request.stream:
        return await _answer(serving.stream_completion(engine, request), True, limits, http)
    return await _answer(serving.complete(engine, request), False, limits, http)


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    request: ChatCompletionRequest, models: Models, limits: ServerLimits, knowledge: Knowledge, http: Request
) -> ChatCompletionResponse | Any:
    engine = await models.get(request.model)
    param = "max_completion_tokens" if request.max_completion_tokens is not None else "max_tokens"
    budget = capped_max_tokens(request.completion_budget, True, param, limits, engine.context_length)
    request.max_completion_tokens = budget
    grounded = grounding.grounding_for(request, knowledge)
    if grounded is not None:
        answer = grounding.stream_grounded_chat if request.stream else grounding.grounded_chat
        return await _answer(answer(engine, request, knowledge, grounded), request.stream, limits, http)
    guard = http.app.state.closed_book_guard
    if guard.applies(models.card(request.model), request):  # ungrounded: no echo, no debris (closed_book_guard.py)
        question = closed_book_guard.last_question(request)
        answer = guard.stream_chat if request.stream else guard.chat
        return await _answer(answer(engine, request, question), request.stream, limits, http)
    if request.stream:
        return await _answer(serving.stream_chat(engine, request), True, limits, http)
    return await _answer(serving.chat(engine, request), False, limits, http)


# ---- tokenizer endpoints: evaluation harnesses tokenize through the server, no download needed ----


@router.post("/tokenize")
async def tokenize(request: TokenizeRequest, models: Models, limits: ServerLimits) -> TokenizeResponse:
    engine = await models.get(models.named_or_only(request.model))
    work = current_pools().tokenizer.run(engine.tokenize, request.prompt, request.add_special_tokens)
    tokens = await within_deadline(work, deadline_for(limits), limits)
    return TokenizeResponse(tokens=tokens, count=len(tokens), max_model_len=engine.context_length)


@router.post("/detokenize")
async def detokenize(request: DetokenizeRequest, models: Models) -> DetokenizeResponse:
    engine = await models.get(models.named_or_only(request.model))
    require(engine, Vocabulary, "/detokenize")
    return DetokenizeResponse(prompt=await current_pools().tokenizer.run(engine.detokenize, request.tokens))


async def _tokenizer_info(model: str | None, models: ServedModels) -> TokenizerInfoResponse:
    model = models.named_or_only(model)
    engine = await models.get(model)
    require(engine, Vocabulary, "/tokenizer_info")
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
        has_chat_template=supports(engine, ChatTemplates) and engine.has_chat_template,
        chat_template=info.chat_template,
    )


@router.get("/tokenizer_info")
async def tokenizer_info(models: Models, model: Annotated[str | None, Query()] = None) -> TokenizerInfoResponse:
    return await _tokenizer_info(model, models)


@router.post("/tokenizer_info")
async def tokenizer_info_post(request: TokenizerInfoRequest, models: Models) -> TokenizerInfoResponse:
    return await _tokenizer_info(request.model, models)


@router.post("/v1/embeddings")
async def embeddings(request: EmbeddingRequest, models: Models, limits: ServerLimits, http: Request
                     ) -> EmbeddingResponse:
    engine = await models.get(request.model)
    require(engine, Embeddings, "/v1/embeddings")
    work = unless_disconnected(current_pools().embeddings.run(engine.embed, request.texts), http.receive)
    vectors, tokens = await within_deadline(work, deadline_for(limits), limits)
    data = [
        Embedding(index=index, embedding=_encode(vector, request.encoding_format))
        for index, vector in enumerate(vectors)
    ]
    return EmbeddingResponse(data=data, model=request.model, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    import base64

    import numpy as np

    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
