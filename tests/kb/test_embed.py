import numpy as np

from wattlm.kb.embed import embed_passages, text_hash

TEXTS = ["变压器轻瓦斯保护动作", "电容器组退出运行", "Zone 1 must trip within 30 ms", "蓄电池室严禁烟火", "无人机巡检"]


def test_vectors_are_normalised_and_aligned(tmp_path):
    vectors, embedded = embed_passages(TEXTS, tmp_path / "work", batch=2)
    assert vectors.shape == (5, 384) and embedded == 5
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert len(list((tmp_path / "work").glob("batch-*.npz"))) == 3


def test_saved_batches_and_known_vectors_are_not_embedded_again(tmp_path):
    work = tmp_path / "work"
    first, _ = embed_passages(TEXTS[:3], work, batch=2)
    # A rerun (after a crash) finds the saved batches; `known` (a previous KB version) covers another text.
    known = {text_hash(TEXTS[3]): first[0]}
    again, embedded = embed_passages(TEXTS, work, batch=2, known=known)
    assert embedded == 1  # only TEXTS[4]
    assert np.allclose(again[:3], first)
    assert np.allclose(again[3], first[0])


def test_a_torn_batch_file_is_redone(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "batch-000000.npz").write_bytes(b"not a zip")
    _, embedded = embed_passages(TEXTS[:2], work, batch=2)
    assert embedded == 2
