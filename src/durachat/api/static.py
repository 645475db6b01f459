"""The built web UI (`static/`, made by `make` from `web/`), served at `/`.

Hashed assets under `/assets/` are cached for a year (`immutable`); `index.html` is
never cached, so a new release is picked up by the next load. Any other GET that
accepts HTML and names no file is a client route: it gets `index.html` (history
fallback), except under the server's own paths (`/api/`, `/ws`, `/healthz`, ...),
which keep their meaning and answer 404 as before when nothing matched.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"

# Model output is rendered as sanitised HTML; this policy is a second wall: no
# inline or foreign script can run, the page cannot be framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

RESERVED = ("/api", "/ws", "/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json")
RESERVED_PREFIXES = ("/api/", "/test/", "/docs/")


def is_reserved(path: str) -> bool:
    return path in RESERVED or path.startswith(RESERVED_PREFIXES) or path == "/test"


class StaticUI:
    """An ASGI app for the UI's files and its client routes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()
        self.index = self.directory / "index.html"

    def _file(self, path: str) -> Path | None:
        relative = path.lstrip("/")
        if not relative:
            return None
        candidate = (self.directory / relative).resolve()
        if not candidate.is_relative_to(self.directory) or not candidate.is_file():
            return None
        return candidate

    def _index(self) -> FileResponse:
        return FileResponse(
            self.index,
            media_type="text/html; charset=utf-8",
            headers={
                "Cache-Control": NO_CACHE,
                # nosniff and Referrer-Policy come from api/security.py, as everywhere
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            },
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # no such socket route: close as the router would
            await send({"type": "websocket.close", "code": 1000, "reason": ""})
            return
        request = Request(scope, receive)
        path = request.url.path
        if request.method not in ("GET", "HEAD") or is_reserved(path):
            raise HTTPException(404)
        if path in ("/", "/index.html"):
            response = self._index()
        elif (found := self._file(path)) is not None:
            cache = IMMUTABLE if path.startswith("/assets/") else NO_CACHE
            response = FileResponse(
                found, headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
            )
        elif not path.startswith("/assets/") and "text/html" in request.headers.get("accept", ""):
            response = self._index()
        else:
            raise HTTPException(404)
        await response(scope, receive, send)


def mount(app: FastAPI, directory: Path = STATIC_DIR) -> bool:
    """Serve the built UI at `/` when it exists; must come after every other route.

    Answers False (and mounts nothing) when there is no build, e.g. a package
    installed from source without running the web build."""
    if not (directory / "index.html").is_file():
        return False
    app.router.routes.append(Mount("/", app=StaticUI(directory), name="web-ui"))
    return True
