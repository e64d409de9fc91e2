"""A llama.cpp engine over one GGUF file (CPU inference through llama-cpp-python).

This engine serves one request at a time: a `Llama` object owns a single KV cache, so requests queue
on a lock. `wattlm.engines.batching.LlamaCppBatchEngine` decodes many at once behind the same interface;
this one stays as the simple reference (`watt serve --engine simple`) the batching engine is tested against.

We drive `Llama.generate` (a token iterator) ourselves instead of `create_completion` so that
streaming and non-streaming share one code path, token counts are those the model really consumed and
produced, and stop strings are handled the same way as by every other engine (`StopMatcher`).
"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wattlm.engines import cancel
from wattlm.engines.base import NoChatTemplate, check_token_ids, generation_budget, no_chat_template_message
from wattlm.engines.chat_template import ChatTemplate
from wattlm.engines.compute_thread import iterate
from wattlm.engines.embeddings import Embedder
from wattlm.engines.grammar import json_grammar
from wattlm.engines.lazy_llama import open_llama, thread_args
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
from wattlm.errors import NotFound, WattError

if TYPE_CHECKING:  # llama_cpp is heavy; it is imported when an engine is built, not at import time
    from llama_cpp import Llama

    from wattlm.engines.table import EngineSettings


class LlamaCppEngine:
    """`Engine` on llama-cpp-python's `Llama`.

    `chat_template` overrides the GGUF's `tokenizer.chat_template` (for example the template of a tuned
    model whose GGUF was exported without one); with neither, chat requests fail with `NoChatTemplate`.
    """

    def __init__(
        self,
        gguf_path: Path,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        chat_template: str | None = None,
        name: str | None = None,
        flash_attn: bool = False,
    ) -> None:
        gguf_path = Path(gguf_path)
        if not gguf_path.is_file():
            raise NotFound(f"GGUF file not found: {gguf_path}")
        import llama_cpp

        try:
            self._llm: Llama = open_llama(gguf_path, n_ctx=n_ctx, flash_attn=flash_attn, **thread_args(n_threads))
        except ValueError as error:  # llama-cpp-python reports an unreadable model as ValueError
            raise WattError(f"cannot load GGUF {gguf_path}: {error}") from error
        vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
        self._is_end_of_generation = functools.partial(llama_cpp.llama_vocab_is_eog, vocab)
        self._name = name or gguf_path.stem
        self._lock = threading.Lock()
        template = chat_template or self._llm.metadata.get("tokenizer.chat_template") or None
        self._template_source = template
        # Scoring and embeddings contexts use the same attention kernels as generation (`flash_attn`).
        self._scorer = Scorer(gguf_path, n_ctx, n_threads, self._name, self._is_end_of_generation,
                              flash_attn=flash_attn)
        self._embedder = Embedder(gguf_path, n_ctx, n_threads, self._name, flash_attn=flash_attn)
        self._formatter = (
            ChatTemplate(template, self._token_text(self._llm.token_bos()), self._token_text(self._llm.token_eos()), self._name)
            if template
            else None
        )

    @classmethod
    def from_settings(cls, source: Path, name: str, settings: EngineSettings) -> LlamaCppEngine:
        return cls(source, n_ctx=settings.n_ctx, n_threads=settings.n_threads, name=name,
                   flash_attn=settings.flash_attn)

    def close(self) -> None:
        """Free the llama.cpp contexts now (keep-alive unloading, shutdown)."""
        with self._lock:
            self._scorer.close()
            self._embedder.close()
            self._llm.close()

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_length(self) -> int:
        return self._llm.n_ctx()

    @property
    def has_chat_template(self) -> bool:
        return self._formatter is not None

    @property
    def metadata(self) -> dict[str, str]:
        """The GGUF key/value metadata (architecture, tokenizer, ...), as strings."""
        return dict(self._llm.metadata)

    def check_json(self, constraint: JsonConstraint) -> None:
        json_grammar(constraint)  # raises for a schema the grammar cannot hold answers to; cached for generate

    def render_chat(self, messages: Sequence[ChatTurn]) -> str:
        if self._formatter is None:
            raise NoChatTemplate(no_chat_template_message(self._name))
        return self._formatter.render(messages)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text))

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        if add_special:
            return self._tokenize(text)
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def detokenize(self, tokens: Sequence[int]) -> str:
        ids = check_token_ids(tokens, self._llm.n_vocab())
        return self._llm.detokenize(ids, special=True).decode("utf-8", errors="replace")

    def tokenizer_info(self) -> TokenizerInfo:
        return TokenizerInfo.describe(self._llm.n_vocab(), self._llm.token_bos(), self._llm.token_eos(),
                                      self._token_text, self._add_bos, self._template_source)

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        return self._embedder.embed(texts)

    def generate_with_logprobs(
        self, prompt: Prompt, params: SamplingParams, top_logprobs: int, echo: bool
    ) -> LogprobCompletion:
        text, tokens = self._prompt(prompt)
        return self._scorer.complete(text, tokens, params, top_logprobs, echo)

    def _prompt(self, prompt: Prompt) -> tuple[str, list[int]]:
        if isinstance(prompt, str):
            return prompt, self._tokenize(prompt)
        tokens = check_token_ids(prompt, self._llm.n_vocab())
        return self._llm.detokenize(tokens).decode("utf-8", errors="replace"), tokens

    def generate(self, prompt: Prompt, params: SamplingParams) -> Iterator[GenerationChunk]:
        grammar = None
        if params.response_json is not None:  # built and parsed before the lock: others keep generating
            from llama_cpp import LlamaGrammar

            grammar = LlamaGrammar.from_string(json_grammar(params.response_json), verbose=False)
        # A request queued behind a long answer gives up the wait as soon as its client is gone (the
        # bridge sets the cancel flag), instead of taking the lock only to stop at its first token.
        with cancel.holding(self._lock):
            yield from self._generate_locked(prompt, params, grammar)

    def _generate_locked(self, prompt: Prompt, params: SamplingParams, grammar) -> Iterator[GenerationChunk]:
        llm = self._llm
        prompt_tokens = self._prompt(prompt)[1]
        max_tokens = generation_budget(self._name, len(prompt_tokens), self.context_length, params.max_tokens)
        llm.set_seed(params.seed if params.seed is not None else random.getrandbits(32))
        # Samplers off unless asked for: OpenAI semantics are plain temperature + top_p sampling,
        # while llama.cpp's defaults add top_k=40 and min_p=0.05.
        tokens = llm.generate(
            prompt_tokens,
            temp=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            min_p=0.0,
            typical_p=1.0,
            repeat_penalty=params.repetition_penalty,
            presence_penalty=params.presence_penalty,
            frequency_penalty=params.frequency_penalty,
            grammar=grammar,
        )
        try:
            # Tokens can end inside a multi-byte character (CJK text, byte-fallback tokens): ByteDecoder
            # holds those bytes until the character is complete. Each token is decoded on the process's
            # compute thread, as every llama.cpp graph (see engines/compute_thread.py).
            yield from stream_text(iterate(tokens), ByteDecoder(lambda token: llm.detokenize([token])), params.stop,
                                   len(prompt_tokens), max_tokens,
                                   lambda token: self._is_end_of_generation(token) and not params.ignore_eos)
        finally:
            tokens.close()

    def _tokenize(self, text: str) -> list[int]:
        llm = self._llm
        # special=True: control tokens written by chat templates (<|im_start|>) must map to their ids.
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=self._add_bos, special=True)
        bos = llm.token_bos()
        if len(tokens) >= 2 and tokens[0] == tokens[1] == bos:
            # Templates such as Gemma's start with {{ bos_token }} and the tokenizer adds one too;
            # a doubled BOS degrades the output, so keep one.
            tokens = tokens[1:]
        return tokens

    def _token_text(self, token: int) -> str:
        if token < 0:  # the vocabulary has no such token
            return ""
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="replace")
