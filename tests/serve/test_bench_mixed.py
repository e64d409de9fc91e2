"""bench/mixed_load.py: its scenario runs on this tree and times every case."""

import pytest

pytestmark = pytest.mark.integration


def test_mixed_load_scenario_times_every_case(smollm2_path):
    pytest.importorskip("llama_cpp")
    from tests.data.helpers import load_bench

    bench = load_bench("mixed_load")
    result = bench._scenario(smollm2_path)
    generation = [case for case in bench.CASES if case != "scoring_tok_s"]
    assert set(result) == set(bench.CASES) | {f"{case}_cpu_ms_per_token" for case in generation}
    assert all(value > 0 for value in result.values()), result
