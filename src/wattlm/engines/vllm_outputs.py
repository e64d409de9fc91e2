"""Our sampling settings in vLLM's terms, and vLLM's outputs in ours (finish reasons, counts, logprobs).

Plain functions over vLLM's documented `SamplingParams` fields and `RequestOutput`/`CompletionOutput`/
`Logprob` attributes, so the mapping is tested without vLLM (a fake module) and read in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import import_module

from wattlm.engines.params import FinishReason, LogprobCompletion, LogprobEntry, SamplingParams
from wattlm.errors import WattError


def sampling_kwargs(vllm, params: SamplingParams, max_tokens: int) -> dict:
    """Keyword arguments of `vllm.SamplingParams` for `params`, generating at most `max_tokens`."""
    kwargs = dict(
        n=1,
        max_tokens=max_tokens,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k if params.top_k > 0 else -1,  # -1: off, in every vLLM release (0 only in newer ones)
        seed=params.seed,
        stop=list(params.stop),  # vLLM cuts the text before a stop string and finishes with "stop"
        presence_penalty=params.presence_penalty,
        frequency_penalty=params.frequency_penalty,
        repetition_penalty=params.repetition_penalty,
        ignore_eos=params.ignore_eos,
        skip_special_tokens=True,  # as the other engines: end-of-turn markers are not answer text
    )
    if params.response_json is not None:
        structured = import_module(vllm.__name__ + ".sampling_params").StructuredOutputsParams
        schema = params.response_json.schema
        kwargs["structured_outputs"] = structured(json=schema) if schema is not None else structured(json_object=True)
    return kwargs


def finish_of(completion) -> tuple[FinishReason, int]:
    """(finish reason, tokens produced) of a finished `CompletionOutput`.

    vLLM counts the end-of-generation token that stopped an answer; our engines do not (it is not
    answer text), so it is taken off here. A stop *string* (`stop_reason` is the string) counts every
    token. "abort" or anything else is an error: we abort only requests nobody reads any more."""
    produced = len(completion.token_ids)
    if completion.finish_reason == "length":
        return "length", produced
    if completion.finish_reason == "stop":
        ended_on_token = not isinstance(completion.stop_reason, str) and produced > 0
        return "stop", produced - 1 if ended_on_token else produced
    raise WattError(f"vLLM ended the request with finish reason {completion.finish_reason!r}")


def completion_with_logprobs(output, prompt_tokens: Sequence[int], prompt_text: str, echo: bool, wanted: int,
                             decode: Callable[[Sequence[int]], str]) -> LogprobCompletion:
    """A `LogprobCompletion` from the finished `RequestOutput` of a request sent with `logprobs` (and,
    for `echo`, `prompt_logprobs`). `wanted`: generated tokens the client asked for (0: scoring only;
    vLLM still made one, which is dropped)."""
    completion = output.outputs[0]
    entries: list[LogprobEntry] = []
    if echo:
        entries.append((prompt_tokens[0], None, None))  # nothing precedes the first token
        for token, ranked in zip(prompt_tokens[1:], (output.prompt_logprobs or [None])[1:], strict=True):
            entries.append((token, ranked[token].logprob, _top(ranked, decode)))
    finish: FinishReason = "length"
    produced = 0
    text = ""
    if wanted > 0:
        finish, produced = finish_of(completion)
        # The end-of-generation token that stopped the answer gets an entry only when echoing: lm-eval
        # drops the last entry as "the generated token", which must not be the prompt's last one.
        kept = len(completion.token_ids) if echo else produced
        for token, ranked in zip(list(completion.token_ids)[:kept], completion.logprobs or [], strict=False):
            entries.append((token, ranked[token].logprob, _top(ranked, decode)))
        text = completion.text
    return LogprobCompletion.from_entries(entries, lambda token: decode([token]).encode("utf-8"), prompt_text, text,
                                          echo, finish, len(prompt_tokens), produced)


def _top(ranked: dict, decode: Callable[[Sequence[int]], str]) -> dict[str, float]:
    """vLLM's {token id: Logprob} at one position (the top n plus the token there) as {text: logprob}."""
    return {decode([token]): entry.logprob for token, entry in sorted(ranked.items(), key=lambda kv: -kv[1].logprob)}
