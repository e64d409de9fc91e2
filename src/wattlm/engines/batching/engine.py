"""`LlamaCppBatchEngine`: the `Engine` interface over the continuous-batching scheduler.

Request threads tokenize, submit a `Sequence`, and turn the token ids the scheduler sends back into
text (incremental UTF-8, stop strings, finish reason, exact counts), exactly as `LlamaCppEngine` does
for one request at a time; greedy answers of the two engines are the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import TYPE_CHECKING

from wattlm.engines import cancel
from wattlm.engines.base import NoChatTemplate, check_token_ids, generation_budget, no_chat_template_message
from wattlm.engines.batching.model import GgufModel
from wattlm.engines.batching.sampler import TokenSampler
from wattlm.engines.batching.scheduler import Scheduler
from wattlm.engines.batching.sequence import FINISHED, Sequence
from wattlm.engines.chat_template import ChatTemplate
from wattlm.engines.embeddings import Embedder
from wattlm.engines.grammar import grammar_constraint, json_grammar
from wattlm.engines.metrics import EngineMetrics, timed_tokens
from wattlm.engines.params import (
    ChatTurn,
    GenerationChunk,
    JsonConstraint,
    LogprobCompletion,
    Prompt,
    SamplingParams,
    TokenizerInfo,
)
from wattlm.engines.scoring import Scorer
from wattlm.engines.textstream import ByteDecoder, stream_text
from wattlm.errors import WattError

if TYPE_CHECKING:
    from wattlm.engines.table import EngineSettings


class LlamaCppBatchEngine:
    """Many requests in flight on one llama.cpp context.

    `n_ctx` is the context window of each request; `max_seqs` requests decode together and up to
    `max_waiting` more queue for a slot; beyond that `generate` raises `EngineOverloaded`.
    `prefill_chunk` bounds the prompt tokens read per step, so new prompts never stall running answers
    for long.
    """

    def __init__(
        self,
        gguf_path: Path,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        chat_template: str | None = None,
        name: str | None = None,
        max_seqs: int = 8,
        max_waiting: int = 32,
        prefill_chunk: int = 128,
        lora_path: Path | None = None,
        share_weights_with: LlamaCppBatchEngine | None = None,
        flash_attn: bool = False,
    ) -> None:
        # A LoRA engine over weights another engine already holds shares them (only its context and
        # KV cache are new); each engine closes its share.
        self._model = share_weights_with._model.share() if share_weights_with is not None else GgufModel(Path(gguf_path))
        if Path(self._model.path) != Path(gguf_path):
            self._model.close()
            raise WattError(f"cannot share weights: {share_weights_with.name} serves {self._model.path}, not {gguf_path}")
        self.lora_path = Path(lora_path) if lora_path is not None else None
        self._name = name or Path(gguf_path).stem
        self._eog = frozenset(token for token in range(self._model.n_vocab) if self._model.is_end_of_generation(token))
        template = chat_template or self._model.metadata.get("tokenizer.chat_template") or None
        self._template_source = template
        # echo/logprobs requests run outside the batch loop, on their own context created on first use;
        # it and the embeddings context use the same attention kernels as the batch (`flash_attn`).
        self._scorer = Scorer(Path(gguf_path), n_ctx, n_threads, self._name, self._model.is_end_of_generation,
                              self.lora_path, flash_attn)
        self._embedder = Embedder(Path(gguf_path), n_ctx, n_threads, self._name, self.lora_path, flash_attn)
        self._template = (
            ChatTemplate(template, self._model.token_text(self._model.bos), self._model.token_text(self._model.eos), self._name)
            if template
            else None
        )
        self.metrics = EngineMetrics()
        try:
            self._scheduler = Scheduler(self._model, n_ctx, max_seqs, max_waiting, prefill_chunk, n_threads,
                                        self.lora_path, flash_attn)
        except BaseException:
            self._model.close()
            raise

    @classmethod
    def from_settings(cls, source: Path, name: str, settings: EngineSettings) -> LlamaCppBatchEngine:
        return cls(source, n_ctx=settings.n_ctx, n_threads=settings.n_threads, name=name, max_seqs=settings.max_seqs,
                   max_waiting=settings.max_waiting, flash_attn=settings.flash_attn)

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_length(self) -> int:
        return self._scheduler.n_ctx

    @property
    def has_chat_template(self) -> bool:
        return self._template is not None

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self._model.metadata)

    @property
    def running(self) -> int:
        """Sequences holding a slot now."""
        return self._scheduler.running

    @property
    def waiting(self) -> int:
        """Requests queued for a slot."""
        return self._scheduler.waiting

    @property
    def counters(self) -> dict[str, int]:
        """Scheduler totals: steps, prompt_tokens, reused_prompt_tokens, generated_tokens."""
        return dict(self._scheduler.counters)

    def check_json(self, constraint: JsonConstraint) -> None:
        json_grammar(constraint)  # raises for a schema the grammar cannot hold answers to; cached for generate

    def render_chat(self, messages: Seq[ChatTurn]) -> str:
        if self._template is None:
            raise NoChatTemplate(no_chat_template_message(self._name))
        return self._template.render(messages)

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenize(text))

    def close(self) -> None:
        self._scheduler.close()
        self._scorer.close()
        self._embedder.close()
        self._model.close()

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return self._model.tokenize(text, add_special)

    def detokenize(self, tokens: Seq[int]) -> str:
        return self._model.detokenize(check_token_ids(tokens, self._model.n_vocab))

    def tokenizer_info(self) -> TokenizerInfo:
        bos = self._model.bos
        add_bos = self._model.tokenize("") == [bos] if bos >= 0 else False
        return TokenizerInfo.describe(self._model.n_vocab, bos, self._model.eos, self._model.token_text, add_bos,
                                      self._template_source)

    def embed(self, texts: Seq[str]) -> tuple[list[list[float]], int]:
        return self._embedder.embed(texts)

    def generate_with_logprobs(
        self, prompt: Prompt, params: SamplingParams, top_logprobs: int, echo: bool
    ) -> LogprobCompletion:
        text, tokens = self._prompt(prompt)
        return self._scorer.complete(text, tokens, params, top_logprobs, echo)

    def _prompt(self, prompt: Prompt) -> tuple[str, list[int]]:
        if isinstance(prompt, str):
            return prompt, self._model.tokenize(prompt)
        tokens = check_token_ids(prompt, self._model.n_vocab)
        return self._model.detokenize(tokens, special=False), tokens

    def generate(self, prompt: Prompt, params: SamplingParams) -> Iterator[GenerationChunk]:
        prompt_tokens = self._prompt(prompt)[1]
        sequence = Sequence(
            prompt_tokens=prompt_tokens,
            params=params,
            max_tokens=generation_budget(self._name, len(prompt_tokens), self.context_length, params.max_tokens),
            end_of_generation=frozenset() if params.ignore_eos else self._eog,
            sampler=TokenSampler(params, prompt_tokens, grammar_constraint(self._model.vocab, params)),
        )
        self._scheduler.submit(sequence)  # may raise EngineOverloaded before anything is streamed
        self.metrics.started()
        # A request that goes away while this thread waits for a token (queued for a slot) must not keep
        # its place until admitted: the cancel flag frees it and wakes this thread.
        unwatch = cancel.on_cancel(lambda: (self._scheduler.cancel(sequence), sequence.emit(cancel.Cancelled())))
        try:
            yield from self._text(sequence)
        finally:
            unwatch()
            self._scheduler.cancel(sequence)  # a no-op for a finished sequence
            self.metrics.ended()

    def _text(self, sequence: Sequence) -> Iterator[GenerationChunk]:
        # Tokens can end inside a multi-byte character; ByteDecoder holds those bytes until it is whole.
        tokens = timed_tokens(sequence.events, sequence.arrived, FINISHED, self.metrics)
        return stream_text(tokens, ByteDecoder(self._model.piece), sequence.params.stop,
                           len(sequence.prompt_tokens), sequence.max_tokens, sequence.end_of_generation.__contains__)

