"""Replies in every shape a teacher sends: JSON (fenced, wrapped in chat), labelled lines, junk."""

import pytest

from wattlm.synth.parsing import Item, parse_reply, parse_verdict


@pytest.mark.parametrize("reply", [
    '{"pairs": [{"question": "How often?", "answer": "Once a quarter."}]}',
    'Sure! Here you go:\n```json\n[{"question": "How often?", "answer": "Once a quarter."}]\n```',
    'Here: {"question": "How often?", "answer": "Once a quarter."} Hope it helps.',
    '{"qa": [{"Question": "How often?", "A": "Once a quarter."}]}',
])
def test_json_replies(reply):
    assert parse_reply(reply, "qa", "json") == ([Item("How often?", "Once a quarter.")], None)


def test_labelled_lines_in_both_languages_and_several_pairs():
    reply = "问题：防火墙多远设一处？\n答案：每隔50米。\n问题2: 谁检查？\n答案2：巡视人员。"
    items, reason = parse_reply(reply, "qa", "lines")
    assert reason is None
    assert items == [Item("防火墙多远设一处？", "每隔50米。"), Item("谁检查？", "巡视人员。")]
    items, _ = parse_reply("Question: Who checks?\nAnswer: Patrol staff.", "qa", "lines")
    assert items == [Item("Who checks?", "Patrol staff.")]


def test_json_prompt_answered_in_lines_is_still_read():
    assert parse_reply("Q: Who checks?\nA: Patrol staff.", "qa", "json")[0] == [Item("Who checks?", "Patrol staff.")]


@pytest.mark.parametrize(("reply", "reply_form", "reason"), [
    (None, "json", "empty_reply"),
    ("   ", "lines", "empty_reply"),
    ("I cannot help with that.", "json", "not_json"),
    ('{"pairs": [{"question": "How often?"}]}', "json", "missing_answer"),
    ('{"pairs": [{"answer": "Once."}]}', "json", "missing_question"),
    ("问题：防火墙多远设一处？", "lines", "missing_answer"),
    ("答案：每隔50米。", "lines", "missing_question"),
    ("random words", "lines", "unparseable_reply"),
])
def test_malformed_replies_give_a_reason(reply, reply_form, reason):
    assert parse_reply(reply, "qa", reply_form) == ([], reason)


def test_summary_and_extraction():
    assert parse_reply('{"summary": "Barriers every 50 m."}', "summary", "json")[0] == [Item(None, "Barriers every 50 m.")]
    assert parse_reply("摘要：每隔50米设防火墙。", "summary", "lines")[0] == [Item(None, "每隔50米设防火墙。")]
    assert parse_reply("摘要：", "summary", "lines") == ([], "missing_summary")
    facts = parse_reply("要点：\n- 间隔：50米\n- 周期：每季度", "extract", "lines")[0]
    assert facts == [Item(None, "- 间隔：50米\n- 周期：每季度")]
    facts = parse_reply('{"facts": ["spacing: 50 m", {"interval": "quarterly"}]}', "extract", "json")[0]
    assert facts == [Item(None, "- spacing: 50 m\n- interval: quarterly")]
    assert parse_reply('{"facts": []}', "extract", "json") == ([], "missing_facts")


def test_verdicts():
    assert parse_verdict(" 是") is True and parse_verdict("Yes, it is.") is True
    assert parse_verdict("否") is False and parse_verdict("no") is False
    assert parse_verdict("maybe") is None and parse_verdict(None) is None


def test_roundtrip_answer_is_the_first_line_without_its_label():
    from wattlm.synth.parsing import parse_answer

    assert parse_answer(" 答案：50Hz。\n问题：…") == "50Hz"
    assert parse_answer("Answer: once a quarter.") == "once a quarter"
    assert parse_answer("  \n") is None and parse_answer(None) is None
