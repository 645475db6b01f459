"""What request handlers depend on: the running services and the current user."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Protocol

from fastapi import Depends, Request

from durachat.auth.identity import Identity
from durachat.bus.base import Bus
from durachat.domain import User
from durachat.providers.registry import Registry
from durachat.runner.runner import Runner
from durachat.settings import Settings
from durachat.store.base import Store


class Socket(Protocol):
    """A connected client socket, as the shutdown sequence sees it."""

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
    sockets: set[Socket] = field(default_factory=set)
    ready: bool = False
    draining: bool = False


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def current_user(request: Request) -> User:
    return await services(request).identity.user(request.headers)


ServicesDep = Annotated[Services, Depends(services)]
UserDep = Annotated[User, Depends(current_user)]
