"""`watt run` as a recorded job: its row's status, its progress events, its log (`wattlm.jobs`).

`recorded_run` wraps one run: it creates the job (a CLI run) or takes over the one the console queued
(`watt run --job ID`), holds the job's lock, listens to `wattlm.shared.progress` while the recipe runs,
and records how it ended: `succeeded`, `failed` (with the one-line error), or `cancelled` (SIGTERM from
the console's cancel, or Ctrl-C). Training steps come many per second on a small model, so step events
are thinned to one per `STEP_EVERY_S` (always keeping the last step); the row's stage/step columns
follow every event the listener keeps.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wattlm.errors import WattError
from wattlm.jobs import Jobs
from wattlm.shared.progress import listening

STEP_EVERY_S = 0.5


class RunCancelled(KeyboardInterrupt):
    """Raised in the run's main thread by SIGTERM: staging folders are cleaned up on the way out, and the
    CLI exits as on Ctrl-C."""


class JobRecorder:
    """Turns progress events into job events, row updates and log lines."""

    def __init__(self, jobs: Jobs, job_id: str, messages_to_log: bool):
        self.jobs, self.job_id = jobs, job_id
        self.log = jobs.log_path(jobs.get(job_id))
        self.messages_to_log = messages_to_log
        self.result: dict = {}
        self._stage: tuple[str, float] | None = None
        self._last_step_at = 0.0
        self._step_clock: tuple[int, float] | None = None  # (first step seen, when): the ETA's baseline

    def __call__(self, kind: str, fields: dict) -> None:
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(fields)
        else:
            self._event(kind, fields)

    def _event(self, kind: str, fields: dict, line: str | None = None) -> None:
        self.jobs.append(self.job_id, kind, fields)
        if line is not None and (kind != "message" or self.messages_to_log):
            with open(self.log, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")

    def _on_stage(self, fields: dict) -> None:
        self.end_stage()
        self._stage = (fields["stage"], time.monotonic())
        self._step_clock = None
        self.jobs.progress(self.job_id, stage=fields["stage"])  # step/steps keep the last training's
        self._event("stage", fields, f"== {fields['stage']}")

    def end_stage(self) -> None:
        if self._stage is not None:
            name, since = self._stage
            self._event("stage_end", {"stage": name, "seconds": round(time.monotonic() - since, 2)})
            self._stage = None

    def _on_train_step(self, fields: dict) -> None:
        now = time.monotonic()
        step, steps = fields["step"], fields["steps"]
        if self._step_clock is None:
            self._step_clock = (step, now)
        if now - self._last_step_at < STEP_EVERY_S and step < steps:
            return
        self._last_step_at = now
        first, since = self._step_clock
        eta = (now - since) / (step - first) * (steps - step) if step > first else None
        event = {**fields, "stage": self._stage[0] if self._stage else "train",
                 "eta_s": round(eta, 1) if eta is not None else None}
        self.jobs.progress(self.job_id, step=step, steps=steps)
        self._event("train_step", event, f"step {step}/{steps} loss {fields['loss']:.4f} "
                                         f"{fields.get('tokens_per_s', 0):.0f} tok/s")

    def _on_message(self, fields: dict) -> None:
        from rich.text import Text

        text = Text.from_markup(fields["text"]).plain  # the pipeline's lines carry rich markup
        self._event("message", {"text": text}, text)


@contextmanager
def recorded_run(home: Path, recipe: Path, job_id: str | None, name: str | None) -> Iterator[JobRecorder]:
    """Record the block as job `job_id` (queued by the console) or as a new CLI job for `recipe`."""
    jobs = Jobs(home)
    spawned = job_id is not None
    if job_id is None:
        job_id = jobs.create(recipe, name or Path(recipe).stem, origin="cli").id
    previous = signal.getsignal(signal.SIGTERM)
    with jobs.running(job_id):
        # A spawned run's stderr is its log and already has the run's messages; stages and steps are added.
        recorder = JobRecorder(jobs, job_id, messages_to_log=not spawned)
        main_thread = threading.current_thread() is threading.main_thread()  # only there can it set a handler
        if main_thread:
            signal.signal(signal.SIGTERM, _raise_cancelled)
        try:
            with listening(recorder):
                yield recorder
        except (RunCancelled, KeyboardInterrupt):
            recorder.end_stage()
            jobs.finish(job_id, "cancelled", error="cancelled")
            raise
        except BaseException as error:
            recorder.end_stage()
            jobs.finish(job_id, "failed", error=_one_line(error))
            raise
        else:
            recorder.end_stage()
            jobs.finish(job_id, "succeeded", result=recorder.result)
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous)
            jobs.close()


def _one_line(error: BaseException) -> str:
    text = str(error) if isinstance(error, WattError) else f"{type(error).__name__}: {error}"
    return (text.strip().splitlines() or [type(error).__name__])[0][:500]


def _raise_cancelled(signum, frame) -> None:
    raise RunCancelled()
