"""Imported by the local executor's forkserver (`set_forkserver_preload`) before it forks the workers.

Every step class's `preload` runs here once, so each worker starts with trafilatura imported and its
stop lists read, the language model loaded, OpenCC's dictionaries and the character tables built,
instead of every worker loading its own copy (about 1.5 s of CPU a worker on the bench corpus; the
pages stay shared copy-on-write). Importing this module does that work on purpose, and nothing but the
forkserver imports it. A hook that fails is skipped: that step loads what it needs on first use.
"""

from __future__ import annotations

import contextlib

from wattlm.data.executors import local  # noqa: F401  (the shard task and every step module)
from wattlm.data.steps import STEPS

for step_class in STEPS.values():
    # Any failure (a missing optional package, a changed library) only means no head start: the step
    # raises its own error, in the worker, if it really cannot run.
    with contextlib.suppress(Exception):
        step_class.preload()
