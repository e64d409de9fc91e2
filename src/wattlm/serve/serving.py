"""OpenAI semantics: turn protocol requests into engine calls and engine chunks into responses.

Routes stay thin (parse, pick the engine, return); this module knows what a completion or a chat turn
means but never which backend runs it. Streaming functions return an async iterator of response
chunks; they await the first engine chunk before returning, so request errors still become a 400.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from wattlm.engines.base import ChatTemplates, Engine, JsonOutput, Scoring, generation_budget, require, supports
from wattlm.engines.chat_template import plain_transcript
from wattlm.engines.params import ChatTurn, JsonConstraint, LogprobCompletion, SamplingParams
from wattlm.serve.fanout import choice_params, collect_all, merge, start_choices
from wattlm.serve.protocol.chat import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatLogprobs,
    ChatTokenLogprob,
    DeltaMessage,
    TopLogprob,
)
from wattlm.serve.protocol.common import Usage, new_id, now
from wattlm.serve.protocol.completions import (
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
)
from wattlm.serve.workers import current_pools


def sampling_params(request: CompletionRequest | ChatCompletionRequest, max_tokens: int | None) -> SamplingParams:
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        stop=request.stop_sequences,
        seed=request.sampling_seed,
        presence_penalty=request.presence_penalty,
        frequency_penalty=request.frequency_penalty,
        top_k=max(request.top_k, 0),
        repetition_penalty=request.repetition_penalty,
        ignore_eos=request.ignore_eos,
        response_json=_json_constraint(request),
    )


def _json_constraint(request: CompletionRequest | ChatCompletionRequest) -> JsonConstraint | None:
    response_format = getattr(request, "response_format", None)  # chat only
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return JsonConstraint()
    # Key order is kept: the grammar writes properties in the order the schema lists them.
    return JsonConstraint(schema=json.dumps(response_format.json_schema.json_schema))


def chat_prompt(engine: Engine, request: ChatCompletionRequest) -> str:
    # "developer" is OpenAI's newer name for "system"; chat templates only know "system".
    turns = [
        ChatTurn(role="system" if message.role == "developer" else message.role, content=message.text)
        for message in request.messages
    ]
    if supports(engine, ChatTemplates):
        return engine.render_chat(turns)
    return plain_transcript(turns)  # an engine that knows no templates (a toy, a remote text backend)


async def chat_params(engine: Engine, request: ChatCompletionRequest) -> SamplingParams:
    """The request's sampling settings; a `response_format` the engine cannot honour is a 400 now."""
    params = sampling_params(request, request.completion_budget)
    if params.response_json is not None:
        require(engine, JsonOutput, "response_format")
        # Building a grammar from a large schema takes a while: not on the event loop.
        await asyncio.to_thread(engine.check_json, params.response_json)
    return params


def _usage(prompt_tokens: int, completion_tokens: int) -> Usage:
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


# ---- /v1/completions ---------------------------------------------------------------------------


