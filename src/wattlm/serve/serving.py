"""OpenAI semantics: turn protocol requests into engine calls and engine chunks into responses.

Routes stay thin (parse, pick the engine, return); this module knows what a completion or a chat turn
means but never which backend runs it. Streaming functions return an async iterator of response
chunks; they await the first engine chunk before returning, so request errors still become a 400.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from wattlm.serve.bridge import start_generation
from wattlm.serve.engine import ChatTurn, Engine, GenerationChunk, SamplingParams
from wattlm.serve.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
    DeltaMessage,
    Usage,
    new_id,
    now,
)


def sampling_params(request: CompletionRequest | ChatCompletionRequest, max_tokens: int | None) -> SamplingParams:
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        stop=request.stop_sequences,
        seed=request.seed,
        presence_penalty=request.presence_penalty,
        frequency_penalty=request.frequency_penalty,
        top_k=max(request.top_k, 0),
        repetition_penalty=request.repetition_penalty,
        ignore_eos=request.ignore_eos,
    )


def chat_prompt(engine: Engine, request: ChatCompletionRequest) -> str:
    # "developer" is OpenAI's newer name for "system"; chat templates only know "system".
    turns = [
        ChatTurn(role="system" if message.role == "developer" else message.role, content=message.text)
        for message in request.messages
    ]
    return engine.render_chat(turns)


def _usage(prompt_tokens: int, completion_tokens: int) -> Usage:
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


async def _collect(chunks: AsyncIterator[GenerationChunk]) -> tuple[str, GenerationChunk]:
    """All text of a generation and its last chunk (finish reason and final counts)."""
    pieces: list[str] = []
    last: GenerationChunk | None = None
    async for chunk in chunks:
        pieces.append(chunk.text)
        last = chunk
    assert last is not None  # start_generation guarantees at least one chunk
    return "".join(pieces), last


# ---- /v1/completions ---------------------------------------------------------------------------


async def _scored_choice(
    engine: Engine, request: CompletionRequest, index: int, prompt: str | list[int], params: SamplingParams
) -> tuple[CompletionChoice, int, int]:
    """One choice through the engine's logprobs path (echo and/or logprobs), with its token counts."""
    result = await asyncio.to_thread(
        engine.generate_with_logprobs, prompt, params, request.logprobs or 0, request.echo
    )
    logprobs = None
    if request.logprobs is not None:
        logprobs = CompletionLogprobs(
            tokens=result.tokens,
            token_logprobs=result.token_logprobs,
            top_logprobs=result.top_logprobs,
            text_offset=result.text_offset,
        )
    choice = CompletionChoice(index=index, text=result.text, logprobs=logprobs, finish_reason=result.finish_reason)
    return choice, result.prompt_tokens, result.completion_tokens


async def complete(engine: Engine, request: CompletionRequest) -> CompletionResponse:
    params = sampling_params(request, request.max_tokens)
    choices: list[CompletionChoice] = []
    prompt_tokens = completion_tokens = 0
    # A list of prompts gives one choice per prompt, in order (OpenAI's batch form of the endpoint).
    for index, prompt in enumerate(request.prompts):
        if request.wants_logprobs:
            choice, n_prompt, n_completion = await _scored_choice(engine, request, index, prompt, params)
            choices.append(choice)
            prompt_tokens += n_prompt
            completion_tokens += n_completion
            continue
        text, last = await _collect(await start_generation(engine, prompt, params))
        choices.append(CompletionChoice(index=index, text=text, finish_reason=last.finish_reason))
        prompt_tokens += last.prompt_tokens
        completion_tokens += last.completion_tokens
    return CompletionResponse(
        id=new_id("cmpl"),
        created=now(),
        model=request.model,
        choices=choices,
        usage=_usage(prompt_tokens, completion_tokens),
    )


async def stream_completion(engine: Engine, request: CompletionRequest) -> AsyncIterator[CompletionResponse]:
    if request.wants_logprobs:
        return await _stream_scored(engine, request)
    params = sampling_params(request, request.max_tokens)
    prompts = request.prompts
    first_generation = await start_generation(engine, prompts[0], params)
    response_id, created = new_id("cmpl"), now()

    def chunk(index: int, text: str, finish: str | None) -> CompletionResponse:
        choice = CompletionChoice(index=index, text=text, finish_reason=finish)
        return CompletionResponse(id=response_id, created=created, model=request.model, choices=[choice])

    async def events() -> AsyncIterator[CompletionResponse]:
        prompt_tokens = completion_tokens = 0
        for index, prompt in enumerate(prompts):
            generation = first_generation if index == 0 else await start_generation(engine, prompt, params)
            async for piece in generation:
                if piece.text or piece.finish_reason:
                    yield chunk(index, piece.text, piece.finish_reason)
                if piece.finish_reason:
                    prompt_tokens += piece.prompt_tokens
                    completion_tokens += piece.completion_tokens
        if request.include_usage:
            yield CompletionResponse(
                id=response_id,
                created=created,
                model=request.model,
                choices=[],
                usage=_usage(prompt_tokens, completion_tokens),
            )

    return events()


async def _stream_scored(engine: Engine, request: CompletionRequest) -> AsyncIterator[CompletionResponse]:
    """echo/logprobs while streaming: each choice is computed whole and sent as one chunk."""
    response = await complete(engine, request)  # errors become a 400 before the stream starts

    async def events() -> AsyncIterator[CompletionResponse]:
        for choice in response.choices:
            yield response.model_copy(update={"choices": [choice], "usage": None})
        if request.include_usage:
            yield response.model_copy(update={"choices": []})

    return events()


# ---- /v1/chat/completions ----------------------------------------------------------------------


async def chat(engine: Engine, request: ChatCompletionRequest) -> ChatCompletionResponse:
    prompt = chat_prompt(engine, request)
    generation = await start_generation(engine, prompt, sampling_params(request, request.completion_budget))
    text, last = await _collect(generation)
    return ChatCompletionResponse(
        id=new_id("chatcmpl"),
        created=now(),
        model=request.model,
        choices=[ChatChoice(message=AssistantMessage(content=text), finish_reason=last.finish_reason)],
        usage=_usage(last.prompt_tokens, last.completion_tokens),
    )


async def stream_chat(engine: Engine, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
    prompt = chat_prompt(engine, request)
    generation = await start_generation(engine, prompt, sampling_params(request, request.completion_budget))
    response_id, created = new_id("chatcmpl"), now()

    def chunk(delta: DeltaMessage, finish: str | None = None) -> ChatCompletionChunk:
        choice = ChatChunkChoice(delta=delta, finish_reason=finish)
        return ChatCompletionChunk(id=response_id, created=created, model=request.model, choices=[choice])

    async def events() -> AsyncIterator[ChatCompletionChunk]:
        # The role comes first and alone, as OpenAI sends it; clients build the message from it.
        yield chunk(DeltaMessage(role="assistant", content=""))
        last = GenerationChunk("", None, 0, 0)
        async for piece in generation:
            if piece.text:
                yield chunk(DeltaMessage(content=piece.text))
            if piece.finish_reason:
                yield chunk(DeltaMessage(), piece.finish_reason)
            last = piece
        if request.include_usage:
            yield ChatCompletionChunk(
                id=response_id,
                created=created,
                model=request.model,
                choices=[],
                usage=_usage(last.prompt_tokens, last.completion_tokens),
            )

    return events()
