"""Job rows and progress events (`wattlm.jobs`) and their recording from a run (`wattlm.run.recording`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from wattlm.errors import WattError
from wattlm.jobs import Jobs
from wattlm.run.recording import JobRecorder, recorded_run
from wattlm.shared.progress import emit, listening, stage_started


@pytest.fixture
def ws(tmp_path):
    return tmp_path / "ws"


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("name: tiny\n")
    return path


def test_a_job_goes_queued_running_succeeded_and_keeps_its_events(ws, recipe):
    jobs = Jobs(ws)
    job = jobs.create(recipe, "tiny", origin="cli")
    assert job.status == "queued" and job.log == f"jobs/{job.id}/log.txt" and (ws / job.log).exists()
    with jobs.running(job.id) as running:
        assert running.status == "running" and running.pid == os.getpid()
        for step in range(1, 6):
            jobs.append(job.id, "train_step", {"step": step})
    assert jobs.finish(job.id, "succeeded", result={"report_html": "r.html"})
    done = jobs.get(job.id)
    assert done.status == "succeeded" and done.finished >= done.started and done.result == {"report_html": "r.html"}
    assert [e.seq for e in jobs.events(job.id)] == [1, 2, 3, 4, 5, 6]
    tail = jobs.events(job.id, after=4)
    assert [(e.seq, e.kind) for e in tail] == [(5, "train_step"), (6, "end")] and tail[0].data == {"step": 5}
    assert jobs.events(job.id, after=6) == []
    assert not jobs.finish(job.id, "failed")  # final is final


def test_cancel_first_wins_over_a_later_finish(ws, recipe):
    jobs = Jobs(ws)
    job = jobs.create(recipe, "tiny", origin="console")
    assert jobs.finish(job.id, "cancelled")
    with pytest.raises(WattError, match="cancelled, not queued"):
        with jobs.running(job.id):
            pass
    assert not jobs.finish(job.id, "succeeded") and jobs.get(job.id).status == "cancelled"


def test_only_an_unsuccessful_job_resumes_and_its_events_continue(ws, recipe):
    jobs = Jobs(ws)
    job = jobs.create(recipe, "tiny", origin="console")
    with pytest.raises(WattError, match="only a failed, cancelled or interrupted run resumes"):
        jobs.requeue(job.id)
    jobs.finish(job.id, "interrupted")
    again = jobs.requeue(job.id)
    assert again.status == "queued" and again.attempt == 2 and again.finished is None
    assert [e.kind for e in jobs.events(job.id)] == ["end", "resume"]


HOLDER = textwrap.dedent("""
    import sys, time
    from wattlm.jobs import Jobs
    jobs = Jobs(sys.argv[1])
    with jobs.running(sys.argv[2]):
        print("holding", flush=True)
        time.sleep(60)
""")


def _hold(ws, job_id) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(ws), job_id], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_a_running_job_whose_process_died_is_marked_interrupted(ws, recipe):
    jobs = Jobs(ws)
    job = jobs.create(recipe, "tiny", origin="cli")
    holder = _hold(ws, job.id)
    try:
        assert jobs.get(job.id).status == "running" and jobs.alive(jobs.get(job.id))
        assert jobs.sweep() == []
        with pytest.raises(WattError, match="already being run by another process"):
            with jobs.running(job.id):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert jobs.sweep() == [job.id]
    assert jobs.get(job.id).status == "interrupted" and jobs.events(job.id)[-1].data["status"] == "interrupted"


def test_a_queued_job_is_interrupted_only_once_its_spawned_pid_is_gone(ws, recipe):
    jobs = Jobs(ws)
    fresh = jobs.create(recipe, "tiny", origin="console")  # carries its creator's pid (alive): left alone
    assert fresh.pid == os.getpid()
    spawned = jobs.create(recipe, "tiny", origin="console")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    jobs.set_pid(spawned.id, child.pid, own_group=False)
    assert jobs.sweep() == []
    child.kill()
    child.wait()
    assert jobs.sweep() == [spawned.id] and jobs.get(fresh.id).status == "queued"


WRITER = textwrap.dedent("""
    import sys
    from wattlm.jobs import Jobs
    jobs = Jobs(sys.argv[1])
    for i in range(int(sys.argv[3])):
        jobs.append(sys.argv[2], "tick", {"i": i})
