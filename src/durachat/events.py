"""The server -> client events of a stream, encoded once.

A `Frame` is one event of PROTOCOL.md section 4 with its JSON text already made:
the bus hands the same string to every subscriber, so no event is encoded twice.
The few fields the bus and the resume logic need (`kind`, conversation, message,
`seq`) ride along unencoded. Pure values, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from durachat.domain import Conversation, ErrorInfo, Message, Status, Usage


@dataclass(slots=True)
class Frame:
    """One encoded event and the routing facts about it. Never changed once made
    (not frozen only because a frozen dataclass is slower to build, per chunk)."""

    kind: str
    data: str
    conversation_id: str | None = None
    message_id: str | None = None
    seq: int = 0
    content: str = ""
    """The text of a `text` frame, kept to rebuild a reply from the replay log."""


def encode(payload: dict[str, Any]) -> str:
    return orjson.dumps(payload).decode()


def _frame(
    kind: str,
    payload: dict[str, Any],
    conversation_id: str | None = None,
    message_id: str | None = None,
    seq: int = 0,
) -> Frame:
    payload = {"type": kind, **payload}
    return Frame(kind, encode(payload), conversation_id, message_id, seq)


class TextEncoder:
    """Builds the `text` frames of one reply: the part that never changes (type and
    ids) is encoded once, so a chunk costs one string encode and one format."""

    __slots__ = ("_head", "conversation_id", "message_id")

    def __init__(self, conversation_id: str, message_id: str) -> None:
        self.conversation_id = conversation_id
        self.message_id = message_id
        head = {"type": "text", "conversationId": conversation_id, "messageId": message_id}
        self._head = encode(head)[:-1] + ',"seq":'

    def __call__(self, seq: int, content: str) -> Frame:
        data = f'{self._head}{seq},"content":{orjson.dumps(content).decode()}}}'
        return Frame("text", data, self.conversation_id, self.message_id, seq, content)


def text(conversation_id: str, message_id: str, seq: int, content: str) -> Frame:
    return TextEncoder(conversation_id, message_id)(seq, content)


def reasoning(conversation_id: str, message_id: str, reasoning_seq: int, content: str) -> Frame:
    payload = {
        "conversationId": conversation_id,
        "messageId": message_id,
        "reasoningSeq": reasoning_seq,
        "content": content,
    }
    return _frame("reasoning", payload, conversation_id, message_id, 0)


def done(
    conversation_id: str, message_id: str, seq: int, status: Status, usage: Usage | None
) -> Frame:
    payload = {
        "conversationId": conversation_id,
        "messageId": message_id,
        "seq": seq,
        "status": status.value,
        "usage": usage.to_wire() if usage else None,
    }
    return _frame("done", payload, conversation_id, message_id, seq)


def done_for(message: Message) -> Frame:
    """The `done` of a finished message, made from its stored state."""
    return done(message.conversation_id, message.id, message.seq, message.status, message.usage)


def error(
    error_info: ErrorInfo, conversation_id: str | None = None, message_id: str | None = None
) -> Frame:
    payload: dict[str, Any] = {"code": error_info.code, "message": error_info.message}
    if conversation_id is not None:
        payload["conversationId"] = conversation_id
    if message_id is not None:
        payload["messageId"] = message_id
    return _frame("error", payload, conversation_id, message_id)


def hello(session_id: str, user_id: str) -> Frame:
    return _frame("hello", {"sessionId": session_id, "userId": user_id, "protocol": 1})


def message_started(
    user_message: Message | None,
    message: Message,
    client_message_id: str | None,
) -> Frame:
    payload: dict[str, Any] = {
        "conversationId": message.conversation_id,
        "messageId": message.id,
        "userMessageId": message.parent_id,
        "parentId": user_message.parent_id if user_message else message.parent_id,
        "userMessage": user_message.to_wire() if user_message else None,
        "message": message.to_wire(),
    }
    if client_message_id is not None:
        payload["clientMessageId"] = client_message_id
    return _frame("message_started", payload, message.conversation_id, message.id, 0)


def conversation_created(
    conversation: Conversation,
    user_message: Message,
    message: Message,
    client_message_id: str | None,
) -> Frame:
    payload: dict[str, Any] = {
        "conversationId": conversation.id,
        "messageId": message.id,
        "userMessageId": user_message.id,
        "conversation": conversation.to_wire(),
        "userMessage": user_message.to_wire(),
        "message": message.to_wire(),
    }
    if client_message_id is not None:
        payload["clientMessageId"] = client_message_id
    return _frame("conversation_created", payload, conversation.id, message.id)


def catchup_payload(conversation: Conversation, messages: list[Message]) -> dict[str, Any]:
    """The `catchup` object (without `type`): a consistent snapshot of a conversation."""
    active = next((m for m in messages if m.status is Status.STREAMING), None)
    wire_conversation = conversation.to_wire()
    wire_conversation["hasActiveStream"] = active is not None
    return {
        "conversation": wire_conversation,
        "messages": [m.to_wire() for m in messages],
        "hasActiveStream": active is not None,
        "activeMessageId": active.id if active else None,
        "activeSeq": active.seq if active else None,
    }


def catchup(conversation: Conversation, messages: list[Message]) -> Frame:
    return _frame("catchup", catchup_payload(conversation, messages), conversation.id)


def conversation_updated(conversation: Conversation) -> Frame:
    return _frame("conversation_updated", {"conversation": conversation.to_wire()}, None)


def conversation_deleted(conversation_id: str) -> Frame:
    return _frame("conversation_deleted", {"conversationId": conversation_id}, None)


def resync(conversation_id: str, reason: str = "slow_consumer") -> Frame:
    return _frame("resync", {"conversationId": conversation_id, "reason": reason}, conversation_id)


PONG = _frame("pong", {})
