"""The security headers wrap the whole stack: even an unexpected 500 carries them."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from durachat.api import errors, security


def test_a_500_answer_carries_the_headers_too() -> None:
    app = FastAPI()
    errors.install(app)
    security.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    answer = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert answer.status_code == 500 and answer.json()["error"]["code"] == "internal"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
