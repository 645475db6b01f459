"""What the Anthropic SDK raises, turned into errors a user can act on.

`describe()` maps an SDK exception, or an `error` event inside a stream (which the
SDK raises as an `APIStatusError` of the stream's 200 response, typed by its body),
to a `ProviderError` whose message says what to do (check the key, shorten the
conversation, turn prefill off, wait), or to `Retryable` for what another try may
fix before the first token: 429 (honouring `retry-after`), 529 overloaded, 5xx, a
refused or dropped connection. Messages never contain the API key: it is scrubbed
from anything a server sent back, and URLs are shown without credentials.
"""

from __future__ import annotations

import math
import re

from anthropic import AnthropicError, APIConnectionError, APIStatusError, APITimeoutError

from durachat.errors import ProviderError
from durachat.providers.anthropic_wire import ANTHROPIC_API_URL
from durachat.providers.resilience import Retryable
from durachat.providers.vendor_errors import ErrorContext, retry_after
from durachat.providers.vendor_errors import display_url as _display_url


def display_url(base_url: str) -> str:
    """`base_url` (Anthropic's API when empty) without credentials, for messages."""
    return _display_url(base_url, ANTHROPIC_API_URL)


_TOO_LONG = re.compile(r"prompt is too long|context (window|length)|too many (input )?tokens", re.I)
_LIMIT = re.compile(r"(\d[\d,]*)\s*tokens?\s*>\s*(\d[\d,]*)")
_PREFILL = re.compile(r"prefill", re.I)
_SPEND = ("enforced_spend_limit_reached", "contract_spend_limit_reached")
_RETRY_TYPES = {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}
_DETAIL_CHARS = 300


def _server_message(exc: APIStatusError) -> str:
    message = exc.api_message
    if isinstance(message, str):
        return message
    body = exc.body
    return body if isinstance(body, str) else ""


def context_limit(message: str) -> tuple[bool, int | None]:
    """Whether a 400's message says the prompt is over the context window, and the window."""
    if not _TOO_LONG.search(message):
        return False, None
    found = _LIMIT.search(message)
    return True, int(found.group(2).replace(",", "")) if found else None


def _rate_limited(exc: APIStatusError, ctx: ErrorContext, max_wait_s: float) -> ProviderError:
    if exc.error_code in _SPEND:
        return ProviderError(f"{ctx.name}: the organization's spend limit is reached (429)")
    wait = retry_after(exc.response.headers)
    if wait is None:
        return Retryable(f"rate limited by {ctx.name}, retry later")
    message = f"rate limited by {ctx.name}, retry in {math.ceil(wait)} s"
    return Retryable(message, wait) if wait <= max_wait_s else ProviderError(message)


def _bad_request(exc: APIStatusError, ctx: ErrorContext, model: str | None) -> ProviderError:
    detail = ctx.scrub(_server_message(exc))
    who = model or "the model"
    over, limit = context_limit(detail)
    if over:
        window = f" ({limit} tokens)" if limit else ""
        return ProviderError(f"the conversation is longer than {who}'s context window{window}")
    if _PREFILL.search(detail):
        return ProviderError(
            f"{ctx.name}: {who} cannot continue a reply by prefill; "
            f"set prefill = false for {ctx.name}/{who} in [[models]]"
        )
    suffix = f": {detail}" if detail else ""
    return ProviderError(f"{ctx.name} refused the request (400){suffix}")


def _status_error(
    exc: APIStatusError, ctx: ErrorContext, model: str | None, max_wait_s: float
) -> ProviderError:
    status = exc.status_code
    detail = ctx.scrub(_server_message(exc))
    suffix = f": {detail}" if detail else ""
    if status == 401 or exc.type == "authentication_error":
        if not ctx.api_key:
            return ProviderError(f"{ctx.name} needs an API key (401): set {ctx.key_hint}")
        if ctx.name == "anthropic":
            return ProviderError("ANTHROPIC_API_KEY was rejected (401)")
        return ProviderError(f"{ctx.name}: the API key was rejected (401)")
    if status == 403 or exc.type == "permission_error":
        return ProviderError(f"{ctx.name} denied access (403){suffix}")
    if status == 404 or exc.type == "not_found_error":
        what = f"model {model!r}" if model else f"the models list at {ctx.base_url}"
        return ProviderError(f"{ctx.name}: {what} was not found (404){suffix}")
    if status == 413:
        return ProviderError(f"the request is too large for {ctx.name} (413)")
    if status == 429 or exc.type == "rate_limit_error":
        return _rate_limited(exc, ctx, max_wait_s)
    if status == 529 or exc.type == "overloaded_error":
        return Retryable(f"{ctx.name} is overloaded, try again in a moment")
    code = exc.type if status == 200 else status  # 200: an `error` event in the stream
    if status >= 500 or status == 408 or exc.type in _RETRY_TYPES:
        return Retryable(f"{ctx.name} failed with a server error ({code}){suffix}")
    if status == 400 or exc.type == "invalid_request_error":
        return _bad_request(exc, ctx, model)
    return ProviderError(f"{ctx.name} reported an error ({code}){suffix}")


def _connection_error(exc: APIConnectionError, ctx: ErrorContext) -> ProviderError:
    cause = exc.__cause__
    reason = ctx.scrub(str(cause)) if cause is not None and str(cause) else ""
    if isinstance(exc, APITimeoutError):
        reason = "timed out"
    because = f" ({reason})" if reason else ""
    return Retryable(f"cannot reach {ctx.name} at {ctx.base_url}{because}")


def dropped(ctx: ErrorContext, reason: str, started: bool) -> ProviderError:
    """The stream's connection broke: a `Retryable` before the first token only."""
    because = f" ({ctx.scrub(reason)})" if reason else ""
    if started:
        return ProviderError(f"{ctx.name} dropped the connection mid-reply{because}")
    return Retryable(f"{ctx.name} dropped the connection before the first token{because}")


def describe(
    exc: AnthropicError,
    ctx: ErrorContext,
    model: str | None = None,
    *,
    started: bool = False,
    max_wait_s: float = math.inf,
) -> ProviderError:
    """The `ProviderError` (or `Retryable`) a user reads for `exc`.

    `started`: text was already yielded, so nothing is `Retryable` any more.
    `max_wait_s`: a `retry-after` longer than this is not waited for.
    """
    if isinstance(exc, APIStatusError):
        error = _status_error(exc, ctx, model, max_wait_s)
    elif isinstance(exc, APIConnectionError):
        error = _connection_error(exc, ctx)
    else:
        message = getattr(exc, "message", None) or str(exc)
        error = ProviderError(f"{ctx.name} reported an error: {ctx.scrub(str(message))}")
    if started and isinstance(error, Retryable):
        return ProviderError(error.message)
    return error


__all__ = ["ErrorContext", "context_limit", "describe", "display_url", "dropped", "retry_after"]
