"""Security headers on every kind of response a live server gives (SPEC.md 8)."""

from __future__ import annotations

from tests.e2e.browser import call
from tests.e2e.server import Server


def test_every_response_type_carries_the_security_headers(server: Server) -> None:
    checks = [
        ("GET", "/healthz", None, "application/json"),
        ("GET", "/api/conversations", None, "application/json"),
        ("GET", "/api/conversations/nope", None, "application/json"),  # 404
        ("POST", "/api/chat", {"prompt": 5}, "application/json"),  # 400
        ("PUT", "/api/conversations", None, "application/json"),  # 405
        ("GET", "/test/chat?prompt=!demo%20chunks%3D1%20delay_ms%3D1", None, "text/event-stream"),
        ("GET", "/openapi.json", None, "application/json"),
        ("GET", "/docs", None, "text/html"),
        ("GET", "/", None, "text/html"),
    ]
    for method, path, body, kind in checks:
        answer = call(server, method, path, body)
        headers = answer.headers
        assert headers["Content-Type"].startswith(kind), (path, headers["Content-Type"])
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["Referrer-Policy"] == "no-referrer", path  # one policy everywhere
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy, path
        assert "unsafe-eval" not in policy, path
        if kind != "text/html":
            assert "default-src 'none'" in policy, path
        assert len(headers.get_all("Content-Security-Policy") or []) == 1, path
