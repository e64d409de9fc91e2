"""One request inside the scheduler, and the slot (KV-cache sequence id) it runs in.

The request thread and the scheduler thread share a `Sequence` only through `events` (scheduler ->
request: sampled token ids, then `FINISHED` or an exception) and `cancelled` (request -> scheduler).
Everything else is touched by the scheduler thread alone.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from wattlm.engines.batching.sampler import TokenSampler
from wattlm.engines.params import SamplingParams

FINISHED = object()  # the last event of a sequence the scheduler ended (EOG or max_tokens)


@dataclass(eq=False)
class Sequence:
    prompt_tokens: list[int]
    params: SamplingParams
    max_tokens: int  # already clamped to the room left in the context window
    end_of_generation: frozenset[int]  # EOG token ids; empty when the request ignores EOS
    sampler: TokenSampler
    events: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    arrived: float = field(default_factory=time.monotonic)
    # Scheduler-side state.
    slot: Slot | None = None
    pending: list[int] = field(default_factory=list)  # tokens to feed to the model, not yet in the KV cache
    generated: int = 0
    done: bool = False

    @property
    def prefilling(self) -> bool:
        """Still feeding the prompt (the one pending token of a decoding sequence is not prefill)."""
        return self.generated == 0

    def emit(self, event: object) -> None:
        self.events.put(event)


@dataclass(eq=False)
class Slot:
    """A llama.cpp sequence id and the tokens its KV cells hold.

    A free slot keeps its cells: the next request that starts with the same tokens (a shared system
    prompt, a multi-turn chat) reuses them instead of recomputing.
    """

    seq_id: int
    cached: list[int] = field(default_factory=list)  # the tokens in this seq_id's KV cells, in order
    sequence: Sequence | None = None


def common_prefix(left: list[int], right: list[int]) -> int:
    length = min(len(left), len(right))
    for index in range(length):
        if left[index] != right[index]:
            return index
    return length
