from wattlm.kb.calibrate import OFF_TOPIC, _pseudo_questions
from wattlm.kb.index import load_index


def test_threshold_lies_between_off_topic_and_in_scope(tiny_kb):
    _, kb, _ = tiny_kb
    threshold = load_index(kb.path).meta["threshold"]
    assert threshold["off_topic_p90"] <= threshold["value"] <= max(threshold["in_scope_p10"], threshold["off_topic_p90"])
    assert kb.metrics["threshold"] == threshold["value"]


def test_pseudo_questions_are_seeded():
    from wattlm.kb.chunking import Chunk

    chunks = [Chunk(str(i), "d", "s", "t", "h", 0, 10, f"第{i}条规定的内容比较长一些。其次还有一句话。") for i in range(20)]
    assert _pseudo_questions(chunks, 5, seed=0) == _pseudo_questions(chunks, 5, seed=0)
    assert len(OFF_TOPIC) >= 20
