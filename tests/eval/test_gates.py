import pytest
from pydantic import ValidationError

from wattlm.errors import WattError
from wattlm.eval.gates import Gate, check_gates

SCORES = {"foundation": {"domain": 100.0, "general": 50.0}, "industry": {"domain": 40.0, "general": 52.0}}


def test_ratio_and_value_gates():
    results = check_gates([Gate(metric="domain_ppl", max_ratio=0.8), Gate(metric="general_ppl", max_ratio=1.03),
                           Gate(metric="domain_ppl", max_value=30)], SCORES)
    assert [r["passed"] for r in results] == [True, False, False]
    assert results[0]["limit"] == 80.0 and results[0]["ratio"] == 0.4
    assert "52.00 > 1.03 x foundation 50.00 = 51.50" in results[1]["message"]


def test_gate_needs_one_limit_and_its_scores():
    with pytest.raises(ValidationError):
        Gate(metric="domain_ppl")
    with pytest.raises(ValidationError):
        Gate(metric="domain_ppl", max_ratio=1, max_value=2)
    with pytest.raises(WattError, match="eval.general"):
        check_gates([Gate(metric="general_ppl", max_ratio=1.0)], {"foundation": {"domain": 1}, "industry": {"domain": 1}})
