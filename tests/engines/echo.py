"""A toy engine in one file: it streams the prompt's words back. The core `Engine` protocol only (no
scoring, embeddings, chat template, vocabulary or grammar), so the server must refuse what needs those."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from wattlm.engines.base import generation_budget
from wattlm.engines.params import GenerationChunk, Prompt, SamplingParams
from wattlm.engines.table import EngineSettings
from wattlm.engines.textstream import WholeTextDecoder, stream_text


class EchoEngine:
    def __init__(self, source: Path, name: str, n_ctx: int) -> None:
        self.source, self._name, self._n_ctx = source, name, n_ctx

    @classmethod
    def from_settings(cls, source: Path, name: str, settings: EngineSettings) -> EchoEngine:
        return cls(source, name, settings.n_ctx)

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_length(self) -> int:
        return self._n_ctx

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return list(range(len(text.split())))  # token i is the prompt's i-th word

    def generate(self, prompt: Prompt, params: SamplingParams) -> Iterator[GenerationChunk]:
        words = prompt.split() if isinstance(prompt, str) else [str(token) for token in prompt]
        budget = generation_budget(self._name, len(words), self._n_ctx, params.max_tokens)

        def decode(tokens: Sequence[int]) -> str:
            return " ".join(words[token] for token in tokens)

        yield from stream_text(range(len(words)), WholeTextDecoder(decode), params.stop, len(words), budget,
                               lambda token: False)

    def close(self) -> None:
        pass  # holds nothing
