"""The composition root: `create_app(settings)` builds and wires every part.

It opens the store (applying migrations), builds the provider registry, the bus
and the runner, recovers replies a previous process left streaming, and only then
lets `/healthz` answer 200. On shutdown it lets running replies finish for the
grace period, stores the rest `interrupted`, and closes sockets with 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from durachat import __version__
from durachat.api import (
    admin,
    auth,
    conversations,
    errors,
    health,
    search,
    security,
    shares,
    sse,
    transfer,
    uploads,
    ws,
)
from durachat.api.deps import Services
from durachat.api.static import mount as mount_web_ui
from durachat.auth.identity import Identity
from durachat.auth.network import Proxies
from durachat.auth.ratelimit import LoginLimiter
from durachat.auth.tokens import new_token
from durachat.bus.configured import configured_bus
from durachat.domain import new_id
from durachat.metrics import Metrics
from durachat.providers.registry import build_registry
from durachat.runner.leases import configured_leases
from durachat.runner.runner import Runner
from durachat.settings import Settings
from durachat.store.configured import open_configured_store

log = logging.getLogger(__name__)

_INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DuraChat</title></head>
<body><h1>DuraChat</h1>
<p>The server is running. The web app arrives with its own release; until then use
<code>durachat chat</code>, the WebSocket at <code>/ws</code> or the HTTP API
(<a href="/docs">/docs</a>).</p></body></html>
"""


async def build_services(settings: Settings) -> Services:
    store = await open_configured_store(settings)
    try:
        await store.migrate()
        registry = await build_registry(settings)
    except BaseException:
        await store.close()
        raise
    node_id = new_id()  # this process among many nodes: its bus entries and leases
    bus = configured_bus(settings, node_id)
    identity = Identity(store, settings.auth_enabled, settings.public_url, settings.extra_origins)
    metrics = Metrics()
    runner = Runner(settings, store, bus, registry, metrics, configured_leases(settings, node_id))
    metrics.watch(runner, bus, store)
    proxies = Proxies(settings.proxy_networks, settings.public_url)
    limiter = LoginLimiter(
        settings.login_window_s, settings.login_max_per_account, settings.login_max_per_address
    )
    services = Services(
        settings, store, bus, registry, runner, identity, proxies, limiter, metrics=metrics
    )
    if settings.redis_url:
        services.readiness["redis"] = bus.ping
    return services


async def offer_setup(services: Services) -> None:
    """With accounts on and no user yet, print a one-time setup token: it lets a
    browser on another machine create the first admin (loopback needs none)."""
    if not services.settings.auth_enabled or await services.store.list_users():
        return
    services.setup_token = new_token()[0]
    settings = services.settings
    url = settings.public_url or f"http://{settings.host}:{settings.port}/"
    log.warning(
        "no account exists yet: open %s in a browser to create the first admin; "
        "from another machine the setup page asks for the one-time setup token %s",
        url,
        services.setup_token,
    )


async def start_services(services: Services) -> None:
    await services.bus.start()
    await services.identity.ensure_local_user()
    await services.store.delete_old_sessions()
    await offer_setup(services)
    await services.runner.start()
    services.ready = True


async def drain(services: Services) -> None:
    """The graceful part of shutdown (SPEC 4): refuse new replies, let running ones
    finish for the grace period, store the rest `interrupted`, send every socket
    what it is owed, and close the sockets with 1001."""
    if services.draining:
        return
    services.draining = True
    await services.runner.shutdown(services.settings.shutdown_grace_s)
    await asyncio.gather(*(socket.going_away() for socket in list(services.sockets)))


async def stop_services(services: Services) -> None:
    services.ready = False
    await drain(services)
    await services.bus.close()
    await services.registry.aclose()
    await services.store.close()


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await build_services(settings)
        app.state.services = services
        await start_services(services)
        log.info("DuraChat %s ready", __version__)
        try:
            yield
        finally:
            await stop_services(services)

    app = FastAPI(title="DuraChat", version=__version__, lifespan=lifespan)
    errors.install(app)
    security.install(app)
    ws.install(app)  # outermost: `/ws` skips the middleware (and the router)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(conversations.router)
    app.include_router(search.router)
    app.include_router(transfer.router)
    app.include_router(shares.router)
    app.include_router(uploads.router)
    app.include_router(sse.router)

    # The built web UI answers every path no route above took: keep it last. Without
    # a build (a source install that skipped `make`), `/` shows the placeholder.
    if not mount_web_ui(app):

        @app.get("/", include_in_schema=False)
        async def index() -> HTMLResponse:
            return HTMLResponse(_INDEX)

    return app
