"""A scripted stand-in for the `vllm` package: enough of its documented API to drive `VllmEngine`'s bridge.

`AsyncLLMEngine.generate` is an async generator of cumulative `RequestOutput`s over a scripted word list
(one word = one token), with vLLM's stop-string, max_tokens, end-of-generation and logprob behaviour as
documented; it records every request (prompt, SamplingParams, LoRARequest), abort and shutdown. The
constructors accept only the field names real vLLM has, so a misspelt argument fails here too.

What this proves is the bridge (threads, asyncio, mapping, counts, abort); that vLLM itself behaves so
on a GPU is checked by bench/gpu_check.sh.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import types
from dataclasses import dataclass

VOCAB = ["<s>", "</s>", "the", "grid", "is", "stable", "load", "rises", "at", "noon", "hello", "<unk>", "FAIL"]
BOS, EOS, UNK = 0, 1, 11

# Field names of vLLM's SamplingParams and AsyncEngineArgs that the engine may use (vLLM 0.11+).
SAMPLING_FIELDS = {
    "n", "presence_penalty", "frequency_penalty", "repetition_penalty", "temperature", "top_p", "top_k", "min_p",
    "seed", "stop", "stop_token_ids", "ignore_eos", "max_tokens", "min_tokens", "logprobs", "prompt_logprobs",
    "detokenize", "skip_special_tokens", "spaces_between_special_tokens", "include_stop_str_in_output",
    "output_kind", "structured_outputs", "logit_bias", "allowed_token_ids", "bad_words",
}
ENGINE_ARG_FIELDS = {
    "model", "tokenizer", "max_model_len", "max_num_seqs", "enable_prefix_caching", "enable_lora", "max_loras",
    "max_lora_rank", "gpu_memory_utilization", "tensor_parallel_size", "dtype", "seed",
}


class Tokenizer:
    """Word-level: a token per known word (others are <unk>), BOS first; decode joins words with spaces."""

    bos_token, bos_token_id, eos_token, eos_token_id = "<s>", BOS, "</s>", EOS
    chat_template = "{% for m in messages %}{{ m.role }}: {{ m.content }} {% endfor %}assistant:"

    def __len__(self) -> int:
        return len(VOCAB)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [VOCAB.index(word) if word in VOCAB else UNK for word in text.split()]
        return [BOS, *ids] if add_special_tokens else ids

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        words = [VOCAB[i] for i in ids if not (skip_special_tokens and i in (BOS, EOS))]
        return " ".join(words)

    def apply_chat_template(self, turns, tokenize=False, add_generation_prompt=True) -> str:
        if any(turn["role"] == "tool" for turn in turns):
            raise ValueError("tool turns are not supported")
        return " ".join(f"{turn['role']}: {turn['content']}" for turn in turns) + " assistant:"


class SamplingParams:
    def __init__(self, **kwargs) -> None:
        unknown = set(kwargs) - SAMPLING_FIELDS
        assert not unknown, f"vLLM's SamplingParams has no {sorted(unknown)}"
        self.kwargs = kwargs
        self.max_tokens = kwargs.get("max_tokens", 16)
        self.stop = kwargs.get("stop") or []
        self.ignore_eos = kwargs.get("ignore_eos", False)
        self.logprobs = kwargs.get("logprobs")
        self.prompt_logprobs = kwargs.get("prompt_logprobs")


class AsyncEngineArgs:
    def __init__(self, **kwargs) -> None:
        unknown = set(kwargs) - ENGINE_ARG_FIELDS
        assert not unknown, f"vLLM's AsyncEngineArgs has no {sorted(unknown)}"
        self.kwargs = kwargs


@dataclass
class LoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str


@dataclass
class StructuredOutputsParams:
    json: str | dict | None = None
    json_object: bool | None = None


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    logprobs: list[dict[int, Logprob]] | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool
    prompt_logprobs: list[dict[int, Logprob] | None] | None = None
    num_cached_tokens: int = 0


def ranked(token: int, position: int) -> dict[int, Logprob]:
    """A made-up distribution: the token at -0.1 * (position + 1), "hello" always at -3."""
    return {token: Logprob(-0.1 * (position + 1)), VOCAB.index("hello"): Logprob(-3.0)}


@dataclass
class Request:
    prompt: dict
    sampling: SamplingParams
    request_id: str
    lora: LoRARequest | None


class AsyncLLMEngine:
    """Writes `script` (words) for every request. `hold`: after the first token, wait until it is set.
    The word FAIL in the script raises inside generate; `finish_with` overrides the final finish reason."""

    last: AsyncLLMEngine | None = None
    script = "the grid is stable </s>"

    def __init__(self, args: AsyncEngineArgs) -> None:
        self.args = args.kwargs
        self.requests: list[Request] = []
        self.aborted: list[str] = []
        self.shutdowns = 0
        self.hold = threading.Event()
        self.hold.set()
        self.finish_with: str | None = None
        self.cached_tokens = 0
        self.started_on_loop = False

    @classmethod
    def from_engine_args(cls, args: AsyncEngineArgs) -> AsyncLLMEngine:
        engine = cls(args)
        try:
            asyncio.get_running_loop()
            engine.started_on_loop = True
        except RuntimeError:
            pass
        AsyncLLMEngine.last = engine
        return engine

    def get_tokenizer(self) -> Tokenizer:
        return Tokenizer()

    async def generate(self, prompt, sampling_params, request_id, lora_request=None):
        self.requests.append(Request(prompt, sampling_params, request_id, lora_request))
        tokens = [VOCAB.index(word) for word in self.script.split()]
        prompt_ids = prompt["prompt_token_ids"]
        prompt_logprobs = None
        if sampling_params.prompt_logprobs is not None:
            prompt_logprobs = [None] + [ranked(token, i) for i, token in enumerate(prompt_ids[1:])]
        produced: list[int] = []
        for position, token in enumerate(tokens):
            if VOCAB[token] == "FAIL":
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            if position > 0:
                while not self.hold.is_set():
                    await asyncio.sleep(0.005)
            produced.append(token)
            text = Tokenizer().decode(produced, skip_special_tokens=True)
            finish, stop_reason = None, None
            if token == EOS and not sampling_params.ignore_eos:
                finish = "stop"
            for stop in sampling_params.stop:
                if stop in text:
                    text, finish, stop_reason = text[: text.index(stop)].rstrip(" "), "stop", stop
                    break
            if finish is None and len(produced) >= sampling_params.max_tokens:
                finish = "length"
            last = finish is not None or position == len(tokens) - 1
            if last and finish is None:
                finish = "length"
            if last and self.finish_with is not None:
                finish = self.finish_with
            logprobs = None
            if sampling_params.logprobs is not None:
                logprobs = [ranked(t, i) for i, t in enumerate(produced)]
            completion = CompletionOutput(0, text, list(produced), finish, stop_reason, logprobs)
            yield RequestOutput(request_id, prompt_ids, [completion], last, prompt_logprobs,
                                self.cached_tokens)
            if last:
                return
            await asyncio.sleep(0)

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)

    def shutdown(self) -> None:
        self.shutdowns += 1


def install(monkeypatch) -> types.ModuleType:
    """Put the fake `vllm` (and the submodules the engine imports) in sys.modules for one test."""
    vllm = types.ModuleType("vllm")
    vllm.AsyncLLMEngine, vllm.AsyncEngineArgs, vllm.SamplingParams = AsyncLLMEngine, AsyncEngineArgs, SamplingParams
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.StructuredOutputsParams, sampling.SamplingParams = StructuredOutputsParams, SamplingParams
    lora = types.ModuleType("vllm.lora")
    lora_request = types.ModuleType("vllm.lora.request")
    lora_request.LoRARequest = LoRARequest
    vllm.sampling_params, vllm.lora, lora.request = sampling, lora, lora_request
    for name, module in {"vllm": vllm, "vllm.sampling_params": sampling, "vllm.lora": lora,
                         "vllm.lora.request": lora_request}.items():
        monkeypatch.setitem(sys.modules, name, module)
    AsyncLLMEngine.last = None
    return vllm



