"""Files the registry coordinates processes with: lock files, fsync, and the fault-test pause hook.

flock locks die with their process, so a lock nobody holds marks leftovers of a crash (a PID check
would be fooled by a reused PID and cannot tell a live process's folder from a dead one's).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Steps of `Registry.register()` at which a fault test can freeze the process (`pause_for_fault_test`):
# after the pending row, after the rename, after the fsync, inside the (uncommitted) commit-mark.
REGISTER_STEPS = ("pending", "renamed", "fsynced", "marking")


def try_lock(path: Path, blocking: bool = False):
    """An exclusive flock on `path` (created if absent), or None when another process holds it.

    The lock is only valid if `path` still names the locked file afterwards: a holder removes its lock
    file before letting go, so a waiter that locked the removed file retries on the new one.
    """
    while True:
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.close()
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()


def release_lock(path: Path, handle) -> None:
    """Remove the lock file while still holding it (so no lock file outlives its user), then unlock."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    handle.close()


def lock_is_free(path: Path) -> bool:
    """Whether nobody holds the lock on `path`, without creating the file (a look, not a claim)."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return True
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
    return True


@contextmanager
def held_lock(path: Path) -> Iterator[None]:
    handle = try_lock(path, blocking=True)
    try:
        yield
    finally:
        release_lock(path, handle)


def _fsync(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Flush a folder's files, its subfolders and the folder's own entry in its parent to disk, so a
    row marked committed never outlives (after a power cut) the bytes it points at."""
    for root, _dirs, files in os.walk(folder, topdown=False):
        for name in files:
            if not os.path.islink(os.path.join(root, name)):  # a link's target is not ours to flush
                _fsync(os.path.join(root, name))
        _fsync(root)
    _fsync(folder.parent)


def pause_for_fault_test(step: str) -> None:
    """For fault tests only (tests/test_registry_crash.py): with WATT_REGISTRY_PAUSE_AT=<step>, write
    the step into WATT_REGISTRY_PAUSE_FILE and sleep at that step of `register()`, so the test can
    `kill -9` the process exactly there. Unset (always, outside those tests) it does nothing."""
    if os.environ.get("WATT_REGISTRY_PAUSE_AT") != step:
        return
    marker = os.environ.get("WATT_REGISTRY_PAUSE_FILE")
    if marker:
        Path(marker).write_text(step)
    time.sleep(float(os.environ.get("WATT_REGISTRY_PAUSE_SECONDS", "600")))
