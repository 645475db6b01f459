"""Pure values of DuraChat: users, conversations, messages, usage, ids and times.

No I/O here. The wire shapes of PROTOCOL.md section 4 (camelCase message and
conversation objects) are produced by `to_wire()` so every transport agrees.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id() -> str:
    """A 26-character, URL-safe, time-sortable id (48-bit ms time + 80 random bits)."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


_last_time = datetime.fromtimestamp(0, UTC)


def now_iso() -> str:
    """The current UTC time as ISO 8601 with microseconds and a `Z`.

    Strictly increasing within a process, so rows created one after the other (a
    user message, then its reply) sort in that order by time.
    """
    global _last_time
    now = datetime.now(UTC)
    if now <= _last_time:
        now = _last_time + timedelta(microseconds=1)
    _last_time = now
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


class Status(StrEnum):
    COMPLETE = "complete"
    STREAMING = "streaming"
    CANCELLED = "cancelled"
    ERROR = "error"
    INTERRUPTED = "interrupted"

    @property
    def final(self) -> bool:
        return self is not Status.STREAMING


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None

    def to_wire(self) -> dict[str, int | None]:
        return {"inputTokens": self.input_tokens, "outputTokens": self.output_tokens}


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    code: str
    message: str

    def to_wire(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to a user message, as the message shows it (its chip).

    The file itself is an upload (`store/uploads.py`); the prompt builder reads it
    when the message is sent to a model (`uploads/prompt.py`)."""

    id: str
    name: str
    kind: str
    """`text`, `image` or `pdf`."""
    media_type: str
    size: int
    width: int | None = None
    height: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "mediaType": self.media_type,
            "size": self.size,
            "width": self.width,
            "height": self.height,
        }


@dataclass(frozen=True, slots=True)
class Upload:
    """An uploaded file's metadata; its bytes live under a server-chosen name."""

    id: str
    user_id: str
    name: str
    kind: str
    media_type: str
    size: int
    width: int | None = None
    height: int | None = None
    chars: int = 0
    """Characters of text a text file or PDF inlines into a prompt (0 for images)."""
    created_at: str = field(default_factory=now_iso)

    @property
    def attachment(self) -> Attachment:
        return Attachment(
            self.id, self.name, self.kind, self.media_type, self.size, self.width, self.height
        )

    def to_wire(self) -> dict[str, Any]:
        return {**self.attachment.to_wire(), "chars": self.chars, "createdAt": self.created_at}


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    is_admin: bool = False
    disabled: bool = False
    created_at: str = field(default_factory=now_iso)


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    conversation_id: str
    parent_id: str | None
    role: Role
    content: str
    status: Status
    seq: int
    model: str | None = None
    provider: str | None = None
    error: ErrorInfo | None = None
    usage: Usage | None = None
    reasoning: str = ""
    reasoning_seq: int = 0
    epoch: int = 0
    client_message_id: str | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    attachments: tuple[Attachment, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "id": self.id,
            "conversationId": self.conversation_id,
            "parentId": self.parent_id,
            "role": self.role.value,
            "content": self.content,
            "status": self.status.value,
            "isStreaming": self.status is Status.STREAMING,
            "streamCompleted": self.status is Status.COMPLETE,
            "seq": self.seq,
            "model": self.model,
            "provider": self.provider,
            "error": self.error.to_wire() if self.error else None,
            "usage": self.usage.to_wire() if self.usage else None,
            "attachments": [a.to_wire() for a in self.attachments],
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }
        if self.reasoning:
            wire["reasoning"] = self.reasoning
            wire["reasoningSeq"] = self.reasoning_seq
        return wire


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    user_id: str
    title: str
    model: str
    provider: str
    system_prompt: str = ""
    pinned: bool = False
    archived: bool = False
    current_leaf_id: str | None = None
    active_message_id: str | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    @property
    def has_active_stream(self) -> bool:
        return self.active_message_id is not None

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "model": self.model,
            "provider": self.provider,
            "systemPrompt": self.system_prompt,
            "pinned": self.pinned,
            "archived": self.archived,
            "currentLeafId": self.current_leaf_id,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "hasActiveStream": self.has_active_stream,
        }


def split_model_id(model_id: str) -> tuple[str, str]:
    """`provider/model` split at the first slash; upstream ids keep their own slashes."""
    provider, sep, name = model_id.partition("/")
    if not sep or not provider or not name:
        raise ValueError(f"model id {model_id!r} is not of the form provider/model")
    return provider, name


def branch_path(messages: list[Message], leaf_id: str) -> list[Message]:
    """The messages from the root to `leaf_id`, root first."""
    by_id = {m.id: m for m in messages}
    path: list[Message] = []
    current: str | None = leaf_id
    while current is not None:
        message = by_id[current]
        path.append(message)
        current = message.parent_id
    path.reverse()
    return path
