"""The runs JSON API and pages (`wattlm.console.runs`): list, start, events, SSE, cancel, resume, uploads."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from wattlm.console.app import create_console
from wattlm.console.jobs_uploads import MAX_UPLOAD_BYTES, safe_name
from wattlm.errors import WattError
from wattlm.jobs import Jobs
from wattlm.registry import Registry

from .test_accessibility import Controls, contrast

API = "/console-api"
BAD_RECIPE = "name: broken\nfoundation: no-such-model\ndata: {inputs: [docs]}\n"


@pytest.fixture
def ws(tmp_path):
    Registry(tmp_path / "ws").close()  # a workspace, as `watt console` opens
    return tmp_path / "ws"


@pytest.fixture
def examples(tmp_path):
    folder = tmp_path / "examples" / "broken"
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "a.txt").write_text("Substation patrol checks the breaker counters. " * 5)
    (folder / "recipe.yaml").write_text(BAD_RECIPE)
    (folder / "notes.yaml").write_text("just: notes\n")  # no foundation: not a recipe, not listed
    return tmp_path / "examples"


@pytest.fixture
def client(ws, examples):
    app = create_console(ws)
    app.state.examples_dir = examples
    with TestClient(app) as test_client:
        page = test_client.get("/runs")
        assert page.status_code == 200
        test_client.headers["X-CSRF-Token"] = _csrf(page.text)
        yield test_client


def _csrf(html: str) -> str:
    start = html.index('id="console-csrf">') + len('id="console-csrf">')
    return json.loads(html[start:html.index("</script>", start)])


def _wait_final(client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"{API}/runs/{job_id}").json()["run"]
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {job_id} did not end within {timeout} s")


def test_examples_lists_recipes_only(client):
    assert client.get(f"{API}/examples").json() == {
        "examples": [{"path": "broken/recipe.yaml", "name": "broken", "foundation": "no-such-model"}]}


def test_state_changing_calls_need_the_csrf_token(client):
    answer = client.post(f"{API}/runs", json={"example": "broken/recipe.yaml"}, headers={"X-CSRF-Token": "wrong"})
    assert answer.status_code == 403
    assert client.post(f"{API}/uploads", headers={"X-CSRF-Token": ""}).status_code == 403
    assert client.get(f"{API}/runs").json() == {"runs": []}


def test_start_refuses_unknown_examples_and_paths_outside_the_folder(client):
    for name in ("../../etc/passwd", "broken/notes.yaml", "/etc/hosts"):
        answer = client.post(f"{API}/runs", json={"example": name})
        assert answer.status_code == 404 and "no example recipe" in answer.json()["error"]
    assert client.post(f"{API}/runs", json={}).status_code == 422


def test_a_started_run_that_fails_is_recorded_with_its_error_log_and_events(client, ws):
    answer = client.post(f"{API}/runs", json={"example": "broken/recipe.yaml"})
    assert answer.status_code == 201
    run = answer.json()["run"]
    assert run["origin"] == "console" and run["status"] in ("queued", "running") and run["pid"]
    done = _wait_final(client, run["id"])
    assert done["status"] == "failed" and "no-such-model" in done["error"]
    events = client.get(f"{API}/runs/{run['id']}/events").json()
    assert events["events"][-1]["kind"] == "end" and events["next"] == events["events"][-1]["seq"]
    assert client.get(f"{API}/runs/{run['id']}/events", params={"after": events["next"]}).json()["events"] == []
    assert "no-such-model" in (ws / done["log"]).read_text()
    listed = client.get(f"{API}/runs").json()["runs"]
    assert [r["id"] for r in listed] == [run["id"]]
    page = client.get(f"/runs/{run['id']}")
    assert page.status_code == 200 and "no-such-model" in page.text and 'id="run-resume"' in page.text


def test_stream_sends_events_from_an_offset_then_done(client, ws, tmp_path):
    jobs = Jobs(ws)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\n")
    job = jobs.create(recipe, "r", origin="cli")
    for step in range(1, 4):
        jobs.append(job.id, "train_step", {"step": step, "steps": 3, "loss": 1.0})
    jobs.log_path(job).write_text("line one\nline two\n")
    jobs.finish(job.id, "succeeded")
    with client.stream("GET", f"{API}/runs/{job.id}/stream", params={"after": 1}) as stream:
        body = "".join(stream.iter_text())
    messages = [m for m in body.split("\n\n") if m.strip()]
    kinds = [m.split("event: ", 1)[1].split("\n", 1)[0] for m in messages]
    assert kinds == ["progress", "progress", "progress", "job", "log", "done"]
    assert messages[0].startswith("id: 2\n") and '"seq": 4' in messages[2] and '"kind": "end"' in messages[2]
    assert "line two" in messages[4] and '"status": "succeeded"' in messages[5]
    with client.stream("GET", f"{API}/runs/{job.id}/stream", headers={"Last-Event-ID": "4"}) as stream:
        again = "".join(stream.iter_text())
    assert "event: progress" not in again and "event: done" in again


HOLDER = textwrap.dedent("""
    import sys, time
    from wattlm.jobs import Jobs
    jobs = Jobs(sys.argv[1])
    with jobs.running(sys.argv[2]):
        print("holding", flush=True)
        time.sleep(120)
