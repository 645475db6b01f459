"""`ReplySession` (what a reply yields and sends, without I/O) and `Backoff`, with lists."""

from __future__ import annotations

import random
from typing import Any

import pytest

from durachat.client.backoff import Backoff
from durachat.client.errors import ReplyFailed, ServerError
from durachat.client.events import Done, Rewound, Started, TextDelta
from durachat.client.reply import Output, ReplySession, Send
from tests.unit.test_client_state import C, M, catchup, created, done, text

KEY = "key-1"
COMMAND = {"type": "start_chat", "prompt": "hi", "clientMessageId": KEY}


def ack(**extra: Any) -> dict[str, Any]:
    return {**created(), "clientMessageId": KEY, **extra}


def feed(session: ReplySession, frames: list[dict[str, Any]]) -> list[Output]:
    return [output for frame in frames for output in session.receive(frame)]


def texts(outputs: list[Output]) -> str:
    return "".join(o.text for o in outputs if isinstance(o, TextDelta))


def test_the_command_is_sent_until_acknowledged_then_the_position_is_in_the_query() -> None:
    session = ReplySession(COMMAND)
    assert session.opening_frames() == [COMMAND] and session.resume_query() == {}
    outputs = feed(session, [{"type": "hello", "sessionId": "s"}, ack(), text(1), text(2)])
    assert outputs[0] == Started(C, M, "u1", created=True)
    assert outputs[1:] == [TextDelta("w1 "), TextDelta("w2 ")]
    assert session.opening_frames() == []
    assert session.resume_query() == {"conversationId": C, "afterMessageId": M, "afterSeq": "2"}
    assert session.stop_frame() == {"type": "stop", "conversationId": C, "messageId": M}


def test_a_refusal_before_the_ack_raises_with_its_code() -> None:
    session = ReplySession(COMMAND)
    with pytest.raises(ServerError) as refused:
        session.receive({"type": "error", "code": "bad_request", "message": "unknown model"})
    assert refused.value.code == "bad_request" and not refused.value.retryable
    with pytest.raises(ServerError) as draining:
        session.receive({"type": "error", "code": "unavailable", "message": "shutting down"})
    assert draining.value.retryable


def test_other_frames_before_the_ack_are_not_ours() -> None:
    session = ReplySession(COMMAND)
    others = [
        {"type": "conversation_updated", "conversation": {"id": "x"}},
        {**created(), "clientMessageId": "someone-else"},
    ]
    assert feed(session, others) == [] and not session.acknowledged


def test_duplicates_yield_nothing_and_a_gap_subscribes_once() -> None:
    session = ReplySession(COMMAND)
    outputs = feed(session, [ack(), text(1), text(1), text(3), text(4)])
    subscribe = {"type": "subscribe", "conversationId": C, "afterMessageId": M, "afterSeq": 1}
    assert outputs[1:] == [TextDelta("w1 "), Send(subscribe)], "one subscribe per gap"
    outputs = feed(session, [text(2), text(3), text(4), done(4)])
    assert texts(outputs) == "w2 w3 w4 "
    assert outputs[-1] == Done(C, M, "complete", 4, "w1 w2 w3 w4 ", None)
    assert session.finished and feed(session, [text(5)]) == []


def test_a_resync_always_subscribes_again() -> None:
    session = ReplySession(COMMAND)
    feed(session, [ack(), text(1), text(3)])
    resync = {"type": "resync", "conversationId": C, "reason": "slow_consumer"}
    outputs = session.receive(resync)
    assert outputs == [
        Send({"type": "subscribe", "conversationId": C, "afterMessageId": M, "afterSeq": 1})
    ]


def test_a_repeated_command_is_acknowledged_then_caught_up_without_duplicates() -> None:
    session = ReplySession(COMMAND)
    feed(session, [ack(), text(1), text(2)])
    # the connection drops; the catch-up the server sends holds more than we have
    outputs = feed(session, [catchup("w1 w2 w3 w4 ", 4), text(4), text(5), done(5)])
    assert texts(outputs) == "w3 w4 w5 "
    assert isinstance(outputs[-1], Done) and outputs[-1].content == "w1 w2 w3 w4 w5 "


def test_a_catchup_behind_what_was_yielded_rewinds() -> None:
    session = ReplySession(COMMAND)
    feed(session, [ack(), text(1), text(2), text(3)])
    outputs = session.receive(catchup("w1 ", 1, status="interrupted"))
    assert outputs == [Rewound(3, "w2 w3 "), Done(C, M, "interrupted", 1, "w1 ", None)]


def test_a_catchup_that_differs_rewinds_to_the_common_prefix() -> None:
    session = ReplySession(COMMAND)
    feed(session, [ack(), text(1, "abc"), text(2, "def")])
    outputs = session.receive(catchup("abcXYZ", 2))
    assert outputs == [Rewound(3, "def"), TextDelta("XYZ")]
    assert texts(feed(session, [text(3, "!")])) == "!"


def test_a_reply_that_fails_raises_with_its_partial_text() -> None:
    session = ReplySession(COMMAND)
    feed(session, [ack(), text(1)])
    error = {"type": "error", "code": "provider_error", "message": "boom", "messageId": M}
    assert session.receive(error) == []
    with pytest.raises(ReplyFailed) as failed:
        session.receive(done(1, "error"))
    assert (failed.value.code, failed.value.content, failed.value.message_id) == (
        "provider_error",
        "w1 ",
        M,
    )


def test_a_deleted_conversation_ends_the_reply() -> None:
    session = ReplySession(COMMAND)
    feed(session, [ack(), text(1)])
    with pytest.raises(ServerError) as deleted:
        session.receive({"type": "conversation_deleted", "conversationId": C})
    assert deleted.value.code == "not_found"


def test_a_command_without_a_client_message_id_is_refused() -> None:
    with pytest.raises(ValueError, match="clientMessageId"):
        ReplySession({"type": "start_chat", "prompt": "hi"})


def test_backoff_doubles_to_the_cap_with_jitter_and_gives_up() -> None:
    backoff = Backoff(initial=0.5, cap=4.0, give_up_after=100.0, rng=random.Random(7))
    delays = [backoff.next_delay(now=0.0) for _ in range(6)]
    bases = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    for delay, base in zip(delays, bases, strict=True):
        assert delay is not None and 0.5 * base <= delay <= 1.5 * base
    assert backoff.next_delay(now=99.9) == pytest.approx(0.1, abs=1e-9), "never past the deadline"
    assert backoff.next_delay(now=100.0) is None
    backoff.reset()
    first = backoff.next_delay(now=500.0)
    assert first is not None and first <= 0.75, "a new outage starts from the initial delay"
