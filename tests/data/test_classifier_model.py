"""The trainable quality classifier: features, training with a held-out check, saving, the pipeline step."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wattlm.data import DataConfig, build_corpus
from wattlm.data.card import render_card
from wattlm.data.classifier_model import load_quality_model, text_features, train_quality_model
from wattlm.data.labelled import read_examples, read_jsonl_examples
from wattlm.errors import NotFound, WattError

from .helpers import sentence, write

LABELLED = Path(__file__).resolve().parents[2] / "examples" / "power-grid" / "quality" / "labelled.jsonl"
AD = "限时特价！！！全场电表低至三折，买一送一，数量有限先到先得，赶快拨打热线抢购吧，加微信领红包！！！"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    texts, labels = read_jsonl_examples(LABELLED)
    out = tmp_path_factory.mktemp("quality") / "quality.joblib"
    train_quality_model(texts, labels, out)
    return out


def test_features_are_cjk_aware():
    grams = text_features("变电站 Relay 13800001234！")
    assert {"变", "变电", "变电站", " relay ", "rel", "<digits:11>", "！"} <= set(grams)
    assert "站 r" not in grams  # no n-gram across a script boundary


def test_training_writes_model_and_card(model_path):
    card = json.loads(model_path.with_suffix(".json").read_text("utf-8"))
    assert card["positive_label"] == "high" and set(card["labels"]) == {"high", "low", "ad"}
    metrics = card["heldout"]
    assert metrics["heldout_examples"] == round(0.2 * card["examples"] + 0.4)
    assert metrics["keep"]["precision"] >= 0.8 and metrics["keep"]["recall"] >= 0.8
    assert not [p for p in model_path.parent.iterdir() if p.name.endswith(".tmp")]


def test_model_ranks_ads_below_technical_text(model_path):
    model = load_quality_model(model_path)
    good, ad, nav = model.scores([sentence(5) * 3, AD, "首页 | 新闻中心 | 联系我们 | 登录 | 注册 | 网站地图"])
    assert good > 0.5 > max(ad, nav)


def test_bad_training_data_is_a_one_line_error(tmp_path):
    with pytest.raises(WattError, match="at least two labels"):
        train_quality_model(["a"] * 6, ["high"] * 6, tmp_path / "m.joblib")
    with pytest.raises(WattError, match="no positive class"):
        train_quality_model(["a"] * 10, ["low"] * 5 + ["ad"] * 5, tmp_path / "m.joblib")
    with pytest.raises(WattError, match="too few"):
        train_quality_model(["a"] * 8, ["high"] * 6 + ["ad"] * 2, tmp_path / "m.joblib")
    bad = write(tmp_path / "bad.jsonl", '{"text": "好", "label": "high"}\n{oops\n')
    with pytest.raises(WattError, match="line 2: invalid JSON"):
        read_jsonl_examples(bad)
    with pytest.raises(NotFound, match="quality_model"):
        load_quality_model(tmp_path / "missing.joblib")
    write(tmp_path / "junk.joblib", "not a pickle")
    with pytest.raises(WattError, match="cannot load quality model"):
        load_quality_model(tmp_path / "junk.joblib")


def test_pipeline_drops_low_scores_and_reports_histogram(model_path, tmp_path):
    raw = tmp_path / "raw"
    for i in range(3):
        write(raw / f"rule{i}.txt", "\n".join(sentence(i * 5 + j) for j in range(4)))
    write(raw / "ad.txt", AD)
    config = DataConfig(min_chars=20, heldout_fraction=0.2, quality_filters=False, quality_model=model_path)
    report = build_corpus([raw], tmp_path / "out", config, progress=False)
    assert report.dropped == {"quality_classifier": 1}
    assert report.samples["dropped"][0]["source"] == "ad.txt"
    assert sum(row["docs"] for row in report.quality_score_histogram) == 4
    assert "filter_quality_classifier" in [step.name for step in report.steps]
    assert "Quality-classifier scores" in render_card(report)


def test_retrained_model_changes_the_cache_key(model_path, tmp_path):
    copy = tmp_path / "q.joblib"
    copy.write_bytes(model_path.read_bytes())
    config = DataConfig(quality_model=copy)
    before = config.cache_settings()
    copy.write_bytes(model_path.read_bytes() + b"\0")
    assert config.cache_settings() != before
    assert "workers" not in before and "executor" not in before


def test_cli_train_quality_from_folders(tmp_path):
    from wattlm.data.cli import data_app

    for i in range(6):
        write(tmp_path / "good" / f"g{i}.txt", "\n".join(sentence(i * 3 + j) for j in range(3)))
        write(tmp_path / "bad" / f"b{i}.txt", AD.replace("三折", f"{i + 1}折"))
    texts, labels = read_examples(None, tmp_path / "good", tmp_path / "bad")
    assert labels.count("good") == 6 and labels.count("bad") == 6
    out = tmp_path / "m" / "quality.joblib"
    result = CliRunner().invoke(data_app, ["train-quality", "--good", str(tmp_path / "good"), "--bad",
                                           str(tmp_path / "bad"), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.output)
    assert card["positive_label"] == "good" and card["labels"] == {"bad": 6, "good": 6}
    assert out.is_file() and out.with_suffix(".json").is_file()
