"""Two `watt run` of one recipe started together on one workspace: both finish, nothing is made twice.

Each stage goes through `Registry.find_or_produce`, whose key lock makes the second run wait for the
first's artifact and reuse it; scores are written under a per-model lock.
"""

import json
import subprocess
import sys
from collections import Counter

from wattlm.models.store import add_model
from wattlm.registry import Registry

from .test_pipeline import recipe_file  # noqa: F401 (a fixture)


def test_two_concurrent_runs_register_each_artifact_once(recipe_file, tiny_model_dir, tmp_path):  # noqa: F811
    home = tmp_path / "ws"
    add_model(Registry(home), str(tiny_model_dir), name="tiny-base")
    command = [sys.executable, "-m", "wattlm.cli", "run", str(recipe_file), "--home", str(home), "--json", "--quiet"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=900) for run in runs]
    for run, (_, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr[-3000:]
    summaries = [json.loads(stdout) for stdout, _ in outputs]
    assert summaries[0]["artifacts"] == summaries[1]["artifacts"]
    assert summaries[0]["scores"] == summaries[1]["scores"]

    registry = Registry(home)
    counts = Counter((a.kind, a.name) for a in registry.list())
    assert counts.pop(("report", "tiny-run")) == 2  # each run writes its own report
    # The recipe's replay and general text are one folder: one dataset (same content, same key).
    assert counts == {("model", "tiny-base"): 1, ("dataset", "tiny-corpus"): 1, ("dataset", "tiny-replay"): 1,
                      ("model", "tiny-industry"): 1,
                      ("export", "tiny-industry-f16"): 1, ("export", "tiny-industry-q8_0"): 1}
    industry = registry.get(summaries[0]["artifacts"]["industry"])
    assert {"ppl:tiny-corpus/heldout:ppl", "ppl:tiny-replay/all:ppl"} <= set(industry.metrics)
