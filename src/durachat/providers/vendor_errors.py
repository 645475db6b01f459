"""What every provider's error messages share, with no vendor SDK imported.

Who failed and where (`ErrorContext`, `display_url`), how long the vendor asked us
to wait (`retry_after`), and the one rule of every message: the API key never
appears in it (`ErrorContext.scrub`), and URLs are shown without credentials.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

DETAIL_CHARS = 300
"""How much of a server's own message is quoted."""

_KEY_VARIABLES = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
}


def display_url(base_url: str, default: str) -> str:
    """`base_url` (or the vendor's `default`) without credentials or query."""
    parts = urlsplit(base_url or default)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}".rstrip("/")


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """Who failed, for the message: the provider's name and where it lives."""

    name: str
    base_url: str
    """Without credentials (`display_url`)."""
    api_key: str = field(default="", repr=False)
    label: str = ""
    """How messages name the provider, when not by `name`."""

    @property
    def who(self) -> str:
        return self.label or self.name

    @property
    def key_hint(self) -> str:
        """Where the user sets this provider's key."""
        return _KEY_VARIABLES.get(self.name) or f"the api_key_env of [[providers]] {self.name!r}"

    def scrub(self, text: str) -> str:
        """`text` without the API key, on one line, shortened."""
        if self.api_key:
            text = text.replace(self.api_key, "***")
        text = " ".join(text.split())
        return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 3] + "..."


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None
