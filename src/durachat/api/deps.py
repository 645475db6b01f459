"""What request handlers depend on: the running services and the current user."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Protocol

from fastapi import Depends, Request

from durachat.auth.identity import Identity, Principal
from durachat.auth.network import Proxies
from durachat.auth.ratelimit import LoginLimiter
from durachat.bus.base import Bus
from durachat.bus.outbox import Outbox
from durachat.domain import User
from durachat.errors import Forbidden
from durachat.metrics import Metrics
from durachat.providers.registry import Registry
from durachat.runner.runner import Runner
from durachat.settings import Settings
from durachat.store.base import Store


class Socket(Protocol):
    """A connected client socket (WebSocket or SSE stream), as shutdown and account
    changes see it."""

    outbox: Outbox
    credential: str | None
    """Hash of the token or session that opened it, if known (ended with it)."""

    async def end(self, code: int, reason: str) -> None:
        """Close at once (a disabled account): WebSockets with `code`."""
        ...

    async def going_away(self) -> None:
        """Send what is queued, then close with 1001."""
        ...


@dataclass
class Services:
    """Everything `create_app` builds, shared by every handler."""

    settings: Settings
    store: Store
    bus: Bus
    registry: Registry
    runner: Runner
    identity: Identity
    proxies: Proxies
    limiter: LoginLimiter
    metrics: Metrics = field(default_factory=Metrics)
    """The app's Prometheus registry; the runner records into the same one."""
    readiness: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)
    """Checks `/readyz` runs besides the database's, by name; each raises or answers
    False while its dependency fails. Register the Redis bus's ping as `redis` when
    Redis is configured."""
    sockets: set[Socket] = field(default_factory=set)
    setup_token: str | None = None
    """Printed in the log at start when no user exists; lets a non-loopback client
    create the first admin."""
    ready: bool = False
    draining: bool = False


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def current_principal(request: Request) -> Principal:
    """The caller; a cookie-authenticated state-changing request must come from an
    allowed Origin (the server's own, or `DURACHAT_ALLOWED_ORIGINS`)."""
    identity = services(request).identity
    principal = await identity.authenticate(request.headers)
    cross_site = "origin" not in request.headers or not identity.origin_allowed(request.headers)
    if principal.via == "session" and request.method not in _SAFE_METHODS and cross_site:
        raise Forbidden("cross-site request refused (Origin not allowed)")
    return principal


async def current_user(request: Request) -> User:
    return (await current_principal(request)).user


async def end_sockets(
    services: Services, user_id: str, code: int, reason: str, credential: str | None = None
) -> None:
    """Close every live socket and stream of a user at once (only those opened with
    `credential`, when given: a revoked token, an ended session)."""
    mine = [
        s
        for s in list(services.sockets)
        if s.outbox.user_id == user_id and (credential is None or s.credential == credential)
    ]
    for socket in mine:
        await socket.end(code, reason)


ServicesDep = Annotated[Services, Depends(services)]
UserDep = Annotated[User, Depends(current_user)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
