"""A deterministic in-test engine: one word of a fixed script per token."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from wattlm.serve.engine import ChatTurn, GenerationChunk, NoChatTemplate, PromptTooLong, SamplingParams
from wattlm.serve.stops import StopMatcher

SCRIPT = ["Hello", " from", " the", " fake", " engine", "."]


class FakeEngine:
    """Prompt tokens are whitespace-separated words; it writes SCRIPT then stops."""

    def __init__(self, name: str = "fake", chat: bool = True, context_length: int = 64) -> None:
        self._name = name
        self._chat = chat
        self._context_length = context_length
        self.prompts: list[str] = []  # what generate() received, for assertions
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

    def render_chat(self, messages: Sequence[ChatTurn]) -> str:
        if not self._chat:
            raise NoChatTemplate(f"model '{self._name}' has no chat template; use /v1/completions")
        return "".join(f"<{turn.role}> {turn.content}\n" for turn in messages) + "<assistant>"

    def generate(self, prompt: str, params: SamplingParams) -> Iterator[GenerationChunk]:
        self.prompts.append(prompt)
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

    def generate(self, prompt: str, params: SamplingParams) -> Iterator[GenerationChunk]:
        for index, chunk in enumerate(super().generate(prompt, params)):
            if index == self._good_chunks:
                raise RuntimeError("backend exploded")
            yield chunk
