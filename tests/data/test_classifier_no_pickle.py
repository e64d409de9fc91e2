"""The quality model file cannot run code: it is an .npz of numbers, and a pickle is refused unless the
operator opts in (WATT_ALLOW_PICKLE=1)."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest

from wattlm.data.classifier_model import (
    ALLOW_PICKLE_ENV,
    FORMAT_VERSION,
    QualityModel,
    build_pipeline,
    load_quality_model,
    save_quality_model,
)
from wattlm.data.labelled import read_jsonl_examples
from wattlm.errors import WattError

from .test_classifier_model import AD, LABELLED


class Boom:
    """A pickle payload that would run code when loaded."""

    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle code ran')",))


@pytest.fixture(scope="module")
def fitted():
    texts, labels = read_jsonl_examples(LABELLED)
    return texts, build_pipeline(0).fit(texts, labels)


def test_npz_model_scores_like_the_sklearn_pipeline(fitted, tmp_path):
    texts, pipeline = fitted
    path = tmp_path / "quality.npz"
    save_quality_model(QualityModel.from_pipeline(pipeline, "high"), path)
    assert zipfile.is_zipfile(path)
    with np.load(path, allow_pickle=False) as arrays:  # plain arrays only: no object pickles inside
        assert {arrays[name].dtype.kind for name in arrays.files} <= {"f", "U"}
    model = load_quality_model(path)
    column = list(pipeline.classes_).index("high")
    sample = texts[:10] + [AD]
    expected = pipeline.predict_proba(sample)[:, column]
    assert np.allclose(model.scores(sample), expected, atol=1e-12)


def test_binary_model_round_trips(tmp_path):
    texts = ["变电站巡视记录完整规范。"] * 6 + ["限时特价！！！加微信领红包！！！"] * 6
    labels = ["good"] * 6 + ["bad"] * 6
    pipeline = build_pipeline(0).fit(texts, labels)
    save_quality_model(QualityModel.from_pipeline(pipeline, "good"), tmp_path / "m.npz")
    model = load_quality_model(tmp_path / "m.npz")
    column = list(pipeline.classes_).index("good")
    assert np.allclose(model.scores(texts), pipeline.predict_proba(texts)[:, column], atol=1e-12)


def test_a_pickle_is_refused_without_the_opt_in(tmp_path, monkeypatch):
    monkeypatch.delenv(ALLOW_PICKLE_ENV, raising=False)
    hostile = tmp_path / "quality.joblib"
    hostile.write_bytes(pickle.dumps({"format": FORMAT_VERSION, "pipeline": Boom(), "positive": "high"}))
    with pytest.raises(WattError, match=f"pickle.*{ALLOW_PICKLE_ENV}=1"):
        load_quality_model(hostile)


def test_an_old_joblib_model_loads_with_the_opt_in(fitted, tmp_path, monkeypatch):
    import joblib

    _, pipeline = fitted
    old = tmp_path / "old.joblib"
    joblib.dump({"format": FORMAT_VERSION, "pipeline": pipeline, "positive": "high"}, old)
    monkeypatch.setenv(ALLOW_PICKLE_ENV, "1")
    assert load_quality_model(old).scores([AD])[0] < 0.5


def test_a_crafted_npz_with_an_object_array_is_refused_not_unpickled(tmp_path):
    crafted = tmp_path / "crafted.npz"
    with open(crafted, "wb") as handle:
        np.savez(handle, meta=np.array([Boom()], dtype=object), coef=np.zeros(1), intercept=np.zeros(1),
                 classes=np.array(["a"]))
    with pytest.raises(WattError, match="cannot load quality model"):
        load_quality_model(crafted)
