"""The Ray executor: the local executor's shard tasks (`executor.run_shard`) run as Ray tasks.

Nothing else changes: the same shards, the same `.done` markers written by the task itself, the same
merge in input order in the driver, so the output is byte-identical to the local executor's and a run
killed under Ray resumes under either executor. Ray's ObjectRef.future() gives a
concurrent.futures.Future, so `run_phase` waits on Ray tasks exactly as on a process pool.

Local: `ray.init(num_cpus=workers)` starts a private Ray for the run and shuts it down after. Cluster:
with `ray_address` the driver joins a running cluster (and leaves it running); every node must have
wattlm installed and see the input and output folders at the same paths (a shared file system).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any


class RayPool:
    """`submit(fn, arg)` -> Future, like an Executor's, backed by one Ray task per call."""

    def __init__(self, ray: Any) -> None:
        self._ray = ray
        self._remotes: dict[Callable, Any] = {}

    def submit(self, fn: Callable[[Any], None], arg: Any) -> Future:
        remote = self._remotes.get(fn)
        if remote is None:
            # One CPU per task: as many shards run at once as the local Ray (or the cluster) has CPUs.
            # max_retries=0: a failed shard fails the run (as locally); the rerun resumes from the markers.
            remote = self._remotes[fn] = self._ray.remote(num_cpus=1, max_retries=0)(fn)
        return remote.remote(arg).future()


@contextmanager
def ray_pool(num_cpus: int, address: str | None = None) -> Iterator[RayPool]:
    """A RayPool on a local Ray with `num_cpus` CPUs, or on the cluster at `address`."""
    import ray

    started = not ray.is_initialized()
    if started:
        if address is None:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        yield RayPool(ray)
    finally:
        if started:
            ray.shutdown()
