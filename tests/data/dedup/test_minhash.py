from wattlm.data.dedup.minhash import NearDedup, shingles
from wattlm.data.document import Document

from ..helpers import ARTICLE_PARAGRAPHS, load_bench

ARTICLE = "\n".join(ARTICLE_PARAGRAPHS)


def doc(i, text, lang="zh"):
    return Document(f"d{i}", text, f"{i}.txt", {"lang": lang})


def test_shingles_ignore_layout_and_punctuation():
    assert shingles("变电 站，巡视", "zh", char_n=3) == {"变电站", "电站巡", "站巡视"}
    assert shingles("The Relay, tests it.", "en", word_n=3) == {"the relay tests", "relay tests it"}
    assert shingles("短", "zh") == {"短"}


def test_near_copies_are_dropped_and_clustered():
    revised = ARTICLE.replace("今日", "昨日") + "\n各单位应于月底前报送执行情况。"
    reordered = "\n".join(reversed(ARTICLE_PARAGRAPHS))
    other = "配电自动化系统通过馈线终端采集开关状态，故障发生后主站自动定位故障区段并隔离，随后恢复非故障区段供电。" * 2
    step = NearDedup(threshold=0.7)
    kept = list(step([doc(0, ARTICLE), doc(1, other), doc(2, revised), doc(3, reordered)]))
    assert [d.id for d in kept] == ["d0", "d1"]
    assert step.dropped == {"near_duplicate": 2}
    [cluster] = step.report_extras()["near_dup_clusters"]
    assert cluster["kept_id"] == "d0" and cluster["kept_source"] == "0.txt"
    assert [d["source"] for d in cluster["dropped"]] == ["2.txt", "3.txt"]
    assert all(0.7 <= d["similarity"] <= 1.0 for d in cluster["dropped"])
    assert cluster["kept_example"].startswith(ARTICLE_PARAGRAPHS[0][:20])


def test_english_uses_word_shingles():
    text = "The protection engineer verifies the relay settings before energising new plant and logs each change."
    step = NearDedup(threshold=0.5)
    kept = list(step([doc(0, text, "en"), doc(1, text.replace("each", "every"), "en"), doc(2, "A different note about "
                      "vegetation clearance along the northern corridor.", "en")]))
    assert [d.id for d in kept] == ["d0", "d2"]


def test_bench_small_fixed_seed_meets_goal():
    result = load_bench("data_dedup_bench").evaluate(n_base=120, seed=5)
    assert result["true_pairs"] > 50
    assert result["f1"] >= 0.95 and result["precision"] >= 0.95