async def _scored_choice(
    engine: Engine, request: CompletionRequest, index: int, prompt: str | list[int], params: SamplingParams
) -> tuple[CompletionChoice, int, int]:
    """One choice through the engine's logprobs path (echo and/or logprobs), with its token counts."""
    # A bounded pool, not the loop's shared executor: a job whose request timed out or left is cancelled.
    result = await current_pools().scoring.run(
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
    if request.wants_logprobs:
        require(engine, Scoring, "echo/logprobs")
    choices: list[CompletionChoice] = []
    prompt_tokens = completion_tokens = 0
    # A list of prompts gives n choices per prompt, in order (OpenAI's batch form of the endpoint);
    # a prompt's tokens count once however many choices it has.
    for prompt_index, prompt in enumerate(request.prompts):
        first = prompt_index * request.n
        if request.wants_logprobs:
            for choice in range(request.n):
                scored, n_prompt, n_completion = await _scored_choice(
                    engine, request, first + choice, prompt, choice_params(params, choice))
                choices.append(scored)
                completion_tokens += n_completion
            prompt_tokens += n_prompt
            continue
        answers = await collect_all(await start_choices(engine, prompt, params, request.n))
        for choice, (text, last) in enumerate(answers):
            choices.append(CompletionChoice(index=first + choice, text=text, finish_reason=last.finish_reason))
            completion_tokens += last.completion_tokens
        prompt_tokens += answers[0][1].prompt_tokens
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
    if len(prompts) > 1:  # the later prompts start mid-stream: an empty or too long one is a 400 now, not an error event
        await current_pools().tokenizer.run(_check_prompts, engine, prompts[1:], params.max_tokens)
    first_generations = await start_choices(engine, prompts[0], params, request.n)
    response_id, created = new_id("cmpl"), now()

    def chunk(index: int, text: str, finish: str | None) -> CompletionResponse:
        choice = CompletionChoice(index=index, text=text, finish_reason=finish)
        return CompletionResponse(id=response_id, created=created, model=request.model, choices=[choice])

    async def events() -> AsyncIterator[CompletionResponse]:
        prompt_tokens = completion_tokens = 0
        for prompt_index, prompt in enumerate(prompts):
            generations = (first_generations if prompt_index == 0
                           else await start_choices(engine, prompt, params, request.n))
            counted_prompt = False
            async for choice, piece in merge(generations):
                index = prompt_index * request.n + choice
                if piece.text or piece.finish_reason:
                    yield chunk(index, piece.text, piece.finish_reason)
                if piece.finish_reason:
                    completion_tokens += piece.completion_tokens
                    if not counted_prompt:
                        prompt_tokens += piece.prompt_tokens
                        counted_prompt = True
        if request.include_usage:
            yield CompletionResponse(
                id=response_id,
                created=created,
                model=request.model,
                choices=[],
                usage=_usage(prompt_tokens, completion_tokens),
            )

    return events()


def _check_prompts(engine: Engine, prompts: list, max_tokens: int | None) -> None:
    for prompt in prompts:
        count = len(engine.tokenize(prompt)) if isinstance(prompt, str) else len(prompt)
        generation_budget(engine.name, count, engine.context_length, max_tokens)


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


def chat_logprobs(result: LogprobCompletion, top_n: int) -> ChatLogprobs:
    """The chat logprobs object from an engine's per-token logprobs (generated tokens only)."""
    entries = []
    token_bytes = result.token_bytes or [token.encode("utf-8") for token in result.tokens]
    for token, data, logprob, top in zip(result.tokens, token_bytes, result.token_logprobs, result.top_logprobs,
                                         strict=True):
        # The engine's top map holds the top_n best plus the chosen token: the chat shape wants the best top_n.
        best = sorted((top or {}).items(), key=lambda item: -item[1])[:top_n]
        alternatives = [TopLogprob(token=text, logprob=value, bytes=list(text.encode("utf-8"))) for text, value in best]
        entries.append(ChatTokenLogprob(token=token, logprob=logprob if logprob is not None else 0.0,
                                        bytes=list(data), top_logprobs=alternatives))
    return ChatLogprobs(content=entries)


async def _chat_with_logprobs(engine: Engine, request: ChatCompletionRequest, prompt: str) -> ChatCompletionResponse:
    """Chat choices through the engine's logprobs path, one after another (whole answers)."""
    require(engine, Scoring, "logprobs")
    params = await chat_params(engine, request)
    top_n = request.top_logprobs or 0
    choices, completion_tokens, prompt_tokens = [], 0, 0
    for index in range(request.n):
        result = await current_pools().scoring.run(engine.generate_with_logprobs, prompt, choice_params(params, index),
                                                   top_n, False)
        choices.append(ChatChoice(index=index, message=AssistantMessage(content=result.text),
                                  logprobs=chat_logprobs(result, top_n), finish_reason=result.finish_reason))
        completion_tokens += result.completion_tokens
        prompt_tokens = result.prompt_tokens
    return ChatCompletionResponse(id=new_id("chatcmpl"), created=now(), model=request.model, choices=choices,
                                  usage=_usage(prompt_tokens, completion_tokens))


async def chat(engine: Engine, request: ChatCompletionRequest) -> ChatCompletionResponse:
    prompt = chat_prompt(engine, request)
    if request.logprobs:
        return await _chat_with_logprobs(engine, request, prompt)
    generations = await start_choices(engine, prompt, await chat_params(engine, request), request.n)
    answers = await collect_all(generations)
    choices = [
        ChatChoice(index=index, message=AssistantMessage(content=text), finish_reason=last.finish_reason)
        for index, (text, last) in enumerate(answers)
    ]
    completion_tokens = sum(last.completion_tokens for _, last in answers)
    return ChatCompletionResponse(
        id=new_id("chatcmpl"),
        created=now(),
        model=request.model,
        choices=choices,
        usage=_usage(answers[0][1].prompt_tokens, completion_tokens),
    )


async def stream_chat(engine: Engine, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
    prompt = chat_prompt(engine, request)
    if request.logprobs:
        return await _stream_chat_scored(request, await _chat_with_logprobs(engine, request, prompt))
    generations = await start_choices(engine, prompt, await chat_params(engine, request), request.n)
    response_id, created = new_id("chatcmpl"), now()

    def chunk(index: int, delta: DeltaMessage, finish: str | None = None) -> ChatCompletionChunk:
        choice = ChatChunkChoice(index=index, delta=delta, finish_reason=finish)
        return ChatCompletionChunk(id=response_id, created=created, model=request.model, choices=[choice])

    async def events() -> AsyncIterator[ChatCompletionChunk]:
        # The role comes first and alone, as OpenAI sends it; clients build each message from it.
        for index in range(len(generations)):
            yield chunk(index, DeltaMessage(role="assistant", content=""))
        prompt_tokens = completion_tokens = 0
        async for index, piece in merge(generations):
            if piece.text:
                yield chunk(index, DeltaMessage(content=piece.text))
            if piece.finish_reason:
                yield chunk(index, DeltaMessage(), piece.finish_reason)
                prompt_tokens = piece.prompt_tokens
                completion_tokens += piece.completion_tokens
        if request.include_usage:
            yield ChatCompletionChunk(
                id=response_id,
                created=created,
                model=request.model,
                choices=[],
                usage=_usage(prompt_tokens, completion_tokens),
            )

    return events()


async def _stream_chat_scored(request: ChatCompletionRequest, response: ChatCompletionResponse
                              ) -> AsyncIterator[ChatCompletionChunk]:
    """Chat logprobs while streaming: each choice, computed whole, as role, content (+logprobs), finish."""

    def chunk(choice: ChatChunkChoice) -> ChatCompletionChunk:
        return ChatCompletionChunk(id=response.id, created=response.created, model=response.model, choices=[choice])

    async def events() -> AsyncIterator[ChatCompletionChunk]:
        for choice in response.choices:
            yield chunk(ChatChunkChoice(index=choice.index, delta=DeltaMessage(role="assistant", content="")))
            yield chunk(ChatChunkChoice(index=choice.index, delta=DeltaMessage(content=choice.message.content),
                                        logprobs=choice.logprobs))
            yield chunk(ChatChunkChoice(index=choice.index, delta=DeltaMessage(), finish_reason=choice.finish_reason))
        if request.include_usage:
            yield ChatCompletionChunk(id=response.id, created=response.created, model=response.model, choices=[],
                                      usage=response.usage)

    return events()
