"""Request and latency figures an engine keeps while it serves (read by serve's `/metrics`).

The latency histograms are observed by the request threads as tokens reach them; token and queue
figures come from the engine itself (`running`, `waiting`, `counters`: the `Metered` capability).
"""

from __future__ import annotations

import bisect
import threading

# Seconds. CPU serving: first tokens take tens of ms to seconds, later tokens 5-500 ms.
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ITL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value


class EngineMetrics:
    """Request and latency figures of one engine, safe to update from many request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.ttft = Histogram(TTFT_BUCKETS)
        self.itl = Histogram(ITL_BUCKETS)

    def started(self) -> None:
        with self._lock:
            self.requests += 1
            self.in_flight += 1

    def ended(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def token(self, seconds_since_previous: float, first: bool) -> None:
        """A token reached its request: `first` ones measure TTFT (from arrival), others ITL."""
        with self._lock:
            (self.ttft if first else self.itl).observe(seconds_since_previous)


def timed_tokens(events, arrived: float, finished: object, metrics: EngineMetrics):
    """Token ids from an engine thread's event queue until `finished`, each timed into `metrics`'
    latency histograms (first token, then inter-token); an exception put on the queue is raised here."""
    import time

    last_token_at, first = arrived, True
    while True:
        event = events.get()
        if isinstance(event, BaseException):
            raise event
        if event is finished:
            return
        now = time.monotonic()
        metrics.token(now - last_token_at, first=first)
        last_token_at, first = now, False
        yield event
