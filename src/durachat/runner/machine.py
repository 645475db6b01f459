"""The state machine of one reply, without I/O.

Provider events go in; numbered `text` frames and, at the end, the final state and
the closing frames come out. It owns the reply's `seq` (DESIGN.md invariant 1:
only the task that owns a reply numbers it) and its caps on size. Time is passed
in, never read, so the machine is tested with plain lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from durachat import events
from durachat.domain import ErrorInfo, Status, Usage
from durachat.events import Frame
from durachat.providers.base import Finish, ProviderEvent, ReasoningDelta, TextDelta
from durachat.store.base import FinalState


@dataclass(slots=True)
class Appended:
    """Text to persist: what a flush must append and the seq it reaches."""

    text: str
    seq: int
    reasoning: str = ""
    reasoning_seq: int = 0


@dataclass(slots=True)
class Output:
    """What one provider event produced: frames to publish and text to persist."""

    frames: list[Frame] = field(default_factory=list)
    appended: Appended | None = None


class ReplyMachine:
    """One assistant reply from its first provider event to its final state."""

    def __init__(
        self,
        conversation_id: str,
        message_id: str,
        *,
        seq: int = 0,
        chars: int = 0,
        reasoning_seq: int = 0,
        max_chars: int,
    ) -> None:
        self.conversation_id = conversation_id
        self.message_id = message_id
        self.seq = seq
        self.reasoning_seq = reasoning_seq
        self.chars = chars
        self.max_chars = max_chars
        self.final: FinalState | None = None
        self.finish_reason: str | None = None
        self._encode = events.TextEncoder(conversation_id, message_id)

    @property
    def finished(self) -> bool:
        return self.final is not None

    def feed(self, event: ProviderEvent) -> Output:
        """Apply one provider event."""
        if self.final is not None:
            return Output()
        if isinstance(event, TextDelta):
            return self._text(event.text)
        if isinstance(event, ReasoningDelta):
            return self._reasoning(event.text)
        return self._finish(event)

    def text(self, text: str) -> Frame | None:
        """Apply a text delta (the hot path): its numbered frame, or None if empty.

        The frame's `content` and `seq` are what the store must append.
        """
        if not text or self.final is not None:
            return None
        room = self.max_chars - self.chars
        if len(text) >= room:
            text = text[:room]
            self.finish_reason = "length"
            self.final = FinalState(Status.COMPLETE)
            if not text:
                return None
        self.seq += 1
        self.chars += len(text)
        return self._encode(self.seq, text)

    def _text(self, text: str) -> Output:
        frame = self.text(text)
        if frame is None:
            return Output()
        return Output([frame], Appended(frame.content, frame.seq))

    def _reasoning(self, text: str) -> Output:
        if not text:
            return Output()
        self.reasoning_seq += 1
        frame = events.reasoning(self.conversation_id, self.message_id, self.reasoning_seq, text)
        return Output([frame], Appended("", self.seq, text, self.reasoning_seq))

    def _finish(self, event: Finish) -> Output:
        self.finish_reason = event.reason
        self.final = FinalState(Status.COMPLETE, event.usage)
        return Output()

    def end_of_stream(self) -> None:
        """The provider's stream ended; without a finish reason that is an error."""
        if self.final is None:
            self.fail(ErrorInfo("provider_error", "the model's stream ended without finishing"))

    def timed_out(self) -> None:
        """The reply ran longer than allowed: it ends complete, reason `length`."""
        if self.final is None:
            self.finish_reason = "length"
            self.final = FinalState(Status.COMPLETE)

    def fail(self, error: ErrorInfo) -> None:
        if self.final is None:
            self.final = FinalState(Status.ERROR, None, error)

    def cancel(self, status: Status) -> None:
        """Stopped by a user (`cancelled`) or lost by the server (`interrupted`)."""
        if self.final is None:
            self.final = FinalState(status)

    def closing_frames(self, usage: Usage | None = None) -> list[Frame]:
        """The frames that follow the final commit: an `error` if any, then `done`."""
        assert self.final is not None
        frames: list[Frame] = []
        final = self.final
        if final.error is not None:
            frames.append(events.error(final.error, self.conversation_id, self.message_id))
        frames.append(
            events.done(
                self.conversation_id, self.message_id, self.seq, final.status, final.usage or usage
            )
        )
        return frames
