"""Reading ChatGPT's data export (`conversations.json`), branches kept.

The file is a list of conversations, each with a `mapping` of nodes by id (`{id,
message, parent, children}`) and the `current_node` shown last. A node's
`message` (or null, at the root) has `author.role`, `create_time` (epoch seconds
or null), `content` (`content_type` `text` or `multimodal_text` with `parts`,
`code` with `text`) and `metadata.model_slug`. User and assistant messages with
text are kept; system, tool and hidden nodes and non-text content are skipped,
their children re-attached to the nearest kept ancestor. Times are made strictly
increasing along each path, so children sort after their parents.

Each conversation's source is `chatgpt:<conversation id>`: importing the same file
twice adds nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from durachat.domain import Message, Role, Status, new_id, now_iso
from durachat.store.base import ImportedConversation

_ROLES = {"user": Role.USER, "assistant": Role.ASSISTANT}
_TEXT_TYPES = {"text", "multimodal_text"}


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Author(_Loose):
    role: str


class _Content(_Loose):
    content_type: str = "text"
    parts: list[Any] | None = None
    text: str | None = None


class _Message(_Loose):
    author: _Author
    create_time: float | None = None
    content: _Content = Field(default_factory=_Content)
    metadata: dict[str, Any] = Field(default_factory=dict)


class _Node(_Loose):
    message: _Message | None = None
    parent: str | None = None
    children: list[str] = Field(default_factory=list)


class ChatGptConversation(_Loose):
    id: str | None = None
    conversation_id: str | None = None
    title: str | None = None
    create_time: float | None = None
    update_time: float | None = None
    mapping: dict[str, _Node]
    current_node: str | None = None
    is_archived: bool = False


def read_chatgpt(
    conversations: list[ChatGptConversation], model: str, provider: str
) -> list[ImportedConversation]:
    """The conversations to import; `model` is the one new turns will use."""
    return [_imported(c, model, provider) for c in conversations]


def _text(message: _Message) -> str:
    content = message.content
    if content.content_type in _TEXT_TYPES:
        return "\n".join(p for p in content.parts or () if isinstance(p, str)).strip()
    if content.content_type == "code" and content.text:
        return f"```\n{content.text}\n```"
    return ""


def _kept(node: _Node) -> bool:
    message = node.message
    if message is None or message.author.role not in _ROLES:
        return False
    if message.metadata.get("is_visually_hidden_from_conversation"):
        return False
    return bool(_text(message))


def _time(epoch: float | None, fallback: datetime) -> datetime:
    if epoch is None:
        return fallback
    try:
        return datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        return fallback


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _imported(source: ChatGptConversation, model: str, provider: str) -> ImportedConversation:
    conversation_id = new_id()
    mapping = source.mapping
    started = _time(source.create_time, datetime.now(UTC))
    new_ids: dict[str, str] = {}  # kept node id -> new message id
    messages: list[Message] = []
    # walk from the roots, parents before children; `kept_parent` is the nearest
    # kept ancestor's node id
    roots = [key for key, node in mapping.items() if node.parent not in mapping]
    stack: list[tuple[str, str | None, datetime]] = [(r, None, started) for r in reversed(roots)]
    seen: set[str] = set()
    while stack:
        key, kept_parent, after = stack.pop()
        if key in seen or key not in mapping:
            continue
        seen.add(key)
        node = mapping[key]
        here, moment = kept_parent, after
        if _kept(node) and node.message is not None:
            moment = max(_time(node.message.create_time, after), after + timedelta(microseconds=1))
            new_ids[key] = new_id()
            slug = node.message.metadata.get("model_slug")
            role = _ROLES[node.message.author.role]
            messages.append(
                Message(
                    id=new_ids[key],
                    conversation_id=conversation_id,
                    parent_id=new_ids[kept_parent] if kept_parent else None,
                    role=role,
                    content=_text(node.message),
                    status=Status.COMPLETE,
                    seq=0,
                    model=str(slug) if role is Role.ASSISTANT and slug else None,
                    provider="openai" if role is Role.ASSISTANT and slug else None,
                    created_at=_iso(moment),
                    updated_at=_iso(moment),
                )
            )
            here = key
        stack.extend((child, here, moment) for child in reversed(node.children))
    leaf = _nearest_kept(mapping, source.current_node, new_ids)
    updated = _iso(_time(source.update_time, started)) if source.update_time else now_iso()
    original = source.conversation_id or source.id or f"untitled-{source.create_time}"
    return ImportedConversation(
        id=conversation_id,
        source_id=f"chatgpt:{original}",
        title=(source.title or "Imported chat")[:500],
        model=model,
        provider=provider,
        messages=tuple(messages),
        current_leaf_id=leaf or (messages[-1].id if messages else None),
        created_at=_iso(started),
        updated_at=max(updated, messages[-1].created_at) if messages else updated,
        archived=source.is_archived,
    )


def _nearest_kept(
    mapping: dict[str, _Node], key: str | None, new_ids: dict[str, str]
) -> str | None:
    seen: set[str] = set()
    while key is not None and key in mapping and key not in seen:
        if key in new_ids:
            return new_ids[key]
        seen.add(key)
        key = mapping[key].parent
    return None


__all__ = ["ChatGptConversation", "read_chatgpt"]
