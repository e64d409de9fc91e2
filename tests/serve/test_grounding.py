"""Grounded chat answers over a real (tiny) knowledge base and an engine that copies from its passages."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from wattlm.engines.params import GenerationChunk, SamplingParams
from wattlm.errors import WattError
from wattlm.serve import create_app
from wattlm.serve.grounding import DEFAULT_PROMPT, KnowledgeBases

from .fakes import FakeEngine

# Our own writing: two documents in force, one superseded, one in English.
DOCS = {
    "pump_rules_2024.md": "---\ntitle: Cooling pump rules 2024\neffective: 2024-01-01\n---\n\n# Cooling pump rules 2024\n\n"
    "## Inspection\n\nThe cooling pump bearing temperature must stay below 75 degrees Celsius.\n\n"
    "## Replacement\n\nReplace the pump seal every 8000 running hours.\n",
    "pump_rules_2019.md": "---\ntitle: Cooling pump rules 2019\nsuperseded_by: pump_rules_2024.md\n---\n\n"
    "# Cooling pump rules 2019\n\n## Replacement\n\nReplace the pump seal every 5000 running hours or after a leak.\n",
    "relay_test.txt": "Distance relay routine test\n\nZone 1 must trip within 30 ms during the routine test. "
    "Never open a live current transformer secondary circuit.\n",
    "battery_room.md": "# 蓄电池室管理规定\n\n## 一、防火\n\n蓄电池室内严禁烟火，照明和通风设备应采用防爆型。\n\n"
    "## 二、温度\n\n蓄电池室温度应保持在15至30摄氏度之间，每日记录一次。\n",
}
CITATION_KEYS = {"id", "source", "title", "heading", "text", "start", "end", "score", "superseded", "superseded_by"}


class EchoEngine(FakeEngine):
    """Answers with the first text line of a passage of its prompt: the one numbered `which`, or the first
    whose label contains `which` when it is a string; or with `reply` when given."""

    def __init__(self, which: int | str = 1, reply: str | None = None) -> None:
        super().__init__(name="echo", context_length=100_000)
        self.which, self.reply = which, reply

    def answer_for(self, prompt: str) -> str:
        if self.reply is not None:
            return self.reply
        passages = re.findall(r"\[(\d+)\] ([^\n]*)\n([^\n]+)", prompt)
        for number, label, text in passages:
            if (isinstance(self.which, int) and int(number) == self.which) or (
                    isinstance(self.which, str) and self.which in label):
                return text
        return "nothing"

    def generate(self, prompt, params: SamplingParams) -> Iterator[GenerationChunk]:
        self.prompts.append(prompt)
        pieces = re.findall(r"\S+\s*", self.answer_for(prompt))
        for produced, piece in enumerate(pieces, start=1):
            yield GenerationChunk(piece, "stop" if produced == len(pieces) else None, len(prompt.split()), produced)


@pytest.fixture(scope="module")
def kb_home(tmp_path_factory):
    """A workspace with KB `pumps` (built through the same path as `watt kb build`; embedding takes seconds)."""
    from wattlm.kb.cli import _origins, documents_dataset
    from wattlm.kb.stage import build_kb
    from wattlm.registry import Registry

    root = tmp_path_factory.mktemp("grounding")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    registry = Registry(root / "home")
    dataset = documents_dataset(registry, [docs], "pumps-documents", progress=False)
    build_kb(registry, dataset, "pumps", origins=_origins([docs]))
    registry.close()
    return root / "home"


def grounded_client(kb_home, engine: FakeEngine, default: str | None = "pumps", prompt: str = "served",
                    **app_options) -> TestClient:
    """A server over KB `pumps`; the numbered-passage prompt ("served") lets EchoEngine pick a passage."""
    app = create_app({"echo": engine}, knowledge=KnowledgeBases(kb_home, default=default, prompt=prompt),
                     **app_options)
    return TestClient(app)


def ask(client: TestClient, question: str, **extra) -> dict:
    response = client.post("/v1/chat/completions", json={
        "model": "echo", "messages": [{"role": "user", "content": question}], **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_an_answer_cites_the_passage_it_copies(kb_home):
    engine = EchoEngine()
    message = ask(grounded_client(kb_home, engine), "How fast must zone 1 trip in the routine test?")["choices"][0][
        "message"]
    citations = message["citations"]
    assert [c["id"] for c in citations] == list(range(1, len(citations) + 1)) and citations
    assert all(set(c) == CITATION_KEYS for c in citations)
    first = citations[0]
    assert first["source"].endswith("relay_test.txt") and "30 ms" in first["text"]
    assert 0 <= first["start"] < first["end"] and first["score"] > 0
    assert message["content"].startswith("Zone 1 must trip within 30 ms") and message["content"].endswith("[1]")
    # The model read the task tier's own open-book wording over numbered passages.
    assert engine.prompts[0].count("Read the passage and answer briefly.") == 1
    assert "[1] Distance relay routine test" in engine.prompts[0]


def test_passages_the_answer_does_not_use_are_dropped_and_renumbered(kb_home):
    client = grounded_client(kb_home, EchoEngine(which=2))
    question = "When must the cooling pump seal be replaced?"
    hits = client.post("/v1/kb/pumps/search", json={"query": question, "k": 3}).json()["data"]
    message = ask(client, question)["choices"][0]["message"]
    assert len(message["citations"]) < len(hits)
    assert message["citations"][0]["id"] == 1 and message["citations"][0]["text"] == hits[1]["text"]
    assert message["content"].endswith("[1]") and "[2]" not in message["content"]


def test_a_citation_of_a_superseded_document_is_flagged(kb_home):
    message = ask(grounded_client(kb_home, EchoEngine(which="2019")), "How often is the pump seal replaced?",
                  knowledge={"k": 3})["choices"][0]["message"]
    old = [c for c in message["citations"] if c["source"].endswith("pump_rules_2019.md")]
    assert old and old[0]["superseded"] is True and old[0]["superseded_by"] == "pump_rules_2024.md"
    assert "5000" in message["content"]


def test_streaming_sends_the_citations_on_the_final_chunk(kb_home):
    client = grounded_client(kb_home, EchoEngine())
    question = "How fast must zone 1 trip in the routine test?"
    whole = ask(client, question)["choices"][0]["message"]
    body = {"model": "echo", "messages": [{"role": "user", "content": question}], "stream": True,
            "stream_options": {"include_usage": True}}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    with_choices = [chunk for chunk in chunks if chunk["choices"]]
    final = with_choices[-1]["choices"][0]
    assert final["finish_reason"] == "stop" and final["delta"]["citations"] == whole["citations"]
    assert all("citations" not in chunk["choices"][0]["delta"] for chunk in with_choices[:-1])
    assert "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in with_choices) == whole["content"]
    assert chunks[-1]["usage"] is not None


@pytest.mark.parametrize(("question", "refusal"), [
    ("How do I bake sourdough bread at home?", "The documents do not contain this."),
    ("红烧肉怎么做才好吃？", "资料中没有找到相关内容。"),
])
def test_an_out_of_scope_question_is_refused_without_the_model(kb_home, question, refusal):
    engine = EchoEngine()
    for stream in (False, True):
        response = grounded_client(kb_home, engine).post("/v1/chat/completions", json={
            "model": "echo", "messages": [{"role": "user", "content": question}], "stream": stream})
        if not stream:
            assert response.json()["choices"][0]["message"] == {"role": "assistant", "content": refusal,
                                                                "citations": []}
        else:
            chunks = [json.loads(line[6:]) for line in response.text.splitlines()
                      if line.startswith("data: {")]
            assert chunks[-1]["choices"][0]["delta"] == {"citations": []}
            assert chunks[1]["choices"][0]["delta"]["content"] == refusal
    assert engine.prompts == []


def test_an_answer_no_passage_supports_is_replaced_by_the_passage_sentence(kb_home):
    engine = EchoEngine(reply="Paris is the capital of France and famous for its museums.")
    message = ask(grounded_client(kb_home, engine), "How fast must zone 1 trip in the routine test?")["choices"][0][
        "message"]
    # The model was asked; its invented answer did not survive the check. A passage sentence holds the
    # question's words, so the answer is that sentence, cited (the extractive fallback); with no such
    # sentence it is the refusal (test_grounding_citations.py).
    assert len(engine.prompts) == 1 and "Paris" not in message["content"]
    assert message["content"] == "Zone 1 must trip within 30 ms during the routine test. [1]"
    assert message["citations"][0]["source"].endswith("relay_test.txt")


def test_knowledge_false_answers_without_retrieval(kb_home):
    engine = EchoEngine(reply="plain answer")
    message = ask(grounded_client(kb_home, engine), "How fast must zone 1 trip?", knowledge=False)["choices"][0][
        "message"]
    assert message == {"role": "assistant", "content": "plain answer"}
    assert "Passage" not in engine.prompts[0] and "[1]" not in engine.prompts[0]


def test_without_a_default_kb_answers_are_plain_unless_a_request_names_one(kb_home):
    engine = EchoEngine()
    client = grounded_client(kb_home, engine, default=None)
    assert "citations" not in ask(client, "How fast must zone 1 trip?")["choices"][0]["message"]
    picked = ask(client, "How fast must zone 1 trip in the routine test?", knowledge={"kb": "pumps", "k": 1})
    assert len(picked["choices"][0]["message"]["citations"]) == 1
    assert engine.prompts[-1].count("\n[") == 0 and "[1] " in engine.prompts[-1]  # k=1: one passage
    response = client.post("/v1/chat/completions", json={
        "model": "echo", "messages": [{"role": "user", "content": "x"}], "knowledge": True})
    assert response.status_code == 400 and "--kb" in response.json()["error"]["message"]


def test_an_unknown_kb_is_a_404_naming_it(kb_home):
    client = grounded_client(kb_home, EchoEngine())
    response = client.post("/v1/chat/completions", json={
        "model": "echo", "messages": [{"role": "user", "content": "hi"}], "knowledge": {"kb": "no-such-kb"}})
    assert response.status_code == 404
    error = response.json()["error"]
    assert "no-such-kb" in error["message"] and error["param"] == "knowledge.kb" and error["code"] == "kb_not_found"
    searched = client.post("/v1/kb/no-such-kb/search", json={"query": "pump"})
    assert searched.status_code == 404 and "no-such-kb" in searched.json()["error"]["message"]


@pytest.mark.parametrize("extra", [{"logprobs": True}, {"response_format": {"type": "json_object"}},
                                   {"knowledge": {"k": 0}}, {"knowledge": {"kbs": "pumps"}}])
def test_what_grounding_cannot_honour_is_a_400(kb_home, extra):
    response = grounded_client(kb_home, EchoEngine()).post("/v1/chat/completions", json={
        "model": "echo", "messages": [{"role": "user", "content": "pump seal?"}], **extra})
    assert response.status_code == 400, response.text


def test_the_search_endpoint_serves_retrieval_alone(kb_home):
    engine = EchoEngine()
    client = grounded_client(kb_home, engine)
    response = client.post("/v1/kb/pumps/search", json={"query": "蓄电池室温度要求", "k": 2, "mode": "bm25"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kb"] == "pumps" and len(body["data"]) == 2
    best = body["data"][0]
    assert best["source"].endswith("battery_room.md") and best["rank"] == 1 and "15至30" in best["text"]
    assert {"supported", "support", "superseded", "heading"} <= set(best)
    assert engine.prompts == []
    listed = client.get("/v1/kb").json()["data"]
    assert [(kb["id"], kb["default"], kb["sources"]) for kb in listed] == [("pumps", True, 4)]
    bad = client.post("/v1/kb/pumps/search", json={"query": "", "k": 2})
    assert bad.status_code == 400


def test_kb_routes_need_a_key_like_the_others(kb_home, tmp_path):
    from wattlm.serve.auth import KeyAuth
    from wattlm.serve.keys import KeyStore

    store = KeyStore.of_home(tmp_path)
    key, _ = store.create("app")
    client = grounded_client(kb_home, EchoEngine(), auth=KeyAuth(store))
    assert client.get("/v1/kb").status_code == 401
    assert client.post("/v1/kb/pumps/search", json={"query": "pump"}).status_code == 401
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/kb", headers=headers).status_code == 200
    assert client.post("/v1/kb/pumps/search", json={"query": "pump"}, headers=headers).status_code == 200


def test_the_default_prompt_is_the_best_passage_alone_in_the_training_wording(kb_home):
    engine = EchoEngine(reply="within 30 ms")
    message = ask(grounded_client(kb_home, engine, prompt=DEFAULT_PROMPT),
                  "How fast must zone 1 trip in the routine test?")["choices"][0]["message"]
    prompt = engine.prompts[0]
    assert "Passage: Distance relay routine test" not in prompt and "[1]" not in prompt  # no labels, no numbers
    assert prompt.count("Passage: ") == 1 and "Zone 1 must trip within 30 ms" in prompt
    # The span comes back as the passage clause that holds it, cited.
    assert message["content"] == "Zone 1 must trip within 30 ms during the routine test. [1]"
    assert [c["source"].rsplit("/", 1)[-1] for c in message["citations"]] == ["relay_test.txt"]


def test_an_unknown_prompt_is_an_error_at_start():
    with pytest.raises(WattError, match="unknown grounded prompt 'chatty'"):
        KnowledgeBases(None, prompt="chatty")
