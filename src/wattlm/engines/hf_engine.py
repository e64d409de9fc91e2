"""`TransformersEngine`: any Hugging Face causal LM behind the `Engine` interface (`--engine transformers`).

For models not exported to GGUF yet (a fresh training run, an architecture llama.cpp lacks). A worker
thread owns the model and decodes requests in *static batches*: it takes up to `max_batch` waiting
requests, left-pads their prompts, and runs one forward pass per step for the whole batch with a KV
cache, sampling each row with the batch engine's numpy `TokenSampler` (same temperature/top-p/top-k/
seed/penalty semantics as the llama.cpp engines). Requests arriving mid-batch wait for the next batch;
a finished or abandoned row stops being reported but stays in the tensor until the batch ends (HF's
cache cannot drop one row cheaply). Text is produced from token ids by the same `stream_text` as
the llama.cpp engines use (stop strings, exact counts), decoding the whole answer at each token.

Left padding with an attention mask and explicit position ids gives each row the same positions as it
would have alone, so batched greedy answers equal unbatched ones (up to float rounding).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wattlm.engines.base import (
    EngineOverloaded,
    NoChatTemplate,
    check_token_ids,
    generation_budget,
    no_chat_template_message,
)
from wattlm.engines.batching.sampler import TokenSampler
from wattlm.engines.metrics import EngineMetrics, timed_tokens
from wattlm.engines.params import (
    ChatTurn,
    GenerationChunk,
    LogprobCompletion,
    LogprobEntry,
    Prompt,
    SamplingParams,
    TokenizerInfo,
)
from wattlm.engines.textstream import WholeTextDecoder, stream_text
from wattlm.errors import NotFound, WattError
from wattlm.shared.lm import log_softmax

if TYPE_CHECKING:
    from wattlm.engines.table import EngineSettings

_FINISHED = object()


@dataclass(eq=False)
class _Request:
    prompt_tokens: list[int]
    params: SamplingParams
    max_tokens: int
    sampler: TokenSampler
    events: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    arrived: float = field(default_factory=time.monotonic)


class TransformersEngine:
    """An HF model folder served with batched decoding on CPU."""

    def __init__(self, model_dir: Path, name: str | None = None, n_ctx: int | None = 2048, max_batch: int = 8,
                 max_waiting: int = 32, n_threads: int | None = None) -> None:
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise NotFound(f"no Hugging Face model in {model_dir} (config.json missing)")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if n_threads is not None:
            torch.set_num_threads(n_threads)
        self._torch = torch
        self._name = name or model_dir.name
        self._tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self._model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        trained = getattr(self._model.config, "max_position_embeddings", None) or 2048
        self._n_ctx = min(n_ctx, trained) if n_ctx else trained
        self._vocab_size = len(self._tokenizer)
        eos = self._model.generation_config.eos_token_id if self._model.generation_config else None
        eos_ids = eos if isinstance(eos, list) else [eos]
        self._eog = frozenset(int(token) for token in [*eos_ids, self._tokenizer.eos_token_id] if token is not None)
        self._pad = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else min(self._eog, default=0)
        self._max_batch, self._max_waiting = max_batch, max_waiting
        self._waiting: list[_Request] = []
        self._running = 0
        self._wake = threading.Condition()
        self._stopping = False
        self._lock = threading.Lock()  # the scoring path and the batch loop never run a forward at once
        self.metrics = EngineMetrics()
        self.counters = {"steps": 0, "prompt_tokens": 0, "reused_prompt_tokens": 0, "generated_tokens": 0}
        self._thread = threading.Thread(target=self._run, name="wattlm-transformers", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, source: Path, name: str, settings: EngineSettings) -> TransformersEngine:
        return cls(source, name=name, n_ctx=settings.n_ctx, max_batch=settings.max_seqs,
                   max_waiting=settings.max_waiting, n_threads=settings.n_threads)

    # ---- the Engine interface ------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_length(self) -> int:
        return self._n_ctx

    @property
    def has_chat_template(self) -> bool:
        return bool(self._tokenizer.chat_template)

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def render_chat(self, messages: Sequence[ChatTurn]) -> str:
        if not self.has_chat_template:
            raise NoChatTemplate(no_chat_template_message(self._name))
        turns = [{"role": turn.role, "content": turn.content} for turn in messages]
        try:
            return self._tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        except Exception as error:  # noqa: BLE001 -- jinja's raise_exception and TemplateError alike
            raise WattError(f"chat template of '{self._name}' rejected the messages: {error}") from error

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=add_special)["input_ids"])

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._tokenizer.decode(check_token_ids(tokens, self._vocab_size))

    def tokenizer_info(self) -> TokenizerInfo:
        tokenizer = self._tokenizer
        return TokenizerInfo(
            vocab_size=self._vocab_size, bos_token=tokenizer.bos_token, bos_token_id=tokenizer.bos_token_id,
            eos_token=tokenizer.eos_token, eos_token_id=tokenizer.eos_token_id,
            add_bos_token=bool(self.tokenize("")), chat_template=tokenizer.chat_template or None,
        )

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        torch = self._torch
        vectors, used = [], 0
        for text in texts:
            if not text:
                raise WattError("cannot embed an empty string")
            ids = self.tokenize(text)[: self._n_ctx]
            with self._lock, torch.no_grad():
                hidden = self._model(torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0]  # (T, d)
            vector = hidden.mean(dim=0)
            vectors.append((vector / vector.norm().clamp_min(1e-12)).tolist())
            used += len(ids)
        return vectors, used

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=60)

    def _prompt(self, prompt: Prompt) -> list[int]:
        tokens = self.tokenize(prompt) if isinstance(prompt, str) else check_token_ids(prompt, self._vocab_size)
        if not tokens:
            raise WattError("the prompt is empty; send at least one token")
        return tokens

    def _check(self, params: SamplingParams) -> None:
        if params.response_json is not None:
            raise WattError("response_format needs a llama.cpp engine (its grammar sampler); "
                            "serve this model's GGUF export to constrain output to JSON")

    def generate(self, prompt: Prompt, params: SamplingParams) -> Iterator[GenerationChunk]:
        self._check(params)
        tokens = self._prompt(prompt)
        request = _Request(tokens, params, generation_budget(self._name, len(tokens), self._n_ctx, params.max_tokens),
                           TokenSampler(params, tokens))
        with self._wake:
            if self._stopping:
                raise WattError("the engine is shutting down")
            if self._running + len(self._waiting) >= self._max_batch + self._max_waiting:
                raise EngineOverloaded(f"server busy: {self._running} requests running and {len(self._waiting)} "
                                       "waiting; retry later")
            self._waiting.append(request)
            self._wake.notify()
        self.metrics.started()
        try:
            yield from self._text(request)
        finally:
            request.cancelled.set()  # a no-op for a finished request; frees its row otherwise
            self.metrics.ended()

    def _text(self, request: _Request) -> Iterator[GenerationChunk]:
        # Decode the whole answer at each token and send what is new (WholeTextDecoder): HF tokenizers
        # only decode whole sequences right.
        tokens = timed_tokens(request.events, request.arrived, _FINISHED, self.metrics)
        return stream_text(tokens, WholeTextDecoder(self._decode_text), request.params.stop,
                           len(request.prompt_tokens), request.max_tokens,
                           lambda token: token in self._eog and not request.params.ignore_eos)


    def _decode_text(self, tokens: Sequence[int]) -> str:
        # No clean-up of tokenization spaces: it rewrites earlier text (" ." -> "."), and text already
        # streamed cannot be taken back.
        return self._tokenizer.decode(tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    # ---- the batch loop ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                while not (self._stopping or self._waiting):
                    self._wake.wait()
                if self._stopping:
                    break
                batch = [request for request in self._waiting[: self._max_batch] if not request.cancelled.is_set()]
                del self._waiting[: self._max_batch]
                self._running = len(batch)
            try:
                if batch:
                    self._decode(batch)
            except Exception as error:  # noqa: BLE001 -- a failed batch fails its requests, not the server
                for request in batch:
                    request.events.put(error)
            finally:
                with self._wake:
                    self._running = 0
        with self._wake:
            waiting, self._waiting = self._waiting, []
        for request in waiting:
            request.events.put(WattError("the engine was shut down"))

    def _decode(self, batch: list[_Request]) -> None:
        torch = self._torch
        width = max(len(request.prompt_tokens) for request in batch)
        ids = torch.full((len(batch), width), self._pad, dtype=torch.long)  # (B, T) left-padded
        mask = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T)
        for row, request in enumerate(batch):
            ids[row, width - len(request.prompt_tokens):] = torch.tensor(request.prompt_tokens)
            mask[row, width - len(request.prompt_tokens):] = 1
            self.counters["prompt_tokens"] += len(request.prompt_tokens)
        active = [True] * len(batch)
        produced = [0] * len(batch)  # tokens sampled per row (request threads read only their events)
        past = None
        step_ids = ids
        while any(active):
            positions = (mask.cumsum(dim=1) - 1).clamp_min(0)[:, -step_ids.shape[1]:]  # (B, t)
            with self._lock, torch.no_grad():
                out = self._model(input_ids=step_ids, attention_mask=mask, position_ids=positions,
                                  past_key_values=past, use_cache=True)
            self.counters["steps"] += 1
            past = out.past_key_values
            logits = out.logits[:, -1, :].float().numpy()  # (B, vocab)
            next_ids = torch.full((len(batch), 1), self._pad, dtype=torch.long)  # (B, 1)
            for row, request in enumerate(batch):
                if not active[row]:
                    continue
                if request.cancelled.is_set():
                    active[row] = False
                    continue
                token = request.sampler.sample(logits[row, : self._vocab_size])
                request.sampler.accept(token)
                request.events.put(token)
                self.counters["generated_tokens"] += 1
                next_ids[row, 0] = token
                produced[row] += 1
                ended = token in self._eog and not request.params.ignore_eos
                if ended or produced[row] >= request.max_tokens:
                    active[row] = False
                    request.events.put(_FINISHED)
            step_ids = next_ids
            mask = torch.cat([mask, torch.ones((len(batch), 1), dtype=torch.long)], dim=1)

    # ---- logprobs (echo, lm-eval scoring) ------------------------------------------------------

    def generate_with_logprobs(self, prompt: Prompt, params: SamplingParams, top_logprobs: int,
                               echo: bool) -> LogprobCompletion:
        torch = self._torch
        self._check(params)
        tokens = self._prompt(prompt)
        budget = 0 if params.max_tokens == 0 else generation_budget(self._name, len(tokens), self._n_ctx,
                                                                   params.max_tokens)
        sampler = TokenSampler(params, tokens)
        entries: list[LogprobEntry] = []
        with self._lock, torch.no_grad():
            out = self._model(torch.tensor([tokens]), use_cache=True)
            rows = out.logits[0].float().numpy()  # (T, vocab)
            if echo:
                entries.append((tokens[0], None, None))
                scores = log_softmax(rows[:-1, : self._vocab_size])  # (T-1, vocab)
                for position, row in enumerate(scores):
                    token = tokens[position + 1]
                    entries.append((token, float(row[token]), self._top(row, token, top_logprobs)))
            logits, past, produced, finish = rows[-1, : self._vocab_size], out.past_key_values, 0, "length"
            generated: list[int] = []
            while produced < budget:
                token = sampler.sample(logits)
                if token in self._eog and not params.ignore_eos:
                    if echo:
                        # lm-eval sends max_tokens=1 and drops the last entry as "the generated token":
                        # without the stop token's entry it would drop the prompt's last token instead.
                        row = log_softmax(logits[None, :])[0]
                        entries.append((token, float(row[token]), self._top(row, token, top_logprobs)))
                    finish = "stop"
                    break
                row = log_softmax(logits[None, :])[0]
                entries.append((token, float(row[token]), self._top(row, token, top_logprobs)))
                sampler.accept(token)
                produced += 1
                generated.append(token)
                if any(stop in self._decode_text(generated) for stop in params.stop):
                    finish = "stop"
                    break
                if produced < budget:
                    out = self._model(torch.tensor([[token]]), past_key_values=past, use_cache=True)
                    logits, past = out.logits[0, -1, : self._vocab_size].float().numpy(), out.past_key_values
        text = self._decode_text(generated)
        for stop in params.stop:  # the text ends before the first stop string, as everywhere else
            if stop in text:
                text = text[: text.index(stop)]
        prompt_text = prompt if isinstance(prompt, str) else self._tokenizer.decode(tokens)
        return LogprobCompletion.from_entries(entries, lambda token: self._tokenizer.decode([token]).encode("utf-8"),
                                              prompt_text, text, echo, finish, len(tokens), produced)

    def _top(self, row: np.ndarray, token: int, n: int) -> dict[str, float]:
        best = np.argpartition(row, -n)[-n:] if n > 0 else np.array([], dtype=np.int64)
        chosen = sorted({*map(int, best), token}, key=lambda t: -row[t])
        return {self._tokenizer.decode([t]): float(row[t]) for t in chosen}
