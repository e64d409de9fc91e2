"""Ray's failures, seen from the ingress, as the errors the app already answers.

The engine's own errors (a prompt too long, a full queue, a bad schema) cross Ray wrapped in a
`RayTaskError`; they are unwrapped so the client gets the same status as without replicas. A replica
that dies, a node that goes, or a replica silent for longer than the stall bound end the request with
`ReplicaLost`: an `EngineOverloaded`, so the app answers 503 with Retry-After (or, mid-stream, an SSE
error event and [DONE]), which OpenAI's clients retry; Serve has meanwhile routed new requests to the
replicas alive and started a replacement.
"""

from __future__ import annotations

from wattlm.engines.base import EngineOverloaded


class ReplicaLost(EngineOverloaded):
    """The replica answering a request stopped (its process died, its node left) or went silent."""


def replica_error(error: BaseException, model: str, stalled_after: float | None = None) -> BaseException:
    """What the ingress raises for `error`, raised by a Serve handle call for model `model`.

    `stalled_after`: the request was cancelled by the stall bound after that many seconds without a chunk
    (its handle then raises a cancellation error). Errors that are none of Ray's are returned as they are.
    """
    from ray import exceptions as ray_errors
    from ray.serve import exceptions as serve_errors

    if stalled_after is not None and isinstance(error, ray_errors.TaskCancelledError | TimeoutError):
        return ReplicaLost(f"no answer from the replica serving model '{model}' for {stalled_after:g} s; "
                           "the request was cancelled, retry it")
    if isinstance(error, ray_errors.RayTaskError):
        # The engine raised in the replica: the same error here (its class decides the HTTP status).
        cause = error.cause
        if isinstance(cause, Exception) and not isinstance(cause, ray_errors.RayError):
            return cause
        error = cause if isinstance(cause, BaseException) else error
    if isinstance(error, serve_errors.BackPressureError):
        return EngineOverloaded(f"every replica of model '{model}' is busy and the queue in front of them is "
                                "full; retry later")
    lost = (ray_errors.RayActorError, ray_errors.WorkerCrashedError, ray_errors.NodeDiedError,
            ray_errors.ObjectLostError, ray_errors.LocalRayletDiedError, serve_errors.ReplicaUnavailableError,
            serve_errors.DeploymentUnavailableError)
    if isinstance(error, lost):
        return ReplicaLost(f"the replica serving model '{model}' stopped while answering "
                           f"({type(error).__name__}); retry the request")
    if isinstance(error, TimeoutError):  # a one-shot call past its bound (ray's GetTimeoutError is one)
        return ReplicaLost(f"no answer from a replica of model '{model}' in time; retry the request")
    return error
