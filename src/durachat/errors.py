"""The exception tree of DuraChat.

Each error carries its wire code (PROTOCOL.md section 4, `error.code`) and the HTTP
status it maps to. Code below `api/` raises these; `api/errors.py` is the one place
that turns them into HTTP responses and WebSocket `error` frames. Messages are
written for the user who reads them and never contain secrets.
"""

from __future__ import annotations


class DuraChatError(Exception):
    """Base of every error that reaches a client with a code."""

    code = "internal"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(DuraChatError):
    code = "bad_request"
    http_status = 400


class Unauthorized(DuraChatError):
    code = "unauthorized"
    http_status = 401


class Forbidden(DuraChatError):
    code = "forbidden"
    http_status = 403


class NotFound(DuraChatError):
    code = "not_found"
    http_status = 404


class Conflict(DuraChatError):
    code = "conflict"
    http_status = 409


class TooLarge(DuraChatError):
    code = "too_large"
    http_status = 413


class RateLimited(DuraChatError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ProviderError(DuraChatError):
    code = "provider_error"
    http_status = 502


class Unavailable(DuraChatError):
    code = "unavailable"
    http_status = 503


class StoreError(Unavailable):
    """The database refused a write (full disk, locked) or is unreachable."""


class ConfigError(Exception):
    """A setting or the configuration file is wrong; reported in one line at start."""


ERROR_CODES = (
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "rate_limited",
    "too_large",
    "provider_error",
    "conflict",
    "unavailable",
    "internal",
)
