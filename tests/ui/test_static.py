"""How the server serves the built UI: cache headers, client routes, its own paths."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterable

import pytest

from tests.e2e.server import Server

HTML = {"Accept": "text/html,application/xhtml+xml"}


def lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in items}


def fetch(
    server: Server, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(server.http + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, lower(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, lower(exc.headers.items()), exc.read()


def test_index_is_not_cached_and_forbids_inline_script(server: Server) -> None:
    status, headers, body = fetch(server, "/", HTML)
    assert status == 200
    assert headers["cache-control"] == "no-cache"
    assert headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert "frame-ancestors 'none'" in csp
    # No inline script in the page itself: every script is a file.
    html = body.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []


def test_hashed_assets_are_immutable(server: Server) -> None:
    _, _, body = fetch(server, "/", HTML)
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', body.decode())
    assert assets
    for path in assets:
        status, headers, _ = fetch(server, path)
        assert status == 200
        assert headers["cache-control"] == "public, max-age=31536000, immutable"
    status, _, _ = fetch(server, "/assets/missing-0000.js", HTML)
    assert status == 404


@pytest.mark.parametrize("path", ["/c/anything", "/settings", "/deep/link?c=abc"])
def test_client_routes_get_the_app(server: Server, path: str) -> None:
    status, headers, body = fetch(server, path, HTML)
    assert status == 200
    assert headers["cache-control"] == "no-cache"
    assert b'<div id="app">' in body


def test_a_non_html_request_for_nothing_is_404(server: Server) -> None:
    status, _, _ = fetch(server, "/nothing.json", {"Accept": "application/json"})
    assert status == 404


@pytest.mark.parametrize("path", ["/api/nope", "/api", "/test/nope", "/ws", "/docs/x"])
def test_server_paths_keep_their_meaning(server: Server, path: str) -> None:
    status, headers, body = fetch(server, path, HTML)
    assert status == 404, path
    assert headers["content-type"].startswith("application/json")
    assert b'"not_found"' in body


def test_server_endpoints_still_answer(server: Server) -> None:
    for path in ("/healthz", "/readyz", "/api/models", "/api/conversations", "/openapi.json"):
        status, headers, _ = fetch(server, path, HTML)
        assert status == 200, path
        assert headers["content-type"].startswith("application/json"), path
    status, headers, _ = fetch(server, "/docs", HTML)
    assert status == 200 and headers["content-type"].startswith("text/html")
    status, _, body = fetch(server, "/metrics")
    assert status == 200 and b"<div" not in body


def test_no_escape_from_the_static_directory(server: Server) -> None:
    for path in ("/../../app.py", "/%2e%2e/app.py", "/assets/..%2f..%2fapp.py"):
        status, _, body = fetch(server, path, {"Accept": "*/*"})
        assert status == 404 or b"create_app" not in body, path
