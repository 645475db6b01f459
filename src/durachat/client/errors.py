"""The exceptions of the client library, all under `ClientError`.

Transport failures (a server that cannot be reached, a refused connection) are
told apart from what the server answered (`ServerError` with its wire code).
The server's own exception tree (`durachat.errors`) is not used here: it
describes what a server does, not what a client meets.
"""

from __future__ import annotations


class ClientError(Exception):
    """Anything the client library raises on purpose."""


class Unreachable(ClientError):
    """The server could not be reached, or stayed unreachable past the give-up deadline."""


class AuthError(ClientError):
    """The server refused our credentials or origin (WebSocket close 4401/4403, HTTP 401/403)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason or ("forbidden" if code in (403, 4403) else "unauthorized"))
        self.code = code
        self.reason = reason


class ServerError(ClientError):
    """The server answered with an error (an `error` frame or an HTTP error body)."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        """The HTTP status, for errors answered over HTTP."""

    @property
    def retryable(self) -> bool:
        """The server is shutting down or a dependency is down: try again later."""
        return self.code == "unavailable"


class ReplyFailed(ServerError):
    """The reply ended with status `error` (the provider failed); its partial text is kept."""

    def __init__(
        self, code: str, message: str, conversation_id: str, message_id: str, content: str
    ) -> None:
        super().__init__(code, message)
        self.conversation_id = conversation_id
        self.message_id = message_id
        self.content = content
