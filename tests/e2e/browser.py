"""A browser-like HTTP caller for the accounts tests: cookies, Origin, any header.

`call` returns the status, the JSON body (or None) and the response headers;
`Session` keeps the session cookie that login or setup set, like a browser.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import orjson

from tests.e2e.server import Server

COOKIE = "durachat_session"


@dataclass
class Answer:
    status: int
    body: Any
    headers: Message

    @property
    def code(self) -> str | None:
        return self.body["error"]["code"] if isinstance(self.body, dict) else None


def call(
    server: Server,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    data = orjson.dumps(body) if body is not None else None
    request = urllib.request.Request(server.http + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            status, answer_headers = response.status, response.headers
    except urllib.error.HTTPError as exc:
        raw, status, answer_headers = exc.read(), exc.code, exc.headers
    try:
        parsed = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        parsed = raw
    return Answer(status, parsed, answer_headers)


def session_cookie(answer: Answer) -> str:
    """The value of the session cookie an answer set."""
    for header in answer.headers.get_all("set-cookie") or []:
        name, _, rest = header.partition("=")
        if name == COOKIE:
            return rest.split(";")[0]
    raise AssertionError(f"no session cookie in {answer.headers}")


@dataclass
class Session:
    """A signed-in browser: sends its cookie and the server's own Origin."""

    server: Server
    cookie: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        origin = f"http://127.0.0.1:{self.server.port}"
        return {"Cookie": f"{COOKIE}={self.cookie}", "Origin": origin, **self.extra}

    def call(self, method: str, path: str, body: Any = None) -> Answer:
        return call(self.server, method, path, body, self.headers)


def login(server: Server, username: str, password: str) -> Session:
    answer = call(server, "POST", "/api/auth/login", {"username": username, "password": password})
    assert answer.status == 200, answer.body
    return Session(server, session_cookie(answer))
