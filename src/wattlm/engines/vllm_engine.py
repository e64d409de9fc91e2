"""`VllmEngine`: vLLM's `AsyncLLMEngine` behind the `Engine` interface (`--engine vllm`, GPU machines).

vLLM does the work: continuous batching, paged KV cache with prefix caching, LoRA adapters per request,
stop strings, logprobs, JSON held to a schema (structured outputs). We bridge its asyncio API to our
blocking `generate` iterator (`vllm_bridge.VllmBridge`) and map parameters and outputs (`vllm_outputs`):

- a request thread tokenizes and checks the prompt itself (so `PromptTooLong`, empty prompts and bad
  token ids are our one wording, raised on the first `next()`) and sends vLLM the token ids;
- vLLM's outputs are cumulative (text so far, token ids so far); each chunk carries the new text and the
  counts, the last one vLLM's finish reason ("stop"/"length"; an end-of-generation token is not counted,
  as in the other engines);
- closing the iterator early, or the client going away while the request waits (`cancel.on_cancel`),
  aborts it in vLLM (`engine.abort(request_id)`) and frees its place;
- `max_seqs` requests decode together (vLLM's `max_num_seqs`) and `max_waiting` more may wait in vLLM's
  queue; beyond that `generate` raises `EngineOverloaded` (HTTP 503) instead of queueing without bound.

LoRA: an engine built with `max_loras > 0` serves PEFT adapter folders through `adapter(name, folder)`:
another `VllmEngine` over the same vLLM engine whose requests carry a `LoRARequest`.

vLLM needs a GPU; without the `vllm` package or a CUDA device the engine refuses in one line before
anything is loaded. The tests drive this bridge with a scripted fake `vllm` module: they prove the
bridge, not vLLM; `bench/gpu_check.sh` runs the real one on a GPU machine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from wattlm.engines.base import (
    NoChatTemplate,
    check_token_ids,
    generation_budget,
    no_chat_template_message,
)
from wattlm.engines.metrics import EngineMetrics
from wattlm.engines.params import (
    ChatTurn,
    GenerationChunk,
    JsonConstraint,
    LogprobCompletion,
    Prompt,
    SamplingParams,
    TokenizerInfo,
)
from wattlm.engines.vllm_bridge import VllmBridge
from wattlm.engines.vllm_outputs import completion_with_logprobs, finish_of, sampling_kwargs
from wattlm.errors import NotFound, WattError

if TYPE_CHECKING:
    from wattlm.engines.table import EngineSettings


def require_vllm():
    """The `vllm` module, or the one-line refusal: no package, or no CUDA GPU to run it on."""
    need = "--engine vllm needs the vllm package and a CUDA GPU"
    try:
        import vllm
    except ImportError as error:
        raise WattError(f"{need}: {error} (pip install vllm on a GPU machine; see docs/scale-out.md)") from None
    if cuda_devices() == 0:
        raise WattError(f"{need}: torch sees no CUDA device here (serve the GGUF export with --engine batch)")
    return vllm


def cuda_devices() -> int:
    """GPUs torch can see (0 on a CPU build)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def trained_context(model_dir: Path) -> int | None:
    """The context length the model was trained for (config.json), which vLLM's max_model_len may not pass."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    text_config = config.get("text_config") or {}
    value = config.get("max_position_embeddings") or text_config.get("max_position_embeddings")
    return int(value) if value else None


class VllmEngine:
    """A Hugging Face model folder served by vLLM on a GPU.

    `max_loras > 0` enables LoRA (that many adapters resident at once, rank up to `max_lora_rank`);
    `adapter()` then gives one engine per adapter over the same weights.
    """

    def __init__(self, model_dir: Path, name: str | None = None, n_ctx: int = 2048, max_seqs: int = 8,
                 max_waiting: int = 32, max_loras: int = 0, max_lora_rank: int = 64,
                 gpu_memory_utilization: float = 0.9, *, _bridge: VllmBridge | None = None, _lora=None) -> None:
        model_dir = Path(model_dir)
        self._name = name or model_dir.name
        self._lora = _lora
        if _bridge is None:
            vllm = require_vllm()  # before anything is loaded
            if not (model_dir / "config.json").is_file():
                raise NotFound(f"no Hugging Face model in {model_dir} (config.json missing)")
            trained = trained_context(model_dir)
            _bridge = VllmBridge(vllm, model_dir, min(n_ctx, trained) if trained else n_ctx, max_seqs, max_waiting,
                                 max_loras, max_lora_rank, gpu_memory_utilization)
        self._bridge = _bridge
        self._closed = False
        self.metrics = EngineMetrics()

    @classmethod
    def from_settings(cls, source: Path, name: str, settings: EngineSettings) -> VllmEngine:
        return cls(source, name=name, n_ctx=settings.n_ctx, max_seqs=settings.max_seqs,
                   max_waiting=settings.max_waiting)

    def adapter(self, name: str, adapter_dir: Path) -> VllmEngine:
        """An engine named `name` whose requests run with the PEFT adapter in `adapter_dir` (`LoRARequest`)."""
        adapter_dir = Path(adapter_dir)
        if self._bridge.max_loras == 0:
            raise WattError(f"model '{self._name}' was loaded without LoRA support; build it with max_loras >= 1")
        if not (adapter_dir / "adapter_config.json").is_file():
            raise NotFound(f"no PEFT adapter in {adapter_dir} (adapter_config.json missing)")
        from vllm.lora.request import LoRARequest

        request = LoRARequest(name, self._bridge.next_lora_id(), str(adapter_dir.resolve()))
        with self._bridge.lock:
            self._bridge.users += 1
        return VllmEngine(adapter_dir, name=name, _bridge=self._bridge, _lora=request)

    # ---- the Engine interface ------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_length(self) -> int:
        return self._bridge.n_ctx

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return list(self._bridge.tokenizer.encode(text, add_special_tokens=add_special))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._bridge.lock:
            self._bridge.users -= 1
            last = self._bridge.users == 0
        if last:
            self._bridge.shutdown()

    def generate(self, prompt: Prompt, params: SamplingParams) -> Iterator[GenerationChunk]:
        tokens = self._prompt(prompt)
        budget = generation_budget(self._name, len(tokens), self.context_length, params.max_tokens)
        sampling = self._bridge.vllm.SamplingParams(**sampling_kwargs(self._bridge.vllm, params, budget))
        arrived = time.monotonic()
        if self._closed:
            raise WattError("the engine is shutting down")
        with closing(self._bridge.outputs(tokens, sampling, self._lora, self.metrics)) as outputs:
            yield from self._chunks(outputs, len(tokens), arrived)

    def _chunks(self, outputs: Iterator, prompt_tokens: int, arrived: float) -> Iterator[GenerationChunk]:
        sent, produced, last_at = "", 0, arrived
        for output in outputs:
            completion = output.outputs[0]
            new_tokens = len(completion.token_ids) - produced
            if new_tokens > 0:
                now = time.monotonic()
                for index in range(new_tokens):  # an output may carry several tokens: spread the wait
                    self.metrics.token((now - last_at) / new_tokens, first=produced == 0 and index == 0)
                last_at, produced = now, len(completion.token_ids)
            # Cumulative text: send what is new. vLLM holds back text that may still become a stop string.
            text = completion.text
            delta = text[len(sent):] if text.startswith(sent) else ""
            sent = text if text.startswith(sent) else sent
            if output.finished:
                finish, counted = finish_of(completion)
                self._bridge.count(prompt_tokens, getattr(output, "num_cached_tokens", None) or 0, counted)
                yield GenerationChunk(delta, finish, prompt_tokens, counted)
                return
            if delta:
                yield GenerationChunk(delta, None, prompt_tokens, produced)

    def _prompt(self, prompt: Prompt) -> list[int]:
        tokens = self.tokenize(prompt) if isinstance(prompt, str) else check_token_ids(prompt, self._vocab_size)
        if not tokens:
            raise WattError("the prompt is empty; send at least one token")
        return tokens

    @property
    def _vocab_size(self) -> int:
        return len(self._bridge.tokenizer)

    # ---- ChatTemplates, Vocabulary -------------------------------------------------------------

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self._bridge.tokenizer, "chat_template", None))

    def render_chat(self, messages: Sequence[ChatTurn]) -> str:
        if not self.has_chat_template:
            raise NoChatTemplate(no_chat_template_message(self._name))
        turns = [{"role": turn.role, "content": turn.content} for turn in messages]
        try:
            return self._bridge.tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        except Exception as error:  # noqa: BLE001 -- jinja's raise_exception and TemplateError alike
            raise WattError(f"chat template of '{self._name}' rejected the messages: {error}") from error

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._bridge.tokenizer.decode(check_token_ids(tokens, self._vocab_size))

    def tokenizer_info(self) -> TokenizerInfo:
        tokenizer = self._bridge.tokenizer
        return TokenizerInfo(
            vocab_size=self._vocab_size, bos_token=tokenizer.bos_token, bos_token_id=tokenizer.bos_token_id,
            eos_token=tokenizer.eos_token, eos_token_id=tokenizer.eos_token_id,
            add_bos_token=bool(self.tokenize("")), chat_template=getattr(tokenizer, "chat_template", None) or None,
        )

    # ---- JsonOutput: vLLM's structured outputs -------------------------------------------------

    def check_json(self, constraint: JsonConstraint) -> None:
        if constraint.schema is not None:
            try:
                json.loads(constraint.schema)
            except ValueError as error:
                raise WattError(f"response_format json_schema is not valid JSON: {error}") from None

    # ---- Scoring: logprobs and echo through vLLM's (prompt_)logprobs ---------------------------

    def generate_with_logprobs(self, prompt: Prompt, params: SamplingParams, top_logprobs: int,
                               echo: bool) -> LogprobCompletion:
        tokens = self._prompt(prompt)
        # vLLM generates at least one token; a max_tokens=0 scoring request (lm-eval's echo) drops it.
        asked = None if params.max_tokens is None else max(1, params.max_tokens)
        budget = generation_budget(self._name, len(tokens), self.context_length, asked)
        wanted = 0 if params.max_tokens == 0 else budget
        kwargs = sampling_kwargs(self._bridge.vllm, params, budget)
        kwargs.update(logprobs=top_logprobs, **({"prompt_logprobs": top_logprobs} if echo else {}))
        if self._closed:
            raise WattError("the engine is shutting down")
        with closing(self._bridge.outputs(tokens, self._bridge.vllm.SamplingParams(**kwargs), self._lora)) as outputs:
            final = None
            for final in outputs:  # noqa: B007 -- the last output holds the whole answer
                pass
        prompt_text = prompt if isinstance(prompt, str) else self._bridge.tokenizer.decode(tokens)
        return completion_with_logprobs(final, tokens, prompt_text, echo, wanted, self._bridge.tokenizer.decode)

    # ---- Metered -------------------------------------------------------------------------------

    @property
    def running(self) -> int:
        """Requests admitted, up to vLLM's batch size (vLLM schedules them; this is our side's view)."""
        return min(self._bridge.in_flight, self._bridge.max_seqs)

    @property
    def waiting(self) -> int:
        return max(0, self._bridge.in_flight - self._bridge.max_seqs)

    @property
    def counters(self) -> dict[str, int]:
        """prompt_tokens, reused_prompt_tokens (vLLM's prefix-cache hits), generated_tokens; vLLM's steps
        are not visible here, so there is no `steps`."""
        with self._bridge.lock:
            return dict(self._bridge.counters)
