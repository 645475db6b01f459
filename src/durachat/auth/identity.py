"""Who a request or a WebSocket upgrade belongs to.

HTTP and WebSocket share this one path: an `Authorization: Bearer <token>` header
names a user through their API token, else the session cookie set by login names
them through their session; in single-user mode (`DURACHAT_AUTH=off`) every
request belongs to the local user. Also the Origin rule of PROTOCOL.md section 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from durachat.auth.sessions import session_secret
from durachat.auth.tokens import hash_token
from durachat.domain import User
from durachat.errors import Forbidden, Unauthorized
from durachat.store.base import Store

LOCAL_USERNAME = "local"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user and how: `token`, `session` (a cookie) or `local`;
    `credential` is the hash of the token or session secret that was used."""

    user: User
    via: str
    credential: str | None = None

    @property
    def session_hash(self) -> str | None:
        return self.credential if self.via == "session" else None


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

    @property
    def auth_enabled(self) -> bool:
        return self._auth_enabled

    async def user(self, headers: Mapping[str, str]) -> User:
        """The user the headers authenticate; `Unauthorized` or `Forbidden` otherwise."""
        return (await self.authenticate(headers)).user

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The user the headers authenticate and how; `Unauthorized` or `Forbidden`."""
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            token_hash = hash_token(token.strip())
            user = await self._store.user_for_token(token_hash)
            if user is None:
                raise Unauthorized("the API token is invalid or revoked")
            return Principal(_enabled(user), "token", token_hash)
        secret = session_secret(headers) if self._auth_enabled else None
        if secret is not None:
            session_hash = hash_token(secret)
            user = await self._store.user_for_session(session_hash)
            if user is None:
                raise Unauthorized("the session has expired or ended; sign in again")
            return Principal(_enabled(user), "session", session_hash)
        if not self._auth_enabled and self._local is not None:
            return Principal(self._local, "local")
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


def _enabled(user: User) -> User:
    if user.disabled:
        raise Forbidden("this account is disabled")
    return user


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
