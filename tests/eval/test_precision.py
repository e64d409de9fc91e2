"""bf16 scoring: its own stored-score keys, scores close to fp32, and the eval CLI option."""

import pytest

from wattlm.eval.runner import cache_key
from wattlm.eval.task import TaskSettings
from wattlm.eval.tasks import MultipleChoiceTask
from wattlm.models.hf import load_causal_lm, load_tokenizer
from wattlm.registry import Artifact
from wattlm.shared.precision import scoring_precision


def _task(tmp_path):
    records = [{"question": "变压器油的作用是什么？", "choices": ["绝缘和散热", "照明", "通信"], "answer": 0},
               {"question": "What trips the breaker?", "choices": ["a relay", "the paint"], "answer": 0}]
    return MultipleChoiceTask.from_records(records, tmp_path / "mc.jsonl", TaskSettings(), "mc")


def test_precision_is_part_of_the_key_and_fp32_keeps_the_old_one(tmp_path):
    from wattlm.cache import content_key, fingerprint

    model = Artifact(id="mo-1", kind="model", name="m", tier=None, format=None, path=tmp_path, created=0.0,
                     cache_key="k")
    task = _task(tmp_path)
    old = fingerprint("eval", content_key(model), task.kind, task.name, task.content_hash())
    assert cache_key(model, task) == old == cache_key(model, task, "fp32")
    assert cache_key(model, task, "bf16") != old


def test_bf16_scores_are_close_to_fp32(tiny_gemma, tmp_path):
    model, tokenizer = load_causal_lm(tiny_gemma), load_tokenizer(tiny_gemma)
    task = _task(tmp_path)
    requests = [(i.prompt, i.delimiter + c) for i in task.items for c in i.choices]
    from wattlm.eval.lm import loglikelihoods

    exact = loglikelihoods(model, tokenizer, requests)
    with scoring_precision("bf16"):
        fast = loglikelihoods(model, tokenizer, requests)
    assert [a.tokens for a in exact] == [b.tokens for b in fast]
    assert any(a.logprob != b.logprob for a, b in zip(exact, fast, strict=True))  # bf16 did run
    for a, b in zip(exact, fast, strict=True):
        assert b.logprob == pytest.approx(a.logprob, rel=0.02)


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        with scoring_precision("fp8"):
            pass