""")


def test_cancel_signals_the_process_group_and_resume_requeues(client, ws, examples, monkeypatch):
    jobs = Jobs(ws)
    job = jobs.create(examples / "broken" / "recipe.yaml", "broken", origin="console")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(ws), job.id], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        jobs.set_pid(job.id, holder.pid, own_group=True)
        answer = client.post(f"{API}/runs/{job.id}/cancel")
        assert answer.status_code == 200 and answer.json()["run"]["status"] == "cancelled"
        assert holder.wait(timeout=30) == -signal.SIGTERM
    finally:
        if holder.poll() is None:
            holder.kill()
    assert client.post(f"{API}/runs/{job.id}/cancel").status_code == 400  # nothing left to cancel
    spawned = []
    monkeypatch.setattr("wattlm.console.jobs_spawn.spawn", lambda jobs, job: spawned.append(job.id) or job)
    answer = client.post(f"{API}/runs/{job.id}/resume")
    assert answer.status_code == 200 and answer.json()["run"]["status"] == "queued"
    assert answer.json()["run"]["attempt"] == 2 and spawned == [job.id]
    assert client.post(f"{API}/runs/{job.id}/resume").status_code == 400  # queued: not resumable


def test_resume_refuses_a_recipe_changed_since_the_run(client, ws, examples):
    jobs = Jobs(ws)
    job = jobs.create(examples / "broken" / "recipe.yaml", "broken", origin="console")
    jobs.finish(job.id, "interrupted")
    (examples / "broken" / "recipe.yaml").write_text(BAD_RECIPE + "# edited\n")
    answer = client.post(f"{API}/runs/{job.id}/resume")
    assert answer.status_code == 400 and "changed since the run started" in answer.json()["error"]


def test_a_server_start_marks_runs_whose_process_is_gone_interrupted(client, ws, tmp_path):
    jobs = Jobs(ws)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\n")
    job = jobs.create(recipe, "r", origin="cli")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(ws), job.id], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    assert client.get(f"{API}/runs").json()["runs"][0]["status"] == "running"
    holder.kill()
    holder.wait()
    assert client.get(f"{API}/runs").json()["runs"][0]["status"] == "interrupted"
    assert "interrupted" in client.get("/runs").text


def test_upload_saves_files_atomically_under_the_workspace_and_starts_the_run(client, ws):
    upload = client.post(f"{API}/uploads").json()["upload"]
    assert client.put(f"{API}/uploads/{upload}/recipe", params={"name": "my recipe.yaml"},
                      content=BAD_RECIPE.encode()).json() == {"name": "recipe.yaml", "role": "recipe",
                                                              "bytes": len(BAD_RECIPE.encode())}
    saved = client.put(f"{API}/uploads/{upload}/doc", params={"name": "../../变电站 巡视.txt"}, content=b"patrol " * 10)
    assert saved.json()["name"] == "变电站_巡视.txt"
    assert (ws / "uploads" / ".incoming" / upload / "docs" / "变电站_巡视.txt").read_bytes() == b"patrol " * 10
    for name in ("..", ".hidden", "///", ""):
        assert client.put(f"{API}/uploads/{upload}/doc", params={"name": name}, content=b"x").status_code == 400
    assert client.put(f"{API}/uploads/{upload}/secrets", params={"name": "a.txt"}, content=b"x").status_code == 400
    assert client.put(f"{API}/uploads/../../etc/doc", params={"name": "a.txt"}, content=b"x").status_code in (400, 404)
    run = client.post(f"{API}/runs", json={"upload": upload})
    assert run.status_code == 201
    assert run.json()["run"]["recipe"] == str(ws / "uploads" / upload / "recipe.yaml")
    assert not (ws / "uploads" / ".incoming" / upload).exists()
    assert client.post(f"{API}/runs", json={"upload": upload}).status_code == 400  # sealed once
    _wait_final(client, run.json()["run"]["id"])


def test_upload_over_the_cap_is_refused_and_leaves_no_file(client, ws, monkeypatch):
    monkeypatch.setattr("wattlm.console.jobs_uploads.MAX_UPLOAD_BYTES", 1000)
    upload = client.post(f"{API}/uploads").json()["upload"]
    answer = client.put(f"{API}/uploads/{upload}/doc", params={"name": "big.txt"}, content=b"x" * 2000)
    assert answer.status_code == 413
    assert list((ws / "uploads" / ".incoming" / upload / "docs").iterdir()) == []
    no_recipe = client.post(f"{API}/runs", json={"upload": upload})
    assert no_recipe.status_code == 400 and "no recipe file" in no_recipe.json()["error"]
    assert MAX_UPLOAD_BYTES > 1000


def test_safe_name_keeps_one_plain_component():
    assert safe_name("C:\\Users\\me\\报告 2024.pdf") == "报告_2024.pdf"
    assert safe_name("a/b/c.md") == "c.md"
    for bad in ("..", ".env", "", "/", "._"):
        with pytest.raises(WattError):
            safe_name(bad)


def test_unknown_run_is_404_on_pages_and_api(client):
    assert client.get(f"{API}/runs/nope").status_code == 404
    assert client.get(f"{API}/runs/nope/events").status_code == 404
    assert client.get(f"{API}/runs/nope/stream").status_code == 404
    assert client.get("/runs/nope").status_code == 404


def test_runs_pages_are_labelled_and_their_badges_readable(client, ws, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\n")
    job = Jobs(ws).create(recipe, "r", origin="cli")
    for path in ("/runs", f"/runs/{job.id}"):
        page = Controls()
        page.feed(client.get(path).text)
        assert page.h1 == 1, path
        for control in page.controls:
            assert control.get("id") in page.label_for or control.get("aria-labelledby"), f"{path}: {control}"
        for button in page.buttons:
            assert button["text"], f"{path}: a button without a name"
    css = (Path(__file__).resolve().parents[2] / "src/wattlm/console/static/runs.css").read_text()
    badges = re.findall(r"background: (#[0-9a-f]{6}); color: (#[0-9a-f]{6})", css)
    assert len(badges) >= 5 and all(contrast(fg, bg) >= 4.5 for bg, fg in badges)


def test_runs_page_reads_in_chinese(client):
    client.cookies.set("watt_lang", "zh")
    page = client.get("/runs").text
    assert "开始运行" in page and "全部运行" in page and '"js.runs.status.running": "运行中"' in page