""")


def test_two_processes_write_two_jobs_at_once_and_lose_nothing(ws, recipe):
    jobs = Jobs(ws)
    ids = [jobs.create(recipe, "tiny", origin="cli").id for _ in range(2)]
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(ws), job_id, "150"]) for job_id in ids * 2]
    assert [w.wait() for w in writers] == [0, 0, 0, 0]
    for job_id in ids:  # two writers per job: 300 events, numbered 1..300 without gap or repeat
        assert [e.seq for e in jobs.events(job_id)] == list(range(1, 301))
        assert sorted(e.data["i"] for e in jobs.events(job_id)) == sorted(list(range(150)) * 2)


def test_log_tail_starts_at_a_line(ws, recipe):
    jobs = Jobs(ws)
    job = jobs.create(recipe, "tiny", origin="cli")
    jobs.log_path(job).write_text("".join(f"line {i}\n" for i in range(1000)))
    tail = jobs.tail_log(job, max_bytes=100)
    assert tail.endswith("line 999\n") and tail.startswith("line ") and len(tail) <= 100


def test_recorder_thins_steps_ends_stages_and_writes_a_cli_log(ws, recipe, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("wattlm.run.recording.time.monotonic", lambda: clock[0])
    jobs = Jobs(ws)
    job = jobs.create(recipe, "tiny", origin="cli")
    recorder = JobRecorder(jobs, job.id, messages_to_log=True)
    with listening(recorder):
        stage_started("train")
        for step in range(1, 11):  # 1/8 s apart: kept when 0.5 s passed since the last kept, and the last
            clock[0] += 0.125
            emit("train_step", step=step, steps=10, loss=2.0 - step / 10, tokens_per_s=100.0)
        emit("message", text="[bold]train[/] tiny-industry")
        stage_started("eval")
        emit("eval", model="industry", scores={"domain": 12.5})
    recorder.end_stage()
    events = jobs.events(job.id)
    steps = [e.data for e in events if e.kind == "train_step"]
    assert [s["step"] for s in steps] == [1, 5, 9, 10] and steps[-1]["eta_s"] == 0.0 and steps[1]["stage"] == "train"
    assert steps[0]["eta_s"] is None and steps[1]["eta_s"] == pytest.approx(0.6)  # 4 steps in 0.5 s, 5 to go
    assert [e.kind for e in events] == ["stage"] + ["train_step"] * 4 + ["message", "stage_end", "stage", "eval",
                                                                         "stage_end"]
    assert events[5].data == {"text": "train tiny-industry"} and events[6].data["stage"] == "train"
    row = jobs.get(job.id)
    assert (row.stage, row.step, row.steps) == ("eval", 10, 10)
    log = jobs.log_path(row).read_text()
    assert "== train\nstep 1/10 loss 1.9000 100 tok/s\n" in log and "train tiny-industry\n" in log


def test_recorded_run_marks_failure_with_the_error_and_success_with_the_result(ws, recipe):
    with pytest.raises(WattError):
        with recorded_run(ws, recipe, None, "tiny"):
            raise WattError("data input not found: raw (recipe field data.inputs)")
    with recorded_run(ws, recipe, None, "tiny") as record:
        record.result = {"report_html": "x"}
    failed, succeeded = sorted(Jobs(ws).list(), key=lambda j: j.created)
    assert failed.status == "failed" and failed.error == "data input not found: raw (recipe field data.inputs)"
    assert succeeded.status == "succeeded" and succeeded.result == {"report_html": "x"} and succeeded.origin == "cli"


def test_sigterm_during_a_recorded_run_marks_it_cancelled(ws, recipe):
    script = textwrap.dedent("""
        import sys, time
        from wattlm.run.recording import recorded_run
        with recorded_run(sys.argv[1], sys.argv[2], None, "tiny"):
            print("started", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script, str(ws), str(recipe)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) != 0
    (job,) = Jobs(ws).list()
    assert job.status == "cancelled" and Jobs(ws).events(job.id)[-1].data == {"status": "cancelled", "error": "cancelled"}


def test_progress_listener_failure_never_stops_the_work():
    def broken(kind, fields):
        raise RuntimeError("disk full")

    with listening(broken):
        emit("train_step", step=1)  # no exception reaches the caller
    seen = []
    with listening(lambda kind, fields: seen.append(kind)):
        emit("after")
    emit("nobody_listens")
    assert seen == ["after"]
