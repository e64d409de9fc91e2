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


TASK_SCORES = {
    "industry": {"domain": 40.0, "mc:grid-mc:acc": 38.0, "qa:grid-qa:char_f1": 30.0},
    "task": {"qa:grid-qa:char_f1": 37.5, "qa:other:char_f1": 10.0, "mc:grid-mc:acc": 36.0},
}


def test_higher_is_better_gates_between_roles_chosen_by_the_caller():
    gates = [Gate(metric="qa_char_f1", task="grid-qa", min_delta=5), Gate(metric="mc_acc", min_value=30),
             Gate(metric="qa_char_f1", task="grid-qa", min_delta=10)]
    results = check_gates(gates, TASK_SCORES, child="task", parent="industry")
    assert [r["passed"] for r in results] == [True, True, False]
    assert results[0]["limit"] == 35.0 and results[0]["delta"] == 7.5
    assert results[0]["message"] == "task qa_char_f1 37.50 >= industry 30.00 + 5 = 35.00"
    assert results[2]["message"] == "task qa_char_f1 37.50 < industry 30.00 + 10 = 40.00"


def test_task_gate_errors_are_clear():
    with pytest.raises(WattError, match="several eval sets.*task:"):
        check_gates([Gate(metric="qa_char_f1", min_value=1)], TASK_SCORES, child="task", parent="industry")
    with pytest.raises(WattError, match="no qa_rouge_l score for task"):
        check_gates([Gate(metric="qa_rouge_l", min_value=1)], TASK_SCORES, child="task", parent="industry")
    with pytest.raises(WattError, match="no mc_acc score on eval set 'x' for industry"):
        check_gates([Gate(metric="mc_acc", task="x", min_delta=1)], {"task": {"mc:x:acc": 1.0}, "industry": {}},
                    child="task", parent="industry")


@pytest.mark.parametrize("fields, message", [
    ({"metric": "qa_char_f1", "max_ratio": 1.0}, "min_delta or min_value"),
    ({"metric": "domain_ppl", "min_delta": 1.0}, "max_ratio or max_value"),
    ({"metric": "qa_char_f1", "min_delta": 1.0, "min_value": 2.0}, "exactly one"),
    ({"metric": "bleu", "min_value": 1.0}, "unknown metric 'bleu'"),
    ({"metric": "domain_ppl", "task": "x", "max_ratio": 1.0}, "task only applies"),
])
def test_gate_validation(fields, message):
    with pytest.raises(ValidationError, match=message):
        Gate(**fields)


def test_failed_gate_exit_code_is_4():
    from wattlm.eval.gates import GateFailed

    assert GateFailed("x").exit_code == 4
