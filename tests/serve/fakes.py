"""A deterministic in-test engine: one word of a fixed script per token."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from wattlm.engines.base import NoChatTemplate, PromptTooLong, check_token_ids
from wattlm.engines.params import ChatTurn, GenerationChunk, LogprobCompletion, SamplingParams, TokenizerInfo
from wattlm.engines.stops import StopMatcher

SCRIPT = ["Hello", " from", " the", " fake", " engine", "."]
VOCAB = ["<s>", "</s>", "one", "two", "three", "four", "x", "hi"]  # token id = index; other words: id 7


class FakeEngine:
    """Prompt tokens are whitespace-separated words; it writes SCRIPT then stops."""

    def __init__(self, name: str = "fake", chat: bool = True, context_length: int = 64) -> None:
        self._name = name
        self._chat = chat
        self._context_length = context_length
        self.prompts: list[str] = []  # what generate() received, for assertions
        self.params: list[SamplingParams] = []  # the sampling settings of each generate() call
        self.closed = 0  # generations closed (finished or aborted)

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def has_chat_template(self) -> bool:
        return self._chat

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def close(self) -> None:
        pass  # a fake holds no model memory

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        ids = [VOCAB.index(word) if word in VOCAB else len(VOCAB) - 1 for word in text.split()]
        return [0, *ids] if add_special else ids

    def detokenize(self, tokens: Sequence[int]) -> str:
        return " ".join(VOCAB[token] for token in check_token_ids(tokens, len(VOCAB)))

    def tokenizer_info(self) -> TokenizerInfo:
        return TokenizerInfo(len(VOCAB), "<s>", 0, "</s>", 1, True, "{{ messages }}" if self._chat else None)

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        """A unit vector per text: one axis per vocabulary word it contains."""
        vectors = []
        for text in texts:
            counts = [float(text.split().count(word)) for word in VOCAB]
            norm = sum(c * c for c in counts) ** 0.5 or 1.0
            vectors.append([c / norm for c in counts])
        return vectors, sum(len(text.split()) for text in texts)

    def generate_with_logprobs(self, prompt, params: SamplingParams, top_logprobs: int, echo: bool) -> LogprobCompletion:
        """Every prompt word has logprob -1; the script's words -0.5 each."""
        text = prompt if isinstance(prompt, str) else self.detokenize(prompt)
        words = text.split()
        produced = SCRIPT[: params.max_tokens]
        tokens = ([*words] if echo else []) + produced
        logprobs = ([None] + [-1.0] * (len(words) - 1) if echo else []) + [-0.5] * len(produced)
        top = [None if lp is None else {tok: lp} for tok, lp in zip(tokens, logprobs, strict=True)]
        offsets, position = [], 0 if echo else len(text)
        for token in tokens:
            offsets.append(position)
            position += len(token)
        return LogprobCompletion(
            text=(text if echo else "") + "".join(produced), tokens=tokens, token_logprobs=logprobs,
            top_logprobs=top, text_offset=offsets, finish_reason="length", prompt_tokens=len(words),
            completion_tokens=len(produced),
        )

    def render_chat(self, messages: Sequence[ChatTurn]) -> str:
        if not self._chat:
            raise NoChatTemplate(f"model '{self._name}' has no chat template; use /v1/completions")
        return "".join(f"<{turn.role}> {turn.content}\n" for turn in messages) + "<assistant>"

    def generate(self, prompt, params: SamplingParams) -> Iterator[GenerationChunk]:
        if not isinstance(prompt, str):
            prompt = self.detokenize(prompt)
        self.prompts.append(prompt)
        self.params.append(params)
        prompt_tokens = self.count_tokens(prompt)
        if prompt_tokens >= self._context_length:
            raise PromptTooLong(f"prompt is {prompt_tokens} tokens; the context window is {self._context_length}")
        limit = len(SCRIPT) if params.max_tokens is None else params.max_tokens
        stops = StopMatcher(params.stop)
        try:
            for produced, word in enumerate(SCRIPT[:limit], start=1):
                text = stops.push(word)
                if stops.matched:
                    yield GenerationChunk(text, "stop", prompt_tokens, produced)
                    return
                yield GenerationChunk(text, None, prompt_tokens, produced)
            # Like a real model: reaching max_tokens is "length" even if the script ended there.
            finish = "length" if params.max_tokens is not None and limit <= len(SCRIPT) else "stop"
            yield GenerationChunk(stops.flush(), finish, prompt_tokens, min(limit, len(SCRIPT)))
        finally:
            self.closed += 1


class BrokenEngine(FakeEngine):
    """Fails after `good_chunks` chunks, like a backend crashing mid-answer."""

    def __init__(self, good_chunks: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self._good_chunks = good_chunks

    def generate(self, prompt, params: SamplingParams) -> Iterator[GenerationChunk]:
        for index, chunk in enumerate(super().generate(prompt, params)):
            if index == self._good_chunks:
                raise RuntimeError("backend exploded")
            yield chunk


class SlowEngine(FakeEngine):
    """Takes `delay` seconds per token, like a long generation."""

    def __init__(self, delay: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self._delay = delay

    def generate(self, prompt, params: SamplingParams) -> Iterator[GenerationChunk]:
        for chunk in super().generate(prompt, params):
            time.sleep(self._delay)
            yield chunk
