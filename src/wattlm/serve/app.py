"""`create_app`: the FastAPI application, and errors in OpenAI's shape.

Every error leaves as `{"error": {"message", "type", "param", "code"}}` with the status the official
clients map to exceptions: 400 BadRequestError, 404 NotFoundError, 500 InternalServerError.
FastAPI's own 422 for a malformed body becomes a 400, as OpenAI answers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from wattlm import __version__
from wattlm.errors import NotFound, WattError
from wattlm.serve.catalog import ServedModels
from wattlm.serve.engine import Engine
from wattlm.serve.protocol import ErrorInfo, ErrorResponse
from wattlm.serve.routes import router

log = logging.getLogger(__name__)


def create_app(engines: Mapping[str, Engine], model_cards: Sequence[Mapping[str, Any]] | None = None) -> FastAPI:
    """An OpenAI-compatible app serving `engines`, keyed by the model id clients send.

    `model_cards` add metadata to /v1/models entries: each is a dict with the model's `id` and any
    extra keys (tier, parent, created, ...).
    """
    app = FastAPI(title="wattlm", version=__version__)
    app.state.served_models = ServedModels(engines, model_cards or ())
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(WattError, _watt_error)
    app.add_exception_handler(Exception, _internal_error)
    return app


def error_response(status: int, message: str, type_: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    body = ErrorResponse(error=ErrorInfo(message=message, type=type_, param=param, code=code))
    return JSONResponse(body.model_dump(), status_code=status)


async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = error.errors()
    first = problems[0] if problems else {}
    # loc is ("body", "max_tokens") or ("body", "messages", 0, "content"): name the field the client sent.
    field_path = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(field_path) or None
    message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    if param:
        message = f"{param}: {message}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s))"
    return error_response(400, message, "invalid_request_error", param=param)


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    type_ = "not_found_error" if error.status_code == 404 else "invalid_request_error"
    return error_response(error.status_code, str(error.detail), type_)


async def _watt_error(request: Request, error: WattError) -> JSONResponse:
    if isinstance(error, NotFound):
        return error_response(404, str(error), "invalid_request_error", param="model", code="model_not_found")
    return error_response(400, str(error), "invalid_request_error")


async def _internal_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s", request.url.path)
    return error_response(500, "internal server error", "server_error")
