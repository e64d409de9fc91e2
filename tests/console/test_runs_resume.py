"""A console run killed mid-training is marked interrupted, and resume continues it from its checkpoint."""

from __future__ import annotations

import os
import signal
import time

from fastapi.testclient import TestClient

from tests.console.test_runs_browser import STEPS, workspace  # noqa: F401 - the tiny workspace fixture
from wattlm.console.app import create_console
from wattlm.jobs import Jobs

API = "/console-api"


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_killed_run_is_interrupted_then_resumes_from_its_checkpoint(workspace):  # noqa: F811
    ws, examples = workspace
    app = create_console(ws)
    app.state.examples_dir = examples
    jobs = Jobs(ws)
    with TestClient(app) as client:
        page = client.get("/runs").text
        start = page.index('id="console-csrf">') + len('id="console-csrf">')
        client.headers["X-CSRF-Token"] = page[start:page.index("</script>", start)].strip('"')
        run = client.post(f"{API}/runs", json={"example": "tiny/recipe.yaml"}).json()["run"]
        # Checkpoints every 20 steps: kill once one is surely written (step 22 or later).
        _wait(lambda: (jobs.get(run["id"]).step or 0) >= 22, 600, "training past the first checkpoint")
        os.killpg(jobs.get(run["id"]).pid, signal.SIGKILL)
        _wait(lambda: jobs.get(run["id"]).status == "interrupted", 60, "the run to be marked interrupted")
        assert "signal 9" in jobs.get(run["id"]).error
        killed_at = max(e.data["step"] for e in jobs.events(run["id"], kinds=("train_step",)))

        resumed = client.post(f"{API}/runs/{run['id']}/resume")
        assert resumed.status_code == 200 and resumed.json()["run"]["attempt"] == 2
        resume_seq = jobs.events(run["id"], kinds=("resume",))[0].seq
        _wait(lambda: jobs.get(run["id"]).status not in ("queued", "running"), 900, "the resumed run to end")
    job = jobs.get(run["id"])
    assert job.status == "succeeded", job.error
    after = [e.data["step"] for e in jobs.events(run["id"], after=resume_seq, kinds=("train_step",))]
    # The second attempt starts right after a checkpoint (every 20 steps), not at step 1, and reaches the end.
    # A step's event can trail its checkpoint (killed at 39 by the events with step 40 already saved), so
    # the resumed step may be one past the last event, never more than a checkpoint's distance past it.
    assert (after[0] - 1) % 20 == 0 and 20 <= after[0] - 1 <= killed_at + 20 and after[-1] == STEPS
    stages = [e.data["stage"] for e in jobs.events(run["id"], after=resume_seq, kinds=("stage",))]
    assert stages[:3] == ["foundation", "data", "industry train"]
    assert "(cached)" in "".join(e.data["text"] for e in jobs.events(run["id"], after=resume_seq, kinds=("message",)))
