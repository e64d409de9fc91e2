"""A run's live progress as Server-Sent Events: its new events, row changes and log lines, until it ends.

Each poll (every `POLL_S`) reads events after the last one sent (`id:` is the event's seq, so a
browser's automatic reconnect resumes with `Last-Event-ID`), the job row when it changed, and the log
file's new bytes. SQLite in WAL mode answers these reads without waiting on the run that writes.
When the job has ended, its process has exited and everything is sent, a `done` event closes the stream (the page then stops
its EventSource, which would otherwise reconnect). A job whose process vanished is swept to
`interrupted` here too, so an open page sees a crashed run end.
"""

from __future__ import annotations

import asyncio
import codecs
import json
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Request

from wattlm.jobs import ACTIVE, Jobs

POLL_S = 0.5
BATCH = 2000  # events per poll: a reopened page of a long run catches up in a few polls
LOG_CHUNK = 16_000  # the most log text one message carries (a page keeps a tail anyway)
KEEPALIVE_POLLS = 30  # a comment line every 15 s keeps proxies from closing an idle stream


def _message(kind: str, payload: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(payload, ensure_ascii=False, default=str)}\n\n"


class _Poller:
    """One stream's read position: last event seq, last job row, log offset."""

    def __init__(self, home: Path, job_id: str, after: int):
        self.jobs, self.job_id, self.after = Jobs(home), job_id, after
        self.row: dict | None = None
        job = self.jobs.get(job_id)
        self.log_offset = max(0, _log_size(self.jobs, job) - LOG_CHUNK)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a chunk may end mid-character

    def poll(self) -> tuple[list[str], bool]:
        """The messages due now, and whether the stream is finished."""
        job = self.jobs.get(self.job_id)
        if job.status in ACTIVE and not self.jobs.alive(job):
            self.jobs.sweep()
            job = self.jobs.get(self.job_id)
        messages = []
        events = self.jobs.events(self.job_id, after=self.after, limit=BATCH)
        for event in events:
            messages.append(_message("progress", event.to_dict(), event.seq))
        if events:
            self.after = events[-1].seq
        row = job.to_dict()
        if row != self.row:
            messages.append(_message("job", row))
            self.row = row
        text = self._new_log()
        if text:
            messages.append(_message("log", {"text": text}))
        # Ended, its process gone (its last lines are in the log) and everything sent.
        finished = job.status not in ACTIVE and len(events) < BATCH and not text and not self.jobs.alive(job)
        return messages, finished

    def _new_log(self) -> str:
        path = self.jobs.log_path(self.jobs.get(self.job_id))
        try:
            with open(path, "rb") as handle:
                size = handle.seek(0, 2)
                if size < self.log_offset:  # the log was replaced: start over
                    self.log_offset = 0
                start = max(self.log_offset, size - LOG_CHUNK)
                handle.seek(start)
                data = handle.read(size - start)
        except FileNotFoundError:
            return ""
        self.log_offset = start + len(data)
        return self.decoder.decode(data)

    def close(self) -> None:
        self.jobs.close()


def _log_size(jobs: Jobs, job) -> int:
    try:
        return jobs.log_path(job).stat().st_size
    except FileNotFoundError:
        return 0


async def run_stream(request: Request, home: Path, job_id: str, after: int) -> AsyncIterator[str]:
    poller = await asyncio.to_thread(_Poller, home, job_id, after)
    try:
        idle = 0
        while not await request.is_disconnected():
            messages, finished = await asyncio.to_thread(poller.poll)
            for message in messages:
                yield message
            if finished:
                yield _message("done", {"status": poller.row["status"] if poller.row else None})
                return
            idle = 0 if messages else idle + 1
            if idle >= KEEPALIVE_POLLS:
                idle = 0
                yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_S)
    finally:
        await asyncio.to_thread(poller.close)
