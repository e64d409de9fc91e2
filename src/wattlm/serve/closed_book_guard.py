"""The closed-book guard: an ungrounded answer that echoes the question or is debris becomes the refusal.

Refusal training (docs/kb.md, "Without a knowledge base") makes a task model less likely to repeat the
question or write fragments when it is asked without a passage, but no training budget makes it never
do so, and issue 11 asks for *never*. So when a chat request is answered without grounding (no `--kb`,
or `"knowledge": false`) by a model the guard covers, each choice's answer is classified with the
definitions the refusal bench counts (`eval/closed_book.py`), and an `echo` or `debris` answer is
replaced by the refusal in the question's language (`shared/refusal.py`, the server's own words):

- the message carries `refused: "echo"` or `refused: "debris"` (in a stream: on the delta that carries
  the refusal); `finish_reason` stays what the model's generation ended with (`stop`/`length`), since
  the generation did end that way and clients branch on it;
- `/metrics` counts `wattlm_closed_book_refusals_total{model, kind}`.

`echo` is narrowed, since an answer made of the message's own words can be right. It is replaced
- for a yes/no or choice question (`吗`, `还是`, `是否`, `Is …`, `… or …`): only when it says the question
  back nearly whole (FULL_ECHO_COVER of its distinct units); an option (`…是50Hz还是60Hz？` → `是50Hz`)
  or a yes restating it (`仓鼠能吃葡萄吗？` → `能吃葡萄`) is an answer;
- for another bare question (one line of at most BARE_QUESTION_UNITS units): always; a fragment of an
  open question says nothing (`红烧肉怎么做才不油腻？` → `油腻`);
- for any other message, such as a passage pasted with the question (the open-book use of a task model
  without a KB): when it repeats ECHO_COVER of the message's distinct units, so a span copied from the
  passage is an answer.

Which models: task-tier models (the registry card's `tier`), by default. They are trained on the QA
wording whose right closed-book answer is a short span or the refusal, so anything else the checks
catch is a failure. Foundation and industry models are text continuers and general chat models may
answer in scripts or shapes (code, Cyrillic) that the debris check would wrongly catch; they are left
alone. `watt serve --no-closed-book-guard` turns the guard off.

Streaming: the first BUFFER_TOKENS content pieces of each choice are held back. A choice that ends
within them (a task model's answers are short spans) is checked whole, then sent; a longer one is
checked on its held-back prefix, then sent and streamed on unchecked. A refused choice's generation
is not streamed at all: the refusal goes out instead, and, when every choice is settled, the engine's
generation is closed. So a client never sees an echo start and then get corrected; the cost is that a
guarded stream's first token arrives after up to BUFFER_TOKENS tokens.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from wattlm.engines.base import Engine
from wattlm.eval.closed_book import answer_kind, is_debris
from wattlm.serve import serving
from wattlm.serve.protocol.chat import (
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    DeltaMessage,
)
from wattlm.shared.refusal import refusal
from wattlm.shared.text import units

ECHO_COVER = 0.5  # share of a long message's distinct units an echo repeats
FULL_ECHO_COVER = 0.9  # ... of a yes/no or choice question's: said back whole, not restated as the answer
BARE_QUESTION_UNITS = 60  # one line this short is a bare question, not a passage with a question
YES_NO_ZH = ("吗", "还是", "是否", "能否", "可否", "是不是", "有没有", "要不要", "对不对", "行不行", "可不可以", "能不能")
YES_NO_EN = re.compile(r"^\s*(is|are|am|was|were|do|does|did|can|could|should|shall|will|would|has|have|had|may|"
                       r"might|must)\b|\bor\b", re.IGNORECASE)
BUFFER_TOKENS = 32  # content pieces of a stream held back and checked before any is sent
GUARDED_TIERS = frozenset({"task"})
METRIC = "wattlm_closed_book_refusals_total"


def question_cover(answer: str, question: str) -> float:
    """Share of the question's distinct units that the answer says."""
    asked = set(units(question))
    return len(asked & set(units(answer))) / len(asked) if asked else 0.0


def is_bare_question(message: str) -> bool:
    """One short line (in the closed-book QA wording or not): no passage pasted to answer from."""
    bare = message.strip()
    for prefix, suffix in (("问题：", "答案："), ("Question:", "Answer:")):  # shared/qa_format.py, no passage
        if bare.startswith(prefix) and bare.endswith(suffix):
            bare = bare[len(prefix):-len(suffix)].strip()
    return "\n" not in bare and len(units(bare)) <= BARE_QUESTION_UNITS


def own_words_can_answer(question: str) -> bool:
    """A yes/no or choice question: an answer made of its own words (`能吃葡萄`, `是50Hz`) may be right."""
    return any(marker in question for marker in YES_NO_ZH) or bool(YES_NO_EN.search(question))


def refused_kind(answer: str, question: str) -> str | None:
    """'echo' or 'debris' when the answer must be replaced by the refusal, else None."""
    kind = answer_kind(answer, question)
    if kind == "echo":
        cover = question_cover(answer, question)
        if own_words_can_answer(question):  # only the question said back (nearly) whole
            repeated = cover >= FULL_ECHO_COVER
        elif is_bare_question(question):
            # A bare open question (no passage pasted to answer from): any fragment of it says nothing.
            repeated = True
        else:
            repeated = cover >= ECHO_COVER
        if repeated:
            return "echo"
        return "debris" if is_debris(answer) else None
    return "debris" if kind == "debris" else None


