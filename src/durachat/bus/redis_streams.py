"""What the Redis bus keeps in Redis, and how: key names, stream ids, entries.

- `durachat:reply:<messageId>`: a reply's replay log, one entry per `text` frame
  with the stream id `<seq>-0`, so a resume reads exactly `XRANGE <after+1>-0 +`.
- `durachat:conv:<conversationId>`: every frame of the conversation's replies
  (`message_started`, `text`, `reasoning`, `error`, `done`) in publishing order,
  with automatic ids; the nodes that have subscribers read it live.
- `durachat:user:<userId>`: the user's conversation-list events.
- `durachat:wake:<nodeId>`: written to wake a node's blocked reader when its set
  of streams changes; its entries mean nothing.

All of them are bounded (`MAXLEN ~`) and expire (DESIGN.md invariant 6: they are a
cache, the store is the truth). Pure functions, no I/O.
"""

from __future__ import annotations

from redis.typing import EncodableT, FieldT

from durachat.events import Frame

Fields = dict[FieldT, EncodableT]

PREFIX = "durachat:"
REPLY = PREFIX + "reply:"
CONVERSATION = PREFIX + "conv:"
USER = PREFIX + "user:"
WAKE = PREFIX + "wake:"

USER_STREAM_MAX = 1000
"""Conversation-list events kept per user: only live readers need them."""

LOST = "lost"
"""The kind of a conversation entry that says frames of it were dropped on the way."""

StreamId = tuple[int, int]
ORIGIN: StreamId = (0, 0)


def reply_key(message_id: str) -> str:
    return REPLY + message_id


def conversation_key(conversation_id: str) -> str:
    return CONVERSATION + conversation_id


def user_key(user_id: str) -> str:
    return USER + user_id


def wake_key(node_id: str) -> str:
    return WAKE + node_id


def parse_id(raw: str) -> StreamId:
    ms, _, counter = raw.partition("-")
    return int(ms), int(counter or 0)


def format_id(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


def seq_id(seq: int) -> str:
    """The id of a reply-log entry: its `seq`."""
    return f"{seq}-0"


def conversation_entry(node_id: str, op: int, frame: Frame) -> Fields:
    """A conversation stream entry: who wrote it (node and its write number, to
    drop a retried write's second copy), the routing facts, and the encoded frame."""
    return {
        "n": node_id,
        "o": op,
        "k": frame.kind,
        "m": frame.message_id or "",
        "s": frame.seq,
        "d": frame.data,
    }


def lost_entry(node_id: str, op: int) -> Fields:
    return {"n": node_id, "o": op, "k": LOST, "m": "", "s": 0, "d": ""}


def frame_of(conversation_id: str, fields: dict[str, str]) -> Frame:
    """The frame of a conversation stream entry."""
    return Frame(fields["k"], fields["d"], conversation_id, fields["m"] or None, int(fields["s"]))
