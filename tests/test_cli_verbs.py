"""Each verb's happy path through the real CLI, on a tiny model: data -> train -> eval -> export -> lineage."""

import json
import subprocess
import sys

WATT = [sys.executable, "-m", "wattlm.cli"]


def watt_json(*args, home):
    done = subprocess.run(WATT + list(args) + ["--home", str(home), "--json"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_verbs_chain(tmp_path, tiny_model_dir):
    home = tmp_path / "ws"
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(6):
        (raw / f"doc{i}.txt").write_text(f"Feeder {i} was switched to the backup transformer after the relay "
                                         f"tripped; the crew checked the breaker and restored supply. " * 3)
    (raw / "doc0_copy.txt").write_text((raw / "doc0.txt").read_text())

    built = watt_json("data", "build", str(raw), "--out", str(tmp_path / "corpus"), "--heldout-fraction", "0.3",
                      "--name", "feeders", "--no-quality-filters", "--no-near-dedup", home=home)
    assert built["docs_in"] == 7 and built["docs_kept"] == 6 and built["dropped"] == {"exact_duplicate": 1}
    assert json.loads((tmp_path / "corpus" / "report.json").read_text())["docs_kept"] == 6

    watt_json("models", "add", str(tiny_model_dir), "--name", "tiny", home=home)
    trained = watt_json("train", "--model", "tiny", "--data", "feeders", "--name", "tiny-feeders", "--steps", "3",
                        "--seq-len", "32", "--batch-size", "2", home=home)
    assert trained["tier"] == "industry" and trained["metrics"]["train_steps"] == 3

    scored = watt_json("eval", "--model", "tiny-feeders", "--text", str(raw / "doc1.txt"), home=home)
    assert scored["ppl"] > 1 and scored["tokens"] > 10
    held = watt_json("eval", "--model", "tiny-feeders", "--data", "feeders", home=home)
    assert held["split"] == "heldout" and held["ppl"] > 1

    exports = watt_json("export", "--model", "tiny-feeders", "--quant", "q8_0", "--prompt", "Feeder", home=home)
    assert [e["quant"] for e in exports] == ["f16", "q8_0"]

    shown = watt_json("models", "show", "tiny-feeders", home=home)
    assert any(k.startswith("ppl:doc1.txt") for k in shown["metrics"]) and "export" in shown["metrics"]
    chain = watt_json("lineage", "tiny-feeders-q8_0", home=home)["chain"]
    assert [a["name"] for a in chain][-1] == "tiny-feeders-q8_0"
    assert {"tiny", "feeders", "tiny-feeders"} <= {a["name"] for a in chain}
    text = subprocess.run(WATT + ["lineage", "tiny-feeders-q8_0", "--home", str(home)], capture_output=True,
                          text=True, check=True).stdout
    assert "tiny-feeders" in text and "foundation" in text


def test_sft_from_a_jsonl_file(tmp_path, tiny_model_dir):
    home = tmp_path / "ws"
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "What trips a breaker?", "response": "A protection relay."},
        {"prompt": "What is a work permit?", "response": "Written approval to work on equipment."},
    ]) + "\n")
    watt_json("models", "add", str(tiny_model_dir), "--name", "tiny", "--tier", "industry", home=home)
    task = watt_json("train", "--model", "tiny", "--data", str(qa), "--name", "tiny-qa", "--method", "sft",
                     "--chat-template", "chatml", "--steps", "2", "--seq-len", "64", "--batch-size", "2", home=home)
    assert task["tier"] == "task" and task["metrics"]["train_steps"] == 2
    bad = subprocess.run(WATT + ["train", "--model", "tiny", "--data", str(qa), "--name", "x", "--method", "dpo",
                                 "--home", str(home)], capture_output=True, text=True)
    assert bad.returncode != 0 and "error: watt train options: field method" in bad.stderr
