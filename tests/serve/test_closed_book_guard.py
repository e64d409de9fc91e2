"""The closed-book guard: an ungrounded task-tier answer that echoes the question or is debris becomes the refusal."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from wattlm.engines.params import GenerationChunk, SamplingParams
from wattlm.serve import create_app
from wattlm.serve.closed_book_guard import ClosedBookGuard, question_cover, refused_kind
from wattlm.shared.refusal import REFUSALS

from .fakes import FakeEngine

QUESTION = "红烧肉怎么做才不油腻？"


class ReplyEngine(FakeEngine):
    """Answers every prompt with `reply`, one character (a CJK answer) or word per chunk."""

    def __init__(self, reply: str, delay: float = 0.0) -> None:
        super().__init__(name="task", context_length=100_000)
        self.reply, self.delay = reply, delay
        self.produced = 0  # pieces generated (a refused stream stops its generation early)

    def generate(self, prompt, params: SamplingParams) -> Iterator[GenerationChunk]:
        self.prompts.append(prompt)
        pieces = re.findall(r"[\u4e00-\u9fff]|[^\u4e00-\u9fff\s]+\s*|\s+", self.reply)[: params.max_tokens or None]
        try:
            for produced, piece in enumerate(pieces, start=1):
                self.produced = produced
                time.sleep(self.delay)
                yield GenerationChunk(piece, "stop" if produced == len(pieces) else None, len(prompt.split()), produced)
        finally:
            self.closed += 1


def client_for(reply: str, tier: str = "task", guard: ClosedBookGuard | None = None, delay: float = 0.0
               ) -> tuple[TestClient, ReplyEngine]:
    engine = ReplyEngine(reply, delay)
    app = create_app({"task": engine}, model_cards=[{"id": "task", "tier": tier}], closed_book_guard=guard)
    return TestClient(app), engine


def ask(client: TestClient, question: str = QUESTION, **body) -> dict:
    response = client.post("/v1/chat/completions", json={"model": "task", "messages": [{"role": "user", "content": question}],
                                                         **body})
    assert response.status_code == 200, response.text
    return response.json()


def streamed(client: TestClient, question: str = QUESTION, **body) -> list[dict]:
    with client.stream("POST", "/v1/chat/completions", json={
            "model": "task", "messages": [{"role": "user", "content": question}], "stream": True, **body}) as response:
        assert response.status_code == 200
        lines = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def content_of(chunks: list[dict], index: int = 0) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c["choices"] and c["choices"][0]["index"] == index)


def test_kinds_follow_the_bench_definitions_with_the_question_covered():
    assert refused_kind(QUESTION, QUESTION) == "echo"
    assert refused_kind(QUESTION * 3, QUESTION) == "echo"
    assert refused_kind("𒌒𒉭ꙮ", QUESTION) == "debris"
    assert refused_kind("紧紧紧紧紧", "红烧肉怎么做？") == "debris"
    assert refused_kind("先焯水再小火慢炖", QUESTION) is None
    assert refused_kind(REFUSALS["zh"], QUESTION) is None
    assert refused_kind("", QUESTION) is None  # empty is not what the guard replaces
    # A fragment of a bare open question says nothing; in English too.
    assert question_cover("油腻", QUESTION) < 0.5 and refused_kind("油腻", QUESTION) == "echo"
    assert refused_kind("The novel Pride and Prejudice", "Who wrote the novel Pride and Prejudice?") == "echo"
    # An option of a choice question, a yes-answer restating a yes/no question: made of its words, answers.
    choice = "主变压器的额定频率是50Hz还是60Hz？"
    assert question_cover("是50Hz", choice) < 0.5 and refused_kind("是50Hz", choice) is None
    assert refused_kind("能吃葡萄", "仓鼠能吃葡萄吗？") is None
    assert refused_kind("仓鼠能吃葡萄吗", "仓鼠能吃葡萄吗？") == "echo"  # said back whole
    assert refused_kind("Yes, it is safe", "Is it safe to exercise with a mild cold?") is None
    # A span copied from a passage pasted into the message: every unit is in the message, not an echo.
    pasted = ("阅读材料，用简短的词语回答问题。\n材料：变压器顶层油温一般不宜经常超过85℃，强迫油循环风冷变压器的顶层油温"
              "不超过75℃，超过时应查明原因并采取降温措施，必要时降低负荷运行。\n问题：强迫油循环风冷变压器顶层油温上限是多少？\n答案：")
    assert refused_kind("不超过75℃", pasted) is None
    short = "阅读材料，用简短的词语回答问题。\n材料：燃气机组启停灵活，缺点是燃料成本较高。\n问题：燃气机组的缺点是什么？\n答案："
    assert refused_kind("燃料成本较高", short) is None  # a short passage is still a passage
    assert refused_kind("油腻", f"问题：{QUESTION}\n答案：") == "echo"  # the closed-book QA wording is bare


def test_an_echo_is_replaced_by_the_refusal_flagged_and_counted():
    client, _ = client_for(QUESTION)
    with client:
        choice = ask(client)["choices"][0]
        assert choice["message"]["content"] == REFUSALS["zh"]
        assert choice["message"]["refused"] == "echo" and choice["finish_reason"] == "stop"
        english = ask(client, "How do I make braised pork less greasy?")["choices"][0]["message"]
        assert english == {"role": "assistant", "content": QUESTION}  # not an echo of this question
        metrics = client.get("/metrics").text
        assert 'wattlm_closed_book_refusals_total{model="task",kind="echo"} 1' in metrics


def test_debris_in_english_gets_the_english_refusal():
    client, _ = client_for("%%% ### ꙮꙮ 𒌒")
    with client:
        message = ask(client, "How long should I boil an egg?")["choices"][0]["message"]
    assert message == {"role": "assistant", "content": REFUSALS["en"], "refused": "debris"}


def test_a_good_answer_keeps_openai_shape():
    client, _ = client_for("先焯水，再小火慢炖一小时。")
    with client:
        message = ask(client)["choices"][0]["message"]
        assert message == {"role": "assistant", "content": "先焯水，再小火慢炖一小时。"}
        assert 'wattlm_closed_book_refusals_total{' not in client.get("/metrics").text


@pytest.mark.parametrize(("tier", "guard"), [("industry", None), ("task", ClosedBookGuard(enabled=False))])
def test_other_tiers_and_a_guard_turned_off_pass_the_answer(tier, guard):
    client, _ = client_for(QUESTION, tier=tier, guard=guard)
    with client:
        assert ask(client)["choices"][0]["message"] == {"role": "assistant", "content": QUESTION}
        assert content_of(streamed(client)) == QUESTION


def test_a_streamed_echo_is_never_sent_only_the_refusal():
    client, _ = client_for(QUESTION)
    with client:
        chunks = streamed(client, stream_options={"include_usage": True})
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert content_of(chunks) == REFUSALS["zh"]
    refusal_delta = next(c["choices"][0]["delta"] for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content"))
    assert refusal_delta["refused"] == "echo"
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finishes == ["stop"] and chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_a_streamed_answer_arrives_whole_and_a_long_one_streams_on_past_the_buffer():
    client, _ = client_for("先焯水，再小火慢炖一小时。")
    with client:
        assert content_of(streamed(client)) == "先焯水，再小火慢炖一小时。"
    long_answer = "先把五花肉切块焯水去掉浮沫，再用少量油炒糖色，加入姜葱料酒和热水，小火慢炖一个小时以上，最后大火收汁。"
    client, _ = client_for(long_answer, guard=ClosedBookGuard(buffer_tokens=4))
    with client:
        chunks = streamed(client)
    assert content_of(chunks) == long_answer
    pieces = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(pieces) == len(long_answer)  # after the held-back prefix it streams piece by piece


def test_an_echo_past_the_buffer_is_cut_and_its_generation_closed():
    client, engine = client_for(QUESTION * 6, guard=ClosedBookGuard(buffer_tokens=8), delay=0.01)
    with client:
        chunks = streamed(client)
        assert content_of(chunks) == REFUSALS["zh"]
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]] == ["stop"]
        waited = 0
        while not engine.closed and waited < 300:  # the engine's generation is closed from its worker thread
            time.sleep(0.01)
            waited += 1
        assert engine.closed == 1 and engine.produced < len(QUESTION * 6)
        assert 'kind="echo"} 1' in client.get("/metrics").text


def test_each_of_n_choices_is_checked():
    client, _ = client_for(QUESTION)
    with client:
        body = ask(client, n=2)
        assert [c["message"]["refused"] for c in body["choices"]] == ["echo", "echo"]
        chunks = streamed(client, n=2)
    assert content_of(chunks, 0) == content_of(chunks, 1) == REFUSALS["zh"]
