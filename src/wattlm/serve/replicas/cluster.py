"""Ray and Serve for one `watt serve`: start a private Ray or join a cluster, deploy each model, stop.

Local (no `--ray-address`): `ray.init` with this machine's CPUs, no dashboard, worker output kept out of
the terminal; Ray's driver-side log lines go to `$WATT_HOME/logs/serve-ray-*.log` and its own logs to its
session folder; everything stops with the server. Cluster: the server joins the cluster at the address and
leaves it running, deleting only the applications it deployed. Serve's HTTP proxy is not started: requests
enter through our app (keys, limits, console) and reach replicas by handles, so no port opens but ours.

Each model is one Serve application named `wattlm-<model>` with one deployment of `EngineReplica`: N
replicas, each reserving its share of the cluster's CPUs (the CPUs divided among the N replicas of every
model the server deploys: a replica Ray cannot place would wait for ever) and running that many
llama.cpp threads. LoRA adapters of a model live in its replicas (one engine each over the base weights).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wattlm.engines.table import EngineSettings
from wattlm.serve.replicas.client import ReplicatedEngine, replicated_engine
from wattlm.serve.replicas.errors import replica_error
from wattlm.serve.replicas.options import ReplicaSettings, queue_bounds, replica_share, require_ray_serve

log = logging.getLogger(__name__)

APP_PREFIX = "wattlm-"
START_TIMEOUT_S = 600.0  # a replica loads its model in seconds on a laptop; a cold cluster node may pull an image


def app_name(model: str) -> str:
    """Serve application names are free text; one per model, recognisable in `serve status`."""
    return APP_PREFIX + model


def serve_log_file(home: Path) -> Path:
    """Where one server's Ray log lines go: beside the runs' logs in the workspace."""
    return Path(home) / "logs" / f"serve-ray-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


def ray_logs_to(path: Path) -> logging.Handler:
    """Ray's driver-side Python log lines (start-up, Serve's controller messages) -> `path`, not the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in ("ray", "ray.serve"):
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.propagate = False
    return handler


class ReplicaCluster:
    """Ray (started here, or joined) and Serve, for the lifetime of one server; a context manager."""

    def __init__(self, settings: ReplicaSettings, log_file: Path | None = None, models: int = 1) -> None:
        self.settings = settings
        self.log_file = log_file
        self.models = max(1, models)  # models this server deploys: they share the CPUs
        self._connected = False  # this server called ray.init (and disconnects at the end)
        self._local = False  # ... and that started a private Ray (whose Serve it shuts down)
        self._apps: list[str] = []
        self._handler: logging.Handler | None = None

    def __enter__(self) -> ReplicaCluster:
        require_ray_serve()
        import ray
        from ray import serve

        if self.log_file is not None:
            self._handler = ray_logs_to(self.log_file)
        if not ray.is_initialized():
            if self.settings.starts_local_ray:
                # address="local": a new private instance even if another Ray runs on this machine.
                ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
                self._local = True
            else:
                ray.init(address=self.settings.ray_address, log_to_driver=False, configure_logging=False)
            self._connected = True
        try:
            # No HTTP proxy: our app is the only way in (docs/security.md: loopback unless asked otherwise).
            serve.start(proxy_location="Disabled")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def describe(self) -> str:
        """For the server's start line."""
        where = "a private local Ray" if self._local else f"the Ray cluster at {self.settings.ray_address}"
        logs = f", Ray's log lines in {self.log_file}" if self.log_file is not None else ""
        return f"{self.settings.replicas} replica(s) per model on {where} ({self.total_cpus:g} CPUs){logs}"

    @property
    def total_cpus(self) -> float:
        import ray

        return float(ray.cluster_resources().get("CPU", 0.0))

    def deploy(self, source: Path, name: str, engine: str, settings: EngineSettings,
               adapters: Mapping[str, Path] | None = None) -> ReplicatedEngine:
        """`replicas` replicas of `engine` over `source`, started and answering, as one engine for the app.
        `settings.n_threads` None: each replica runs as many threads as CPUs it reserves. `adapters`
        ({model name: LoRA file}): each replica holds them too; `.adapter(name)` of the result serves one."""
        from ray import serve

        from wattlm.serve.replicas.deployment import EngineReplica

        cpus, threads = replica_share(self.total_cpus, self.settings.replicas * self.models, settings.n_threads)
        ongoing, queued = queue_bounds(settings.max_seqs, settings.max_waiting)
        deployment = serve.deployment(EngineReplica).options(
            name="EngineReplica", num_replicas=self.settings.replicas, max_ongoing_requests=ongoing,
            max_queued_requests=queued, ray_actor_options={"num_cpus": cpus},
            # Short health checks: a wedged replica is replaced in seconds, not the default tens of seconds.
            health_check_period_s=2.0, health_check_timeout_s=10.0)
        replica_settings = settings.model_copy(update={"n_threads": threads}).model_dump()
        application = app_name(name)
        started = time.monotonic()
        adapter_files = {adapter: str(Path(path).resolve()) for adapter, path in (adapters or {}).items()}
        handle = serve.run(deployment.bind(str(Path(source).resolve()), name, engine, replica_settings, adapter_files),
                           name=application, route_prefix=None)
        self._apps.append(application)
        log.info("deployed %s: %d replicas in %.1f s", application, self.settings.replicas,
                 time.monotonic() - started)
        try:
            profile = handle.describe.remote().result(timeout_s=self.settings.call_timeout)
        except Exception as error:  # noqa: BLE001 -- a replica that cannot describe itself fails the start
            raise replica_error(error, name) from error
        return replicated_engine(handle, name, profile, self.settings, on_close=lambda: self._delete(application))

    def _delete(self, application: str) -> None:
        from ray import serve

        if application in self._apps:
            self._apps.remove(application)
            try:
                serve.delete(application)
            except Exception:  # noqa: BLE001 -- shutting down: Serve may already be gone
                log.debug("deleting %s failed", application, exc_info=True)

    def close(self) -> None:
        """Delete the applications deployed here; stop a private Ray, or leave the cluster."""
        import ray

        try:
            # Our applications only, gracefully (engines closed): on a shared cluster Serve and the others'
            # applications keep running; a private Ray goes with everything in it just after (stopping
            # Serve's controller first would only make Ray print its pending calls' failures).
            for application in list(self._apps):
                self._delete(application)
        finally:
            self._apps.clear()
            if self._connected:
                ray.shutdown()
                self._connected = self._local = False
            if self._handler is not None:
                self._handler.close()
                self._handler = None
