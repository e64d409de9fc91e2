"""The served file's speed check (engines/batching/speed.py) on the real SmolLM2."""

import pytest

pytest.importorskip("llama_cpp")


def test_speed_check_times_raw_decode_and_the_engine_alone_and_together(smollm2_path):
    from wattlm.engines.batching.speed import SpeedCheck, measure

    speed = measure(smollm2_path, SpeedCheck(tokens=16, clients=3, repeats=1, threads=2))
    assert speed["file"] == smollm2_path.name and speed["clients"] == 3 and speed["repeats"] == 1
    for key in ("raw_tok_s", "single_t0_tok_s", "single_t08_tok_s", "concurrent_tok_s", "concurrent_ttft_p50_ms"):
        assert speed[key] > 0, key
    # One repeat: each share is the ratio of the speeds shown, up to their rounding to 0.1 (a few % when a
    # loaded machine makes a 16-token run slow).
    shown = lambda part, whole: pytest.approx(part / whole, rel=0.05, abs=0.05)  # noqa: E731
    assert speed["single_t0_pct_of_raw"] / 100 == shown(speed["single_t0_tok_s"], speed["raw_tok_s"])
    assert speed["single_t08_pct_of_raw"] / 100 == shown(speed["single_t08_tok_s"], speed["raw_tok_s"])
    assert speed["concurrent_x_single"] == shown(speed["concurrent_tok_s"], speed["single_t0_tok_s"])
