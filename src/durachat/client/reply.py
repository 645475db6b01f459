"""One generating command and its reply, as a sans-I/O machine.

`ReplySession` is what `DuraChatClient.chat()` drives: it says what to send when
a connection opens (the `start_chat` until it is acknowledged; afterwards the
resume position goes in the `/ws` query), turns server frames into `ChatEvent`s
and `Send`s (a `subscribe` after a gap or a `resync`), and keeps the text it has
yielded so that a consumer gets the stored reply exactly: each new piece once,
and a `Rewound` when a catch-up shows less than was yielded (a server crash
lost text it had streamed but not stored).

Nothing here does I/O, sleeps or keeps time; the unit tests feed it lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from durachat.client.errors import ReplyFailed, ServerError
from durachat.client.events import ChatEvent, Done, Rewound, Started, TextDelta
from durachat.client.state import ConversationState, MessageState, frame_conversation

_ACKS = ("conversation_created", "message_started")


@dataclass(frozen=True, slots=True)
class Send:
    """A frame to send on the current connection."""

    frame: dict[str, Any]


Output = ChatEvent | Send


class ReplySession:
    """The client side of one `start_chat` (with a `clientMessageId`) until its `done`."""

    def __init__(self, command: dict[str, Any]) -> None:
        if not command.get("clientMessageId"):
            raise ValueError("the command needs a clientMessageId to be resent safely")
        self.command = command
        self.state: ConversationState | None = None
        self.message_id: str | None = None
        self.result: Done | None = None
        self._yielded: list[str] = []
        self._yielded_seq = 0
        self._resubscribing = False

    @property
    def acknowledged(self) -> bool:
        return self.state is not None

    @property
    def finished(self) -> bool:
        return self.result is not None

    @property
    def conversation_id(self) -> str | None:
        if self.state is not None:
            return self.state.conversation_id
        conversation_id = self.command.get("conversationId")
        return conversation_id if isinstance(conversation_id, str) else None

    def resume_query(self) -> dict[str, str]:
        """Query parameters of the next `/ws` connection (empty before the ack)."""
        if self.state is None:
            return {}
        return self.state.resume_point().query(self.state.conversation_id)

    def opening_frames(self) -> list[dict[str, Any]]:
        """What to send once a connection said `hello`.

        Before the acknowledgement that is the command itself, unchanged: a
        repeated `clientMessageId` makes the server answer as the first time and
        send a catch-up, never start a second reply.
        """
        self._resubscribing = False
        return [] if self.acknowledged else [self.command]

    def stop_frame(self) -> dict[str, Any] | None:
        conversation_id = self.conversation_id
        if conversation_id is None:
            return None
        frame: dict[str, Any] = {"type": "stop", "conversationId": conversation_id}
        if self.message_id is not None:
            frame["messageId"] = self.message_id
        return frame

    def receive(self, frame: dict[str, Any]) -> list[Output]:
        """Apply one server frame.

        Raises `ServerError` when the server refused the command or the
        conversation went away, and `ReplyFailed` when the reply ended in error.
        """
        if self.finished or frame.get("type") in ("hello", "pong"):
            return []
        if self.state is None:
            return self._before_ack(frame)
        return self._after_ack(self.state, frame)

    def _before_ack(self, frame: dict[str, Any]) -> list[Output]:
        kind = frame.get("type")
        if kind == "error":
            raise ServerError(str(frame.get("code")), str(frame.get("message")))
        if kind not in _ACKS or not self._is_ours(frame):
            return []  # e.g. `conversation_updated` for the conversation list
        self.state = ConversationState(str(frame["conversationId"]))
        self.message_id = str(frame["messageId"])
        self.state.apply(frame)
        started = Started(
            self.state.conversation_id,
            self.message_id,
            str(frame.get("userMessageId") or ""),
            kind == "conversation_created",
        )
        return [started, *self._progress(self.state, frame)]

    def _is_ours(self, frame: dict[str, Any]) -> bool:
        echoed = frame.get("clientMessageId")
        if echoed is not None:
            return bool(echoed == self.command["clientMessageId"])
        if frame.get("type") == "conversation_created":
            return True  # sent only to the socket that asked
        return frame.get("conversationId") == self.command.get("conversationId")

    def _after_ack(self, state: ConversationState, frame: dict[str, Any]) -> list[Output]:
        kind = frame.get("type")
        if frame_conversation(frame) not in (None, state.conversation_id):
            return []
        if kind == "conversation_deleted":
            raise ServerError("not_found", "the conversation was deleted")
        if kind == "error" and frame.get("messageId") is None:
            raise ServerError(str(frame.get("code")), str(frame.get("message")))
        before = self._seq(state)
        resubscribe = state.apply(frame)
        outputs: list[Output] = []
        if kind == "resync":
            self._resubscribing = False
        if resubscribe is not None:
            if not self._resubscribing:
                self._resubscribing = True
                outputs.append(Send(resubscribe.frame(state.conversation_id)))
        elif kind == "catchup" or self._seq(state) != before:
            self._resubscribing = False
        outputs.extend(self._progress(state, frame))
        return outputs

    def _seq(self, state: ConversationState) -> int:
        message = state.messages.get(self.message_id or "")
        return message.seq if message is not None else -1

    def _progress(self, state: ConversationState, frame: dict[str, Any]) -> list[Output]:
        """Events for what the frame changed in our reply."""
        message = state.messages.get(self.message_id or "")
        if message is None:
            raise ServerError("not_found", "the reply is no longer in the conversation")
        outputs: list[Output] = []
        in_order = (
            frame.get("type") == "text"
            and frame.get("messageId") == message.id
            and frame.get("seq") == message.seq == self._yielded_seq + 1
        )
        if in_order:
            text = str(frame["content"])
            self._yielded.append(text)
            self._yielded_seq = message.seq
            outputs.append(TextDelta(text))
        elif frame.get("type") == "catchup" or message.seq != self._yielded_seq:
            outputs.extend(self._reconcile(message))
        if message.finished:
            if "".join(self._yielded) != message.content:
                outputs.extend(self._reconcile(message))
            outputs.append(self._finish(state, message))
        return outputs

    def _reconcile(self, message: MessageState) -> list[Output]:
        """Bring what was yielded in line with the message's whole text."""
        yielded = "".join(self._yielded)
        content = message.content
        outputs: list[Output] = []
        if content.startswith(yielded):
            keep = len(yielded)
        else:
            keep = _common_prefix(yielded, content)
            outputs.append(Rewound(keep, yielded[keep:]))
        if len(content) > keep:
            outputs.append(TextDelta(content[keep:]))
        self._yielded = [content]
        self._yielded_seq = message.seq
        return outputs

    def _finish(self, state: ConversationState, message: MessageState) -> Done:
        content = message.content
        if message.status == "error":
            error = message.error or {}
            raise ReplyFailed(
                str(error.get("code") or "provider_error"),
                str(error.get("message") or "the reply failed"),
                state.conversation_id,
                message.id,
                content,
            )
        self.result = Done(
            state.conversation_id, message.id, message.status, message.seq, content, message.usage
        )
        return self.result


def _common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix of two strings."""
    low, high = 0, min(len(a), len(b))
    while low < high:  # binary search on prefix equality: O(n log n) in C
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low
