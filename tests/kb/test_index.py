import numpy as np
import pytest

from wattlm.errors import NotFound, WattError
from wattlm.kb.chunking import Chunk
from wattlm.kb.embed import text_hash
from wattlm.kb.index import KbIndex, load_index
from wattlm.kb.retrieve import search


def _index(n: int) -> KbIndex:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk(f"c{i}", "d", f"doc{i}.md", "标题", "一、范围", 0, 8, f"第{i}条 电容器组第{i}项要求。") for i in range(n)]
    return KbIndex(chunks, vectors, {"name": "t", "threshold": {"value": 0.5}})


def test_save_and_load_round_trip(tmp_path):
    index = _index(4)
    index.save(tmp_path / "kb")
    loaded = load_index(tmp_path / "kb")
    assert [c.to_record() for c in loaded.chunks] == [c.to_record() for c in index.chunks]
    assert loaded.vectors.dtype == np.float32 and np.allclose(loaded.vectors, index.vectors, atol=1e-3)
    assert loaded.meta["threshold"] == {"value": 0.5}
    hits = search(loaded, "电容器组第2项要求", k=1, mode="bm25", check_support=False)
    assert hits[0].source == "doc2.md"
    assert set(index.known_vectors()) == {text_hash(c.embed_text())
                                          for c in index.chunks}


def test_damaged_or_missing_folders_are_named(tmp_path):
    with pytest.raises(NotFound, match="no kb.json"):
        load_index(tmp_path)
    index = _index(3)
    index.save(tmp_path / "kb")
    np.save(tmp_path / "kb" / "vectors.npy", np.zeros((2, 384), np.float16))
    with pytest.raises(WattError, match="3 chunks but 2 vectors"):
        load_index(tmp_path / "kb")


def test_an_empty_kb_cannot_be_searched():
    with pytest.raises(WattError, match="knowledge base t is empty"):
        search(KbIndex([], np.zeros((0, 384), np.float32), {"name": "t"}), "问题")
