"""`create_app`: the FastAPI application, and errors in OpenAI's shape.

Every error leaves as `{"error": {"message", "type", "param", "code"}}` with the status the official
clients map to exceptions: 400 BadRequestError, 404 NotFoundError, 500 InternalServerError, and
503 with a Retry-After header when an engine's queue is full (the clients wait and retry), 413 for an
oversized body and 504 when a request outlives the server's request timeout.
FastAPI's own 422 for a malformed body becomes a 400, as OpenAI answers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from wattlm import __version__
from wattlm.engines.base import Engine, EngineOverloaded, MissingCapability
from wattlm.errors import NotFound, WattError
from wattlm.serve.auth import ApiKeyMiddleware, KeyAuth
from wattlm.serve.catalog import Discover, Loader, ServedModels
from wattlm.serve.closed_book_guard import ClosedBookGuard
from wattlm.serve.disconnect import ClientGone
from wattlm.serve.grounding import KnowledgeBases
from wattlm.serve.knowledge_routes import router as knowledge_router
from wattlm.serve.limits import BodySizeLimit, Limits, ParameterTooLarge, RequestTimedOut
from wattlm.serve.protocol.common import ErrorInfo, ErrorResponse
from wattlm.serve.redact import without_paths
from wattlm.serve.routes import router
from wattlm.serve.workers import Pools, PoolsMiddleware

log = logging.getLogger(__name__)


def create_app(
    engines: Mapping[str, Engine],
    model_cards: Sequence[Mapping[str, Any]] | None = None,
    limits: Limits | None = None,
    auth: KeyAuth | None = None,
    loaders: Mapping[str, Loader] | None = None,
    keep_alive: float | None = None,
    discover: Discover | None = None,
    knowledge: KnowledgeBases | None = None,
    pools: Pools | None = None,
    max_loaded: int | None = None,
    closed_book_guard: ClosedBookGuard | None = None,
) -> FastAPI:
    """An OpenAI-compatible app serving `engines`, keyed by the model id clients send.

    `model_cards` add metadata to /v1/models entries: each is a dict with the model's `id` and any
    extra keys (tier, parent, created, ...). `limits` caps body size, max_tokens and request time.
    `auth` checks API keys and rate limits (`wattlm.serve.auth`); None: no keys are checked.
    `loaders` build engines on demand (a model may have both a loaded engine and a loader); loaded
    models idle for `keep_alive` seconds are unloaded; `discover` finds models not listed (see catalog).
    `knowledge` holds the knowledge bases chat answers are grounded in (`wattlm.serve.grounding`); None:
    none (answers are not grounded and the KB endpoints know no KB).
    `pools` run scoring, embeddings and tokenizer work (`wattlm.serve.workers`; default sizes if None).
    `max_loaded` caps the models loaded on demand at once (the least recently used idle one is unloaded).
    `closed_book_guard` replaces ungrounded echoes and debris of task-tier models by the refusal
    (`wattlm.serve.closed_book_guard`; default: on).
    """
    limits = limits or Limits()
    pools = pools or Pools()
    served_models = ServedModels(engines, model_cards or (), loaders=loaders, keep_alive=keep_alive, discover=discover,
                                 max_loaded=max_loaded)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        served_models.close()
        pools.close()

    # No Swagger/ReDoc pages: they load their scripts from a CDN (docs/security.md); /openapi.json stays.
    app = FastAPI(title="wattlm", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.served_models = served_models
    app.state.limits = limits
    app.state.knowledge = knowledge or KnowledgeBases(None)
    app.state.pools = pools
    app.state.closed_book_guard = closed_book_guard or ClosedBookGuard()
    app.add_middleware(PoolsMiddleware, pools=pools)
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_request_bytes)
    if auth is not None:  # added last = runs first: an unauthenticated body is never read
        app.add_middleware(ApiKeyMiddleware, auth=auth)
    app.include_router(router)
    app.include_router(knowledge_router)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(EngineOverloaded, _overloaded)
    app.add_exception_handler(WattError, _watt_error)
    app.add_exception_handler(Exception, _internal_error)
    return app


def error_response(
    status: int, message: str, type_: str, param: str | None = None, code: str | None = None
) -> JSONResponse:
    body = ErrorResponse(error=ErrorInfo(message=without_paths(message), type=type_, param=param, code=code))
    return JSONResponse(body.model_dump(), status_code=status)


async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    message, param = describe_validation_errors(error.errors())
    return error_response(400, message, "invalid_request_error", param=param)


def describe_validation_errors(problems: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """One message and the offending field (OpenAI's `param`) from pydantic's error list."""
    if not problems:
        return "invalid request body", None
    first = problems[0]
    if first.get("type") == "json_invalid":
        return f"request body is not valid JSON: {first.get('ctx', {}).get('error', first.get('msg'))}", None
    # loc is ("body", "max_tokens") or ("body", "messages", 0, "role"); a field typed as a union
    # fails once per member, with the member type in loc ("prompt", "str"), ("prompt", "list[str]", 0):
    # report those as one problem of their common field.
    same_field = [problem for problem in problems if tuple(problem["loc"][:2]) == tuple(first["loc"][:2])]
    path = _common_prefix([tuple(problem["loc"]) for problem in same_field])
    param = ".".join(str(part) for part in path if part != "body") or None
    reasons = dict.fromkeys(str(problem["msg"]).removeprefix("Value error, ") for problem in same_field)
    message = " or ".join(reasons)
    if param:
        message = f"{param}: {message}"
    others = len(problems) - len(same_field)
    if others:
        message += f" (and {others} more problem(s))"
    return message, param


def _common_prefix(paths: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    prefix = paths[0]
    for path in paths[1:]:
        length = 0
        while length < min(len(prefix), len(path)) and prefix[length] == path[length]:
            length += 1
        prefix = prefix[:length]
    return prefix


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    type_ = "not_found_error" if error.status_code == 404 else "invalid_request_error"
    return error_response(error.status_code, str(error.detail), type_)


async def _overloaded(request: Request, error: EngineOverloaded) -> JSONResponse:
    response = error_response(503, str(error), "server_error", code="server_overloaded")
    response.headers["Retry-After"] = str(error.retry_after)
    return response


async def _watt_error(request: Request, error: WattError) -> JSONResponse:
    if isinstance(error, ParameterTooLarge):
        return error_response(400, str(error), "invalid_request_error", param=error.param, code="parameter_too_large")
    if isinstance(error, ClientGone):  # nobody reads this; nginx's code for a client that closed the request
        return error_response(499, str(error), "invalid_request_error", code="client_closed_request")
    if isinstance(error, RequestTimedOut):
        return error_response(504, str(error), "server_error", code="request_timeout")
    if isinstance(error, MissingCapability):
        return error_response(400, str(error), "invalid_request_error", code="unsupported_capability")
    if isinstance(error, NotFound):
        # A NotFound may name its own field (an unknown knowledge base: knowledge.kb); a model by default.
        return error_response(404, str(error), "invalid_request_error", param=getattr(error, "param", "model"),
                              code=getattr(error, "code", "model_not_found"))
    return error_response(400, str(error), "invalid_request_error")


async def _internal_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s", request.url.path)
    return error_response(500, "internal server error", "server_error")
