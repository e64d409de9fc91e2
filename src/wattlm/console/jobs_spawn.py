"""Runs started from the console: `watt run --job ID` as a detached process the server only watches.

The process gets its own session (so its own process group), no terminal, and the job's log file as
stdout and stderr: closing the browser tab cannot reach it, and neither can stopping the server (the
process is re-parented and runs on; the next server finds it alive through the job's lock). A thread
per spawned process waits for its exit, so no zombie lingers and a process that died before recording
its end (killed, out of memory) is marked here. Cancel sends SIGTERM to the process group (`watt run`
turns it into a clean cancellation, and `torchrun` workers in the group stop with it), then SIGKILL if
the group is still there after `KILL_AFTER_S`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import wattlm
from wattlm.errors import WattError
from wattlm.jobs import ACTIVE, Job, Jobs, pid_alive, recipe_hash
from wattlm.registry_locks import lock_is_free

KILL_AFTER_S = 30.0


def start_run(home: Path, recipe: Path) -> Job:
    """Check the recipe, record a queued job for it and spawn its process."""
    from wattlm.recipe import load_recipe

    loaded = load_recipe(recipe)  # a bad recipe is a one-line error now, not a failed run later
    jobs = Jobs(home)
    try:
        job = jobs.create(recipe, loaded.name, origin="console")
        return spawn(jobs, job)
    finally:
        jobs.close()


def resume_run(home: Path, job_id: str) -> Job:
    """Run a failed, cancelled or interrupted job's recipe again under the same job: the stage cache and
    the training checkpoints make it continue where it stopped."""
    jobs = Jobs(home)
    try:
        job = jobs.get(job_id)
        recipe = Path(job.recipe)
        if not recipe.is_file():
            raise WattError(f"run {job_id}: its recipe {recipe} is gone; start a new run")
        if recipe_hash(recipe) != job.recipe_hash:
            raise WattError(f"run {job_id}: its recipe {recipe} changed since the run started; start a new run")
        return spawn(jobs, jobs.requeue(job_id))
    finally:
        jobs.close()


def spawn(jobs: Jobs, job: Job) -> Job:
    command = [sys.executable, "-m", "wattlm.cli", "run", job.recipe, "--home", str(jobs.home), "--job", job.id,
               "--quiet"]  # --quiet: plain lines in the log, no progress bars redrawn with \r
    # The run imports the same wattlm as this server, whatever the (relative) PYTHONPATH it was started with.
    source_root = str(Path(wattlm.__file__).resolve().parents[1])
    python_path = os.pathsep.join(p for p in (source_root, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "WATT_HOME": str(jobs.home), "PYTHONUNBUFFERED": "1", "PYTHONPATH": python_path}
    with open(jobs.log_path(job), "ab") as log:
        log.write(f"$ watt run {job.recipe} (run {job.id}, attempt {job.attempt})\n".encode())
        log.flush()
        try:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       cwd=Path(job.recipe).parent, env=env, start_new_session=True, close_fds=True)
        except OSError as error:
            jobs.finish(job.id, "failed", error=f"could not start the run: {error}")
            raise WattError(f"could not start run {job.id}: {error}") from error
    jobs.set_pid(job.id, process.pid, own_group=True)
    threading.Thread(target=_reap, args=(jobs.home, job.id, process), daemon=True, name=f"reap-{job.id}").start()
    return jobs.get(job.id)


def _reap(home: Path, job_id: str, process: subprocess.Popen) -> None:
    """Wait for the run's exit; record an end the process could not record itself."""
    code = process.wait()
    jobs = Jobs(home)
    try:
        if jobs.get(job_id).status in ACTIVE:
            if code < 0:  # killed by a signal: the work so far is cached, resume continues it
                jobs.finish(job_id, "interrupted", error=f"the run's process was killed by signal {-code}")
            else:
                jobs.finish(job_id, "failed", error=f"the run's process exited with code {code} (see its log)")
    finally:
        jobs.close()


def cancel_run(home: Path, job_id: str) -> Job:
    """Stop an active job: SIGTERM to its process (group), then mark it cancelled."""
    jobs = Jobs(home)
    try:
        job = jobs.get(job_id)
        if job.status not in ACTIVE:
            raise WattError(f"run {job_id} is {job.status}: only a queued or running run can be cancelled")
        # Whose pid the row holds: the run's own process once it holds the lock, the spawned process
        # while a console job is queued (own_group), else the process that queued it (never signalled).
        runs_now = not lock_is_free(jobs.lock_path(job.id))
        if job.pid and job.pid != os.getpid() and (runs_now or (job.own_group and pid_alive(job.pid))):
            _signal(job, signal.SIGTERM)
            threading.Thread(target=_kill_later, args=(job,), daemon=True).start()
        jobs.finish(job_id, "cancelled", error="cancelled from the console")
        return jobs.get(job_id)
    finally:
        jobs.close()


def _signal(job: Job, signum: int) -> None:
    try:
        if job.own_group:
            os.killpg(job.pid, signum)
        else:  # a CLI run shares its terminal's process group: signal that process only
            os.kill(job.pid, signum)
    except ProcessLookupError:
        pass


def _kill_later(job: Job) -> None:
    """SIGKILL the group if SIGTERM did not end the run (a long call into native code defers it)."""
    deadline = time.monotonic() + KILL_AFTER_S
    while time.monotonic() < deadline:
        if not _still_there(job):
            return
        time.sleep(0.5)
    _signal(job, signal.SIGKILL)


def _still_there(job: Job) -> bool:
    if not job.own_group:
        return pid_alive(job.pid)
    try:
        os.killpg(job.pid, 0)  # any process left in the group (the leader may already be reaped)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
