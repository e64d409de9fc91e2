"""KB settings: fusion knobs are search-time settings; a KB built before weighted fusion gets today's."""

from wattlm.kb.config import KbConfig


def test_a_kb_built_before_weighted_fusion_searches_with_todays_fusion_defaults():
    old = {"max_chars": 200, "overlap_chars": 40, "min_chars": 5, "embed_batch": 16, "rrf_k": 60, "candidates": 50,
           "superseded_penalty": 0.5}
    config = KbConfig.of_kb(old)
    assert (config.rrf_k, config.bm25_weight, config.dense_weight) == (1, 2.0, 1.0)
    assert config.max_chars == 200  # what the KB was built with stays


def test_a_kb_with_fusion_settings_keeps_them():
    stored = KbConfig(rrf_k=20, bm25_weight=1.0, dense_weight=3.0).model_dump()
    assert KbConfig.of_kb(stored) == KbConfig(rrf_k=20, bm25_weight=1.0, dense_weight=3.0)
    assert "bm25_weight" not in KbConfig().cache_settings()  # changing a weight never rebuilds a KB
