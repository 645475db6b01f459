"""Browser login sessions: a random secret in an HttpOnly cookie, its hash in the store.

The cookie carries 256 random bits; the store keeps only their SHA-256 hash with
an expiry and a revocation flag, so a copy of the database opens no session. A
login always makes a new session (the id is rotated), logout revokes it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from http.cookies import CookieError, SimpleCookie

from durachat.auth.tokens import hash_token

COOKIE_NAME = "durachat_session"


def new_session() -> tuple[str, str]:
    """A new session secret (for the cookie) and the hash to store."""
    secret = secrets.token_urlsafe(32)
    return secret, hash_token(secret)


def expiry_iso(ttl_s: int) -> str:
    """The time `ttl_s` seconds from now, in the store's ISO format."""
    return (datetime.now(UTC) + timedelta(seconds=ttl_s)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def session_secret(headers: Mapping[str, str]) -> str | None:
    """The session secret from a `Cookie` header, if any."""
    raw = headers.get("cookie")
    if not raw:
        return None
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(raw)
    except CookieError:
        return None
    morsel = cookie.get(COOKIE_NAME)
    return morsel.value if morsel is not None and morsel.value else None
