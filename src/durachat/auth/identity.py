"""Who a request or a WebSocket upgrade belongs to.

HTTP and WebSocket share this one path: an `Authorization: Bearer <token>` header
names a user through their API token; in single-user mode (`DURACHAT_AUTH=off`)
every request belongs to the local user. Browser sessions arrive with the accounts
work. Also the Origin rule of PROTOCOL.md section 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from durachat.auth.tokens import hash_token
from durachat.domain import User
from durachat.errors import Forbidden, Unauthorized
from durachat.store.base import Store

LOCAL_USERNAME = "local"


class Identity:
    """Resolves users from request headers."""

    def __init__(
        self, store: Store, auth_enabled: bool, public_url: str, extra_origins: frozenset[str]
    ) -> None:
        self._store = store
        self._auth_enabled = auth_enabled
        self._public_origin = _origin(public_url) if public_url else None
        self._extra_origins = extra_origins
        self._local: User | None = None

    async def ensure_local_user(self) -> None:
        """Single-user mode: make sure the local user exists."""
        if self._auth_enabled:
            return
        found = await self._store.find_user(LOCAL_USERNAME)
        if found is None:
            self._local = await self._store.create_user(LOCAL_USERNAME, "!", is_admin=True)
        else:
            self._local = found[0]

    async def user(self, headers: Mapping[str, str]) -> User:
        """The user the headers authenticate; `Unauthorized` or `Forbidden` otherwise."""
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            user = await self._store.user_for_token(hash_token(token.strip()))
            if user is None:
                raise Unauthorized("the API token is invalid or revoked")
            if user.disabled:
                raise Forbidden("this account is disabled")
            return user
        if not self._auth_enabled and self._local is not None:
            return self._local
        raise Unauthorized("sign in or send an API token as 'Authorization: Bearer <token>'")

    def origin_allowed(self, headers: Mapping[str, str]) -> bool:
        """An Origin header, if present, must be the server's own or an allowed one."""
        origin = headers.get("origin")
        if origin is None:
            return True
        origin = origin.rstrip("/")
        if origin in self._extra_origins:
            return True
        if self._public_origin is not None:
            return origin == self._public_origin
        host = headers.get("host", "")
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
