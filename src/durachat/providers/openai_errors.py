"""What the OpenAI SDK raises, turned into errors a user can act on.

`describe()` maps an SDK exception to a `ProviderError` whose message says what to
do (check the key, shorten the conversation, wait), or to `Retryable` for what
another try may fix (429, 408/409, 5xx, a refused or dropped connection before the
first token). Messages never contain the API key: it is scrubbed from anything a
server sent back, and URLs are shown without credentials.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from openai import APIConnectionError, APIStatusError, APITimeoutError, OpenAIError

from durachat.errors import ProviderError
from durachat.providers.resilience import Retryable
from durachat.providers.vendor_errors import ErrorContext, retry_after

_CONTEXT_WORDS = re.compile(r"context[ _](length|window|size)|maximum context", re.IGNORECASE)
_CONTEXT_LIMIT = re.compile(
    r"(?:maximum context length is|context (?:length|window|size)(?: of| is)?)\s*(\d[\d,]*)",
    re.IGNORECASE,
)
_RETRY_STATUSES = (408, 409, 429)
_DETAIL_CHARS = 300


def _server_message(exc: APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping):
        message = body.get("message")
        if isinstance(message, str):
            return message
        return ""
    return body if isinstance(body, str) else ""


def context_limit(exc: APIStatusError) -> tuple[bool, int | None]:
    """Whether `exc` says the prompt is over the context window, and the window if given."""
    body = exc.body if isinstance(exc.body, Mapping) else {}
    message = _server_message(exc)
    over = (
        exc.code == "context_length_exceeded"
        or body.get("type") == "exceed_context_size_error"  # llama.cpp
        or bool(_CONTEXT_WORDS.search(message))
    )
    if not over:
        return False, None
    n_ctx = body.get("n_ctx")
    if isinstance(n_ctx, int) and not isinstance(n_ctx, bool):
        return True, n_ctx
    found = _CONTEXT_LIMIT.search(message)
    return True, int(found.group(1).replace(",", "")) if found else None


def _status_error(
    exc: APIStatusError, ctx: ErrorContext, model: str | None, max_wait_s: float
) -> ProviderError:
    status = exc.status_code
    detail = ctx.scrub(_server_message(exc))
    suffix = f": {detail}" if detail else ""
    if status == 401:
        if not ctx.api_key:
            return ProviderError(f"{ctx.name} needs an API key (401): set {ctx.key_hint}")
        if ctx.name == "openai":
            return ProviderError("OPENAI_API_KEY was rejected (401)")
        return ProviderError(f"{ctx.name}: the API key was rejected (401)")
    if status == 403:
        return ProviderError(f"{ctx.name} denied access (403){suffix}")
    if status == 404:
        what = f"model {model!r}" if model else f"the models list at {ctx.base_url}"
        return ProviderError(f"{ctx.name}: {what} was not found (404){suffix}")
    if status == 429 and exc.code == "insufficient_quota":
        return ProviderError(f"{ctx.name}: the account has no quota left (429){suffix}")
    if status in _RETRY_STATUSES:
        wait = retry_after(exc.response.headers)
        if status != 429:
            return Retryable(f"{ctx.name} answered {status}, try again{suffix}", wait)
        if wait is None:
            return Retryable(f"rate limited by {ctx.name}, retry later", None)
        message = f"rate limited by {ctx.name}, retry in {math.ceil(wait)} s"
        return Retryable(message, wait) if wait <= max_wait_s else ProviderError(message)
    if status >= 500:
        return Retryable(f"{ctx.name} failed with a server error ({status}){suffix}")
    over, limit = context_limit(exc)
    if over:
        window = f" ({limit} tokens)" if limit else ""
        return ProviderError(
            f"the conversation is longer than {model or 'the model'}'s context window{window}"
        )
    return ProviderError(f"{ctx.name} refused the request ({status}){suffix}")


def _connection_error(
    exc: APIConnectionError, ctx: ErrorContext, opened: bool, started: bool
) -> ProviderError:
    cause = exc.__cause__
    reason = ctx.scrub(str(cause)) if cause is not None and str(cause) else ""
    if isinstance(exc, APITimeoutError):
        reason = "timed out"
    because = f" ({reason})" if reason else ""
    if started:
        return ProviderError(f"{ctx.name} dropped the connection mid-reply{because}")
    if opened:
        return Retryable(f"{ctx.name} dropped the connection before the first token{because}")
    return Retryable(f"cannot reach {ctx.name} at {ctx.base_url}{because}")


def describe(
    exc: OpenAIError,
    ctx: ErrorContext,
    model: str | None = None,
    *,
    opened: bool = False,
    started: bool = False,
    max_wait_s: float = math.inf,
) -> ProviderError:
    """The `ProviderError` (or `Retryable`) a user reads for `exc`.

    `opened`: the response had begun (a lost connection is a drop, not a refusal).
    `started`: text was already yielded, so a lost connection is not retried.
    `max_wait_s`: a `Retry-After` longer than this is not waited for.
    """
    if isinstance(exc, APIStatusError):
        return _status_error(exc, ctx, model, max_wait_s)
    if isinstance(exc, APIConnectionError):
        return _connection_error(exc, ctx, opened, started)
    message = getattr(exc, "message", None) or str(exc)
    return ProviderError(f"{ctx.name} reported an error: {ctx.scrub(str(message))}")


__all__ = ["ErrorContext", "context_limit", "describe", "retry_after"]
