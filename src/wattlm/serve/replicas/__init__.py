"""`watt serve --replicas N [--ray-address ...]`: several engine replicas behind one endpoint, through Ray Serve.

Our FastAPI app stays the ingress (same OpenAI routes, keys, limits, console, grounding); each served model
becomes one Ray Serve application whose deployment (`deployment.EngineReplica`) holds an engine built by the
engine table, `N` replicas of it. The app sees each model as one `client.ReplicatedEngine`: the `Engine`
interface over a Serve `DeploymentHandle`, so routes and OpenAI semantics do not change. Serve's router
sends each request to the less loaded of two replicas it samples (power of two choices on queue length);
streams come back chunk by chunk through streaming handles; a replica that dies is replaced by Serve, and
the requests it was answering end with a clean 503 (`errors.ReplicaLost`) instead of hanging.

Modules: `options` (settings and the CPU share of a replica), `errors` (Ray's failures mapped to ours),
`stall` (the bound on waiting for a replica), `deployment` (runs in the replica), `client` (runs in the
ingress), `cluster` (start or join Ray, deploy, shut down). Ray is imported only by code that needs it.
"""
