"""How replicas are laid out: the settings of `watt serve --replicas`, and each replica's share of the CPUs."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from wattlm.errors import WattError

EXTRA_HINT = 'pip install "wattlm[serve-ray]"'  # the extra that brings Ray Serve


class ReplicaSettings(BaseModel):
    """Replicas of every served model behind one endpoint (Ray Serve)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    replicas: int = Field(1, ge=1, description="engine replicas per served model")
    ray_address: str | None = Field(
        None, description="a running Ray cluster to deploy on ('auto', 'ray://head:10001', ...); None: a private "
                          "local Ray started for the server and stopped with it ('local' means the same)")
    stall_timeout: float = Field(
        120.0, gt=0, description="seconds a request may wait for its replica's next chunk (its first one "
                                 "included: queueing for a slot) before it fails with 503")
    call_timeout: float = Field(60.0, gt=0, description="seconds for a one-shot call (chat template, tokenize, "
                                                        "scoring, embeddings) before it fails with 503")
    metrics_timeout: float = Field(
        2.0, gt=0, description="seconds /metrics waits for the replicas' own figures; a replica that has not "
                               "answered by then (dead, starting, or every slot taken) is left out of that scrape")

    @property
    def uses_ray(self) -> bool:
        """More than one replica, or a cluster named: the Ray Serve path. One replica and no address: the
        server is exactly what it is without Ray."""
        return self.replicas > 1 or self.ray_address is not None

    @property
    def starts_local_ray(self) -> bool:
        return self.ray_address in (None, "local")


def replica_share(total_cpus: float, replicas: int, n_threads: int | None) -> tuple[float, int]:
    """(CPUs each replica reserves in Ray, llama.cpp threads it runs) for `replicas` replicas on a Ray with
    `total_cpus` CPUs. Ray accepts fractions below one CPU and whole numbers above, so a replica reserves
    the whole part of its share (at least one), or its fraction when there are more replicas than CPUs;
    it runs that many threads unless `n_threads` (--threads) says otherwise."""
    if total_cpus <= 0:
        raise WattError("the Ray cluster reports no CPUs; replicas need at least a fraction of one each")
    share = total_cpus / replicas
    cpus = float(max(1, math.floor(share))) if share >= 1 else round(share, 4)
    return cpus, n_threads if n_threads is not None else max(1, math.floor(cpus))


def queue_bounds(max_seqs: int, max_waiting: int) -> tuple[int, int]:
    """(max_ongoing_requests, max_queued_requests) of a deployment from the engine's own bounds.

    A replica takes as many requests as its engine holds (decoding + queued), so the router's queue-length
    choice sees the engine's real load and the engine never answers 503 for a full queue while another
    replica has room. Beyond that, the ingress's handle queues at most `max_waiting` more per model (Serve's
    backpressure, answered 503 like a full engine queue)."""
    return max_seqs + max_waiting, max(1, max_waiting)


def require_ray_serve() -> None:
    """One line naming the extra when Ray Serve (or what it needs) is not installed."""
    try:
        import ray.serve  # noqa: F401  (the submodule by name: its absence is seen even after `import ray`)
    except ImportError as error:
        raise WattError(f"--replicas/--ray-address need Ray Serve, which is not installed ({error}); "
                        f"install it with: {EXTRA_HINT}") from None
