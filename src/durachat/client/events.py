"""What `DuraChatClient.chat()` yields: the life of one reply, for a UI or a script.

A consumer that appends every `TextDelta` and, on `Rewound`, cuts its text back to
`keep` characters holds exactly the reply's stored text when `Done` arrives
(`Done.content` is that text too). Pure values, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Started:
    """The server accepted the prompt: the ids of the turn."""

    conversation_id: str
    message_id: str
    """The assistant message that carries the reply."""
    user_message_id: str
    created: bool
    """A new conversation was created for this prompt."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Reply text that follows what was yielded before."""

    text: str


@dataclass(frozen=True, slots=True)
class Rewound:
    """Text yielded earlier is not part of the reply: keep only its first `keep` characters.

    This happens only when the server crashed after sending text it had not yet
    stored: the stored reply (what every client sees from now on) is shorter than
    what was streamed. `discarded` is the text to take back.
    """

    keep: int
    discarded: str


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """The connection dropped; the next attempt comes after `delay` seconds."""

    attempt: int
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class Done:
    """The reply ended and its final state is stored on the server."""

    conversation_id: str
    message_id: str
    status: str
    """`complete`, `cancelled` (stopped) or `interrupted` (the server lost the generation)."""
    seq: int
    content: str
    """The whole stored reply."""
    usage: dict[str, Any] | None


ChatEvent = Started | TextDelta | Rewound | Reconnecting | Done
