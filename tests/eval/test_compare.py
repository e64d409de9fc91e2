from pathlib import Path

from wattlm.eval.compare import model_scores, render_html
from wattlm.registry import Artifact


def _model(metrics):
    return Artifact(id="mo-1", kind="model", name="m", tier="industry", format="hf", path=Path("."), created=0.0,
                    metrics=metrics)


def test_scores_include_task_scalars_and_pipeline_perplexities():
    scores = model_scores(_model({
        "qa:grid-qa:char_f1": 41.5, "qa:grid-qa": {"key": "k", "items": 40},
        "ppl:power-grid-corpus/heldout@da-1": {"ppl": 46.25, "tokens": 9000}, "train_tokens": 32768,
    }))
    assert scores == {"qa:grid-qa:char_f1": 41.5, "ppl:power-grid-corpus/heldout:ppl": 46.25}


def test_html_bars_scale_and_keep_same_named_models_apart():
    payload = {"models": [{"id": "mo-1", "name": "a", "tier": "foundation"}, {"id": "mo-2", "name": "a", "tier": "industry"}],
               "metrics": ["mc:x:acc"], "scores": {"mo-1": {"mc:x:acc": 20.0}, "mo-2": {"mc:x:acc": 40.0}}}
    page = render_html(payload)
    assert "a mo-1" in page and "a mo-2" in page and page.count("<rect") == 2
    assert "<td>20.00</td><td>40.00</td>" in page and "higher is better" in page
