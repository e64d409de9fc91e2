"""The Ray executor runs the same shard tasks as the local one: byte-identical output, same markers."""

import pytest

from wattlm.data import build_corpus
from wattlm.data.executors import local as executor

from ..test_pipeline import CONFIG
from .test_local import output_bytes, raw, reference  # noqa: F401  (module fixtures)

pytest.importorskip("ray")


def test_ray_executor_matches_local_and_resumes(raw, reference, tmp_path, monkeypatch):  # noqa: F811
    import ray

    out = tmp_path / "out"
    real = executor.run_shard
    ran: list[int] = []

    def stop_after_four(task):  # a local run interrupted after four read shards ...
        if len(ran) == 4:
            raise KeyboardInterrupt
        ran.append(task.index)
        real(task)

    monkeypatch.setattr(executor, "run_shard_hook", stop_after_four)
    with pytest.raises(KeyboardInterrupt):
        build_corpus([raw], out, CONFIG, progress=False)
    assert len(list((out / ".work" / "read").glob("*.done"))) == 4

    monkeypatch.setattr(executor, "run_shard_hook", real)
    # ... finished under Ray with 2 CPUs: the markers are shared, the result is the local run's.
    report = build_corpus([raw], out, CONFIG.model_copy(update={"executor": "ray", "workers": 2}), progress=False)
    assert output_bytes(out) == reference
    assert report.docs_kept > 0 and not (out / ".work").exists()
    assert not ray.is_initialized()  # the run started its own Ray and shut it down
