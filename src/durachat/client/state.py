"""The resume rules of PROTOCOL.md section 5, without I/O.

`ConversationState` applies server frames for one conversation and says when the
client must re-subscribe (a gap, a `resync`, an unknown message). Every client of
this package (the terminal chat, the benchmarks, the tests) keeps its state here,
so the rules are written once. Frames of other conversations are ignored.

Nothing here does I/O or keeps time: feed it frames, act on what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class MessageState:
    """One message as the client knows it: its text, last applied seq and status.

    Text is appended in pieces and joined when read, so following a long reply
    costs linear time, not quadratic.
    """

    __slots__ = ("_parts", "error", "id", "parent_id", "role", "seq", "status", "usage")

    def __init__(
        self,
        id: str,
        role: str,
        parent_id: str | None,
        content: str = "",
        seq: int = 0,
        status: str = "streaming",
        error: dict[str, Any] | None = None,
        usage: dict[str, Any] | None = None,
    ) -> None:
        self.id = id
        self.role = role
        self.parent_id = parent_id
        self._parts = [content] if content else []
        self.seq = seq
        self.status = status
        self.error = error
        self.usage = usage

    @property
    def content(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def append(self, text: str) -> None:
        self._parts.append(text)

    @property
    def finished(self) -> bool:
        return self.status != "streaming"

    def __repr__(self) -> str:
        return (
            f"MessageState(id={self.id!r}, role={self.role!r}, seq={self.seq}, "
            f"status={self.status!r}, content={self.content[:40]!r})"
        )


@dataclass(frozen=True, slots=True)
class Resubscribe:
    """The client must send `subscribe` with this position (None: a full catch-up)."""

    after_message_id: str | None
    after_seq: int | None

    def frame(self, conversation_id: str) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "subscribe", "conversationId": conversation_id}
        if self.after_message_id is not None:
            frame["afterMessageId"] = self.after_message_id
            frame["afterSeq"] = self.after_seq
        return frame

    def query(self, conversation_id: str) -> dict[str, str]:
        """The same position as `/ws` query parameters (PROTOCOL.md section 2)."""
        query = {"conversationId": conversation_id}
        if self.after_message_id is not None:
            query["afterMessageId"] = self.after_message_id
            query["afterSeq"] = str(self.after_seq or 0)
        return query


def frame_conversation(frame: dict[str, Any]) -> str | None:
    """The conversation a server frame is about, if it names one."""
    conversation_id = frame.get("conversationId")
    if conversation_id is None and isinstance(frame.get("conversation"), dict):
        conversation_id = frame["conversation"].get("id")
    return conversation_id if isinstance(conversation_id, str) else None


@dataclass
class ConversationState:
    """What a client knows of one conversation."""

    conversation_id: str
    conversation: dict[str, Any] | None = None
    messages: dict[str, MessageState] = field(default_factory=dict)
    duplicates: int = 0
    gaps: int = 0

    def resume_point(self) -> Resubscribe:
        """Where to resume from: the newest assistant message and its last applied seq."""
        message = self.newest_assistant()
        if message is None:
            return Resubscribe(None, None)
        return Resubscribe(message.id, message.seq)

    def apply(self, frame: dict[str, Any]) -> Resubscribe | None:
        """Apply one server frame of this conversation; maybe ask to re-subscribe."""
        about = frame_conversation(frame)
        if about is not None and about != self.conversation_id:
            return None
        kind = frame.get("type")
        if kind == "catchup":
            self._catchup(frame)
        elif kind in ("conversation_created", "message_started"):
            self._started(frame)
        elif kind == "text":
            return self._text(frame)
        elif kind == "done":
            return self._done(frame)
        elif kind == "error" and frame.get("messageId") in self.messages:
            self.messages[frame["messageId"]].error = {
                "code": frame.get("code"),
                "message": frame.get("message"),
            }
        elif kind == "resync":
            return self.resume_point()
        elif kind == "conversation_updated":
            self.conversation = frame.get("conversation")
        return None

    def _catchup(self, frame: dict[str, Any]) -> None:
        self.conversation = frame.get("conversation")
        self.messages = {}
        for wire in frame.get("messages", []):
            self._add(wire)

    def _add(self, wire: dict[str, Any]) -> MessageState:
        message = MessageState(
            wire["id"],
            wire["role"],
            wire.get("parentId"),
            wire.get("content", ""),
            int(wire.get("seq", 0)),
            wire.get("status", "complete"),
            wire.get("error"),
            wire.get("usage"),
        )
        self.messages[message.id] = message
        return message

    def _started(self, frame: dict[str, Any]) -> None:
        if frame.get("conversation"):
            self.conversation = frame["conversation"]
        for key in ("userMessage", "message"):
            wire = frame.get(key)
            if wire and wire["id"] not in self.messages:
                self._add(wire)

    def _text(self, frame: dict[str, Any]) -> Resubscribe | None:
        message = self.messages.get(frame["messageId"])
        if message is None:
            self.gaps += 1
            return self.resume_point()
        seq = int(frame["seq"])
        if seq <= message.seq:
            self.duplicates += 1
            return None
        if seq != message.seq + 1:
            self.gaps += 1
            return Resubscribe(message.id, message.seq)
        message.append(frame["content"])
        message.seq = seq
        return None

    def _done(self, frame: dict[str, Any]) -> Resubscribe | None:
        message = self.messages.get(frame["messageId"])
        if message is None:
            return self.resume_point()
        seq = int(frame["seq"])
        if seq > message.seq:
            self.gaps += 1
            return Resubscribe(message.id, message.seq)
        if seq < message.seq:
            # We applied text the message does not have (only after a server crash):
            # a full catch-up tells what it really holds.
            return Resubscribe(None, None)
        message.status = frame["status"]
        if frame.get("usage") is not None:
            message.usage = frame["usage"]
        return None

    def newest_assistant(self) -> MessageState | None:
        for message in reversed(self.messages.values()):
            if message.role == "assistant":
                return message
        return None
