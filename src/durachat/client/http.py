"""The HTTP side of the client library: conversations, snapshots, stop (PROTOCOL.md 8).

Answers are the wire objects of PROTOCOL.md as dictionaries (unknown fields are
kept, as the protocol asks clients to tolerate them). Errors become the client's
exceptions: `AuthError` for 401/403, `ServerError` with the wire code otherwise,
`Unreachable` when no answer came.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from durachat.client.errors import AuthError, ServerError, Unreachable


@dataclass(frozen=True, slots=True)
class ConversationPage:
    conversations: list[dict[str, Any]]
    next_cursor: str | None
    """Pass it back as `cursor` for the next page; None on the last one."""


class HttpApi:
    def __init__(self, base_url: str, token: str | None, timeout: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def list_conversations(
        self, limit: int = 50, cursor: str | None = None, archived: bool = False
    ) -> ConversationPage:
        """Conversations with the newest activity first."""
        params: dict[str, Any] = {"limit": limit, "archived": str(archived).lower()}
        if cursor is not None:
            params["cursor"] = cursor
        body = await self._request("GET", "/api/conversations", params=params)
        return ConversationPage(list(body["conversations"]), body.get("nextCursor"))

    async def get_conversation(self, conversation_id: str) -> dict[str, Any]:
        """The conversation's snapshot: `conversation`, every message, the active stream."""
        return await self._request("GET", f"/api/conversations/{conversation_id}")

    async def stop(self, conversation_id: str) -> bool:
        """Stop the reply streaming in a conversation; False if none was."""
        body = await self._request("POST", f"/api/conversations/{conversation_id}/stop")
        return bool(body.get("stopped"))

    async def _request(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        try:
            response = await self._client.request(method, path, **options)
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach {self._client.base_url}: {exc}") from exc
        body = _json(response)
        if response.is_success:
            return body
        found = body.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        status = response.status_code
        message = str(error.get("message") or response.reason_phrase)
        if status in (401, 403):
            raise AuthError(status, message)
        code = str(error.get("code") or ("internal" if status >= 500 else "bad_request"))
        raise ServerError(code, message, status)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
