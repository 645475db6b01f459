"""The rule for usernames, shared by the HTTP API and the command line."""

from __future__ import annotations

from durachat.errors import BadRequest

MAX_LENGTH = 64


def check_username(username: str) -> str:
    """The username stripped; `BadRequest` with a clear message if it is not acceptable."""
    username = username.strip()
    printable = username.isprintable() and not any(c.isspace() for c in username)
    if not username or len(username) > MAX_LENGTH or not printable:
        raise BadRequest(f"a username is 1 to {MAX_LENGTH} printable characters without spaces")
    return username
