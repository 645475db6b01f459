"""DuraChat's own JSON export: every conversation with every message of every branch.

```
{"format": "durachat", "version": 1, "exportedAt": "...",
 "conversations": [{"id", "title", "model", "provider", "systemPrompt", "pinned",
   "archived", "currentLeafId", "createdAt", "updatedAt",
   "messages": [{"id", "parentId", "role", "content", "reasoning", "status", "model",
     "provider", "error", "usage", "createdAt", "updatedAt"}]}]}
```

Reading it back gives `ImportedConversation`s with new ids and the same tree; a
conversation keeps its source (`durachat:<id>`), so importing the file twice adds
nothing. Streaming messages are exported as they are and imported `interrupted`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from durachat.domain import Conversation, ErrorInfo, Message, Role, Status, Usage, new_id
from durachat.store.base import ImportedConversation

FORMAT = "durachat"
VERSION = 1
_MAX_TEXT = 10_000_000


def conversation_json(conversation: Conversation, messages: list[Message]) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "title": conversation.title,
        "model": conversation.model,
        "provider": conversation.provider,
        "systemPrompt": conversation.system_prompt,
        "pinned": conversation.pinned,
        "archived": conversation.archived,
        "currentLeafId": conversation.current_leaf_id,
        "createdAt": conversation.created_at,
        "updatedAt": conversation.updated_at,
        "messages": [_message_json(m) for m in messages],
    }


def archive_json(conversations: list[dict[str, Any]], exported_at: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "exportedAt": exported_at,
        "conversations": conversations,
    }


def _message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "parentId": message.parent_id,
        "role": message.role.value,
        "content": message.content,
        "reasoning": message.reasoning,
        "status": message.status.value,
        "model": message.model,
        "provider": message.provider,
        "error": message.error.to_wire() if message.error else None,
        "usage": message.usage.to_wire() if message.usage else None,
        "createdAt": message.created_at,
        "updatedAt": message.updated_at,
    }


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Error(_Strict):
    code: str = Field(max_length=100)
    message: str = Field(max_length=10_000)


class _Usage(_Strict):
    input_tokens: int | None = Field(None, alias="inputTokens")
    output_tokens: int | None = Field(None, alias="outputTokens")


class _Message(_Strict):
    id: str = Field(min_length=1, max_length=200)
    parent_id: str | None = Field(None, alias="parentId")
    role: Role
    content: str = Field(max_length=_MAX_TEXT)
    reasoning: str = Field("", max_length=_MAX_TEXT)
    status: Status = Status.COMPLETE
    model: str | None = Field(None, max_length=300)
    provider: str | None = Field(None, max_length=100)
    error: _Error | None = None
    usage: _Usage | None = None
    created_at: str = Field(alias="createdAt", min_length=1, max_length=64)
    updated_at: str | None = Field(None, alias="updatedAt", max_length=64)


class _Conversation(_Strict):
    id: str = Field(min_length=1, max_length=200)
    title: str = Field(max_length=500)
    model: str = Field(min_length=1, max_length=300)
    provider: str = Field(min_length=1, max_length=100)
    system_prompt: str = Field("", alias="systemPrompt", max_length=100_000)
    pinned: bool = False
    archived: bool = False
    current_leaf_id: str | None = Field(None, alias="currentLeafId")
    created_at: str = Field(alias="createdAt", min_length=1, max_length=64)
    updated_at: str = Field(alias="updatedAt", min_length=1, max_length=64)
    messages: list[_Message]


class Archive(_Strict):
    """The file as read (validated by pydantic; `reader.py` reports its errors)."""

    format: Literal["durachat"]
    version: Literal[1]
    conversations: list[_Conversation]


def read_archive(archive: Archive) -> list[ImportedConversation]:
    return [_imported(c) for c in archive.conversations]


def _imported(source: _Conversation) -> ImportedConversation:
    conversation_id = new_id()
    known = {m.id for m in source.messages}
    ids = {old: new_id() for old in known}
    messages = []
    for m in source.messages:
        parent = ids.get(m.parent_id) if m.parent_id is not None else None
        messages.append(
            Message(
                id=ids[m.id],
                conversation_id=conversation_id,
                parent_id=parent,
                role=m.role,
                content=m.content,
                status=Status.INTERRUPTED if m.status is Status.STREAMING else m.status,
                seq=0,
                model=m.model,
                provider=m.provider,
                error=ErrorInfo(m.error.code, m.error.message) if m.error else None,
                usage=Usage(m.usage.input_tokens, m.usage.output_tokens) if m.usage else None,
                reasoning=m.reasoning,
                created_at=m.created_at,
                updated_at=m.updated_at or m.created_at,
            )
        )
    leaf = ids.get(source.current_leaf_id) if source.current_leaf_id else None
    return ImportedConversation(
        id=conversation_id,
        source_id=f"{FORMAT}:{source.id}",
        original_id=source.id,
        title=source.title,
        model=source.model,
        provider=source.provider,
        system_prompt=source.system_prompt,
        pinned=source.pinned,
        archived=source.archived,
        messages=tuple(messages),
        current_leaf_id=leaf,
        created_at=source.created_at,
        updated_at=source.updated_at,
    )


__all__ = ["FORMAT", "VERSION", "Archive", "archive_json", "conversation_json", "read_archive"]
