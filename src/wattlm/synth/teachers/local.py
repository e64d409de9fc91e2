"""A teacher run in-process: a GGUF model (a registry model's export, or a packaged one) in llama.cpp.

It reuses the serving stage's continuous-batching engine, so `concurrency` prompts decode together on
one context, exactly as they would behind `watt serve`, without an HTTP hop. A model without a chat
template (the packaged Gemma 3 270M base) gets completion-style few-shot prompts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from wattlm.errors import WattError
from wattlm.synth.teachers.base import TeacherBase, TeacherPrompt


class LocalTeacher(TeacherBase):
    def __init__(self, gguf: Path, name: str, style: str = "auto", concurrency: int = 4, n_ctx: int = 2048,
                 n_threads: int | None = None, registry_id: str | None = None) -> None:
        super().__init__()
        from wattlm.engines.table import build_engine

        self.gguf, self._name, self._registry_id = Path(gguf), name, registry_id
        self.concurrency = concurrency
        # Each slot holds a whole request (few-shot prompt + reply), so n_ctx is per request.
        self.engine = build_engine(self.gguf, name, "batch", n_ctx=n_ctx, max_seqs=concurrency,
                                   max_waiting=max(32, concurrency * 4), n_threads=n_threads)
        if style == "auto":
            style = "chat" if self.engine.has_chat_template else "completion"
        elif style == "chat" and not self.engine.has_chat_template:
            self.engine.close()
            raise WattError(f"teacher {name} has no chat template (a base model); use style completion or auto")
        self.style = style

    @property
    def name(self) -> str:
        return self._name

    @property
    def registry_id(self) -> str | None:
        return self._registry_id

    def describe(self) -> dict:
        stat = self.gguf.stat()
        return {"type": "local", "gguf": self.gguf.name, "bytes": stat.st_size, "model": self._registry_id or self._name}

    def close(self) -> None:
        self.engine.close()

    def prepare(self) -> None:
        pass  # the style is known from the GGUF's metadata

    def complete(self, prompts: Sequence[TeacherPrompt]) -> list[str | None]:
        self.requests += len(prompts)
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="wattlm-teacher") as pool:
            replies = list(pool.map(self._complete_one, prompts))
        self.replies += sum(reply is not None for reply in replies)
        return replies

    def _complete_one(self, prompt: TeacherPrompt) -> str | None:
        from wattlm.engines.base import EngineOverloaded, PromptTooLong
        from wattlm.engines.params import ChatTurn, SamplingParams

        text = prompt.text if self.style == "completion" else self.engine.render_chat([ChatTurn("user", prompt.text)])
        params = SamplingParams(max_tokens=prompt.max_tokens, temperature=prompt.temperature, stop=prompt.stop,
                                seed=prompt.seed)
        for _ in range(100):
            try:
                reply = "".join(chunk.text for chunk in self.engine.generate(text, params))
                break
            except EngineOverloaded as busy:  # cannot happen with our own pool size, but costs nothing
                time.sleep(busy.retry_after)
            except PromptTooLong:
                self.fail("prompt_too_long")
                return None
        else:
            self.fail("engine_overloaded")
            return None
        if not reply.strip():
            self.fail("empty_content")
            return None
        return reply
