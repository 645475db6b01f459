"""What the Gemini API answers when it fails, turned into errors a user can act on.

`describe()` maps the SDK's `APIError` to a `ProviderError` that says what to do
(check the key, wait, shorten the conversation), or to `Retryable` for what another
try may fix: 429 (waiting the `RetryInfo` delay Google sends in the body, or a
`Retry-After` header from a proxy), 5xx, and a refused or dropped connection.
Google answers an invalid key with 400 `API_KEY_INVALID` and may quote the key in
its debug details; messages here never contain it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import httpx
from google.genai import errors

from durachat.errors import ProviderError
from durachat.providers.resilience import Retryable
from durachat.providers.vendor_errors import ErrorContext
from durachat.providers.vendor_errors import display_url as _display_url

GEMINI_API_URL = "https://generativelanguage.googleapis.com"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)s\s*$")
_CONTEXT_WORDS = re.compile(r"input token count|exceeds the maximum number of tokens", re.I)


def display_url(base_url: str) -> str:
    """`base_url` (Google's API when empty) without credentials, for messages."""
    return _display_url(base_url, GEMINI_API_URL)


def context(name: str, base_url: str, api_key: str) -> ErrorContext:
    """The error context of a Gemini provider: named `Gemini`, or `<name> (Gemini)`."""
    label = "Gemini" if name == "gemini" else f"{name} (Gemini)"
    return ErrorContext(name, display_url(base_url), api_key, label)


_KEY_REASONS = ("API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED")
_DETAIL_CHARS = 300


def _details(exc: errors.APIError) -> list[Mapping[str, Any]]:
    body = exc.details
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        found = inner.get("details") if isinstance(inner, Mapping) else None
        if isinstance(found, list):
            return [d for d in found if isinstance(d, Mapping)]
    return []


def _reasons(exc: errors.APIError) -> set[str]:
    return {str(d.get("reason")) for d in _details(exc) if d.get("reason")}


def retry_delay(exc: errors.APIError) -> float | None:
    """Seconds to wait: `google.rpc.RetryInfo.retryDelay` ("37s", "1.5s"), else `Retry-After`."""
    for detail in _details(exc):
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            found = _DURATION.match(str(detail.get("retryDelay", "")))
            if found:
                return float(found.group(1))
    headers = getattr(exc.response, "headers", None)
    raw = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None


def _status_error(
    exc: errors.APIError, ctx: ErrorContext, model: str | None, max_wait_s: float
) -> ProviderError:
    code = exc.code
    detail = ctx.scrub(str(exc.message or ""))
    suffix = f": {detail}" if detail else ""
    reasons = _reasons(exc)
    if code in (401, 403) or reasons & set(_KEY_REASONS):
        why = next((r for r in _KEY_REASONS if r in reasons), exc.status or "")
        status = f"{code} {why}" if why else str(code)
        return ProviderError(f"{ctx.key_hint} was rejected ({status}){suffix}")
    if code == 404:
        what = f"model {model!r}" if model else f"the models list at {ctx.base_url}"
        return ProviderError(f"{ctx.who}: {what} was not found (404){suffix}")
    if code == 429:
        wait = retry_delay(exc)
        if wait is None:
            return Retryable(f"rate limited by {ctx.who} (429), retry later{suffix}")
        message = f"rate limited by {ctx.who} (429), retry in {math.ceil(wait)} s"
        return Retryable(message, wait) if wait <= max_wait_s else ProviderError(message)
    if code in (408, 499) or code >= 500:
        return Retryable(f"{ctx.who} failed with a server error ({code}){suffix}")
    if _CONTEXT_WORDS.search(detail):
        return ProviderError(
            f"the conversation is longer than {model or 'the model'}'s context window{suffix}"
        )
    return ProviderError(f"{ctx.who} refused the request ({code}){suffix}")


def describe(
    exc: errors.APIError | httpx.HTTPError,
    ctx: ErrorContext,
    model: str | None = None,
    *,
    started: bool = False,
    max_wait_s: float = math.inf,
) -> ProviderError:
    """The `ProviderError` (or `Retryable`) a user reads for `exc`.

    `started`: text was already yielded, so a lost connection is final.
    `max_wait_s`: a retry delay longer than this is not waited for.
    """
    if isinstance(exc, errors.APIError):
        return _status_error(exc, ctx, model, max_wait_s)
    reason = "timed out" if isinstance(exc, httpx.TimeoutException) else ctx.scrub(str(exc))
    because = f" ({reason})" if reason else ""
    if started:
        return ProviderError(f"{ctx.who} dropped the connection mid-reply{because}")
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return Retryable(f"cannot reach {ctx.who} at {ctx.base_url}{because}")
    return Retryable(f"{ctx.who} dropped the connection before the first token{because}")


__all__ = ["GEMINI_API_URL", "ErrorContext", "describe", "display_url", "retry_delay"]