def last_question(request: ChatCompletionRequest) -> str:
    """The last user message's text (the question a closed-book answer is checked against)."""
    for message in reversed(request.messages):
        if message.role == "user" and message.text.strip():
            return message.text.strip()
    return ""


class ClosedBookGuard:
    """Which models are guarded, the checks, and the count of replaced answers per (model, kind)."""

    def __init__(self, enabled: bool = True, tiers: frozenset[str] = GUARDED_TIERS, buffer_tokens: int = BUFFER_TOKENS):
        self.enabled, self.tiers, self.buffer_tokens = enabled, tiers, buffer_tokens
        self.counts: Counter[tuple[str, str]] = Counter()

    def applies(self, card: Any, request: ChatCompletionRequest) -> bool:
        """Guard this (ungrounded) request? Only plain-text answers of a guarded tier's model."""
        if not self.enabled or request.logprobs or request.tools:
            return False
        if request.response_format is not None and request.response_format.type != "text":
            return False
        extra = getattr(card, "model_extra", None) or {}
        return extra.get("tier") in self.tiers and bool(last_question(request))

    def check(self, model: str, answer: str, question: str) -> str | None:
        kind = refused_kind(answer, question)
        if kind is not None:
            self.counts[(model, kind)] += 1
        return kind

    def guard_response(self, response: ChatCompletionResponse, question: str) -> ChatCompletionResponse:
        for choice in response.choices:
            kind = self.check(response.model, choice.message.content, question)
            if kind is not None:
                choice.message = choice.message.model_copy(update={"content": refusal(question), "refused": kind})
        return response

    async def chat(self, engine: Engine, request: ChatCompletionRequest, question: str) -> ChatCompletionResponse:
        return self.guard_response(await serving.chat(engine, request), question)

    async def stream_chat(self, engine: Engine, request: ChatCompletionRequest, question: str
                          ) -> AsyncIterator[ChatCompletionChunk]:
        """Started like `serving.stream_chat` (request errors are a 400 before streaming), then guarded."""
        return self.guard_stream(await serving.stream_chat(engine, request), request, question)

    async def guard_stream(self, chunks: AsyncIterator[ChatCompletionChunk], request: ChatCompletionRequest,
                           question: str) -> AsyncIterator[ChatCompletionChunk]:
        """`serving.stream_chat`'s chunks, each choice's first `buffer_tokens` pieces checked before any is sent."""
        held: dict[int, list[ChatCompletionChunk]] = {}  # choice -> content chunks held back
        state: dict[int, str] = {}  # choice -> "sent" (passed the check) or "refused"
        done: set[int] = set()  # choices whose finish reason has gone out

        def settle(index: int, template: ChatCompletionChunk, finish: str | None) -> list[ChatCompletionChunk]:
            """Check the held text; the chunks to send for the choice now (with its finish when it has one)."""
            pieces = held.pop(index, [])
            said = "".join(piece.choices[0].delta.content or "" for piece in pieces)
            kind = self.check(request.model, said, question)

            def chunk(delta: DeltaMessage, reason: str | None = None) -> ChatCompletionChunk:
                return template.model_copy(update={"choices": [ChatChunkChoice(index=index, delta=delta,
                                                                               finish_reason=reason)]})

            if kind is None:
                state[index] = "sent"
                return pieces + ([chunk(DeltaMessage(), finish)] if finish else [])
            state[index] = "refused"
            done.add(index)
            # Refused before its generation ended: it ends here, so "stop".
            return [chunk(DeltaMessage(content=refusal(question), refused=kind)), chunk(DeltaMessage(), finish or "stop")]

        try:
            async for chunk in chunks:
                if not chunk.choices or chunk.choices[0].delta.role is not None:  # usage; each choice's role
                    yield chunk
                    continue
                choice = chunk.choices[0]
                index = choice.index
                if state.get(index) == "refused":
                    continue  # the rest of a refused generation: never sent
                if state.get(index) == "sent":
                    yield chunk
                elif choice.finish_reason is not None:
                    for piece in settle(index, chunk, choice.finish_reason):
                        yield piece
                else:
                    held.setdefault(index, []).append(chunk)
                    if len(held[index]) >= self.buffer_tokens:
                        for piece in settle(index, chunk, None):
                            yield piece
                if choice.finish_reason is not None:
                    done.add(index)
                if len(done) == request.n and not request.include_usage:
                    break  # every choice has finished or been refused: stop what is still generating
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    def render(self) -> str:
        """The Prometheus lines of the guard's counter."""
        lines = [f"# HELP {METRIC} Ungrounded answers replaced by the refusal (closed-book guard).",
                 f"# TYPE {METRIC} counter"]
        for (model, kind), count in sorted(self.counts.items()):
            name = model.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            lines.append(f'{METRIC}{{model="{name}",kind="{kind}"}} {count}')
        return "\n".join(lines) + "\n"
