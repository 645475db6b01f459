"""The one place where exceptions become wire errors.

`DuraChatError`s keep their code and message; request validation errors become
400 `bad_request` with a readable message; anything else is logged and answered
as `internal` without details. HTTP errors have the shape
`{"error": {"code", "message"}}`; WebSocket errors are `error` frames.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from durachat import events
from durachat.domain import ErrorInfo
from durachat.errors import DuraChatError, RateLimited
from durachat.events import Frame

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "bad_request",
    409: "conflict",
    413: "too_large",
    429: "rate_limited",
    503: "unavailable",
}


def error_info(exc: BaseException) -> ErrorInfo:
    """The wire code and message of an exception (logging the unexpected ones)."""
    if isinstance(exc, DuraChatError):
        return ErrorInfo(exc.code, exc.message)
    log.error("unexpected error", exc_info=exc)
    return ErrorInfo("internal", "internal server error")


def error_frame(
    exc: BaseException, conversation_id: str | None = None, message_id: str | None = None
) -> Frame:
    return events.error(error_info(exc), conversation_id, message_id)


def _response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for item in exc.errors()[:5]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "body"
        parts.append(
            f"{where} is required"
            if item.get("type") == "missing"
            else f"{where}: {item.get('msg')}"
        )
    return "; ".join(parts) or "invalid request"


async def _on_domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DuraChatError)
    headers = None
    if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
    return _response(exc.http_status, exc.code, exc.message, headers)


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _response(400, "bad_request", _validation_message(exc))


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "internal" if exc.status_code >= 500 else "bad_request")
    headers = dict(exc.headers) if exc.headers else None
    return _response(exc.status_code, code, str(exc.detail), headers)


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    info = error_info(exc)
    return _response(500, info.code, info.message)


def install(app: FastAPI) -> None:
    app.add_exception_handler(DuraChatError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
