"""The reply state machine, fed with plain lists of provider events."""

from __future__ import annotations

import orjson

from durachat.domain import ErrorInfo, Status, Usage
from durachat.providers.base import Finish, ProviderEvent, ReasoningDelta, TextDelta
from durachat.runner.machine import ReplyMachine


def run(
    events: list[ProviderEvent], max_chars: int = 1000, seq: int = 0
) -> tuple[ReplyMachine, list[dict[str, object]], list[tuple[str, int]]]:
    machine = ReplyMachine("c1", "m1", seq=seq, max_chars=max_chars)
    frames: list[dict[str, object]] = []
    appended: list[tuple[str, int]] = []
    for event in events:
        output = machine.feed(event)
        frames += [orjson.loads(f.data) for f in output.frames]
        if output.appended is not None:
            appended.append((output.appended.text, output.appended.seq))
    return machine, frames, appended


def test_text_gets_consecutive_seqs_and_empty_deltas_make_none() -> None:
    machine, frames, appended = run(
        [TextDelta("a"), TextDelta(""), TextDelta("b"), Finish("stop", Usage(3, 2))]
    )
    assert [(f["seq"], f["content"]) for f in frames] == [(1, "a"), (2, "b")]
    assert appended == [("a", 1), ("b", 2)]
    assert machine.final is not None and machine.final.status is Status.COMPLETE
    done = orjson.loads(machine.closing_frames()[-1].data)
    assert done == {
        "type": "done",
        "conversationId": "c1",
        "messageId": "m1",
        "seq": 2,
        "status": "complete",
        "usage": {"inputTokens": 3, "outputTokens": 2},
    }


def test_seq_carries_on_from_a_stored_value() -> None:
    _, frames, _ = run([TextDelta("x")], seq=41)
    assert frames[0]["seq"] == 42


def test_events_after_the_end_are_ignored() -> None:
    machine, frames, _ = run([TextDelta("a"), Finish(), TextDelta("late")])
    assert len(frames) == 1 and machine.seq == 1


def test_size_cap_truncates_and_completes_with_reason_length() -> None:
    machine, frames, _ = run([TextDelta("abcd"), TextDelta("efgh"), TextDelta("ij")], max_chars=6)
    assert "".join(str(f["content"]) for f in frames) == "abcdef"
    assert machine.finish_reason == "length"
    assert machine.final is not None and machine.final.status is Status.COMPLETE


def test_end_without_finish_is_an_error_with_an_error_frame_before_done() -> None:
    machine, _, _ = run([TextDelta("partial")])
    machine.end_of_stream()
    closing = [orjson.loads(f.data) for f in machine.closing_frames()]
    assert [f["type"] for f in closing] == ["error", "done"]
    assert closing[0]["code"] == "provider_error" and closing[0]["messageId"] == "m1"
    assert closing[1]["status"] == "error" and closing[1]["seq"] == 1


def test_failure_and_cancel_keep_the_first_final_state() -> None:
    machine, _, _ = run([TextDelta("a")])
    machine.fail(ErrorInfo("provider_error", "boom"))
    machine.cancel(Status.CANCELLED)
    assert machine.final is not None and machine.final.status is Status.ERROR


def test_reasoning_has_its_own_seq_and_never_moves_seq() -> None:
    machine, frames, appended = run([ReasoningDelta("hmm"), TextDelta("a"), ReasoningDelta("ok")])
    assert [f["type"] for f in frames] == ["reasoning", "text", "reasoning"]
    assert [f.get("reasoningSeq") for f in frames if f["type"] == "reasoning"] == [1, 2]
    assert machine.seq == 1
    assert appended[0] == ("", 0)


def test_timeout_completes_with_reason_length() -> None:
    machine, _, _ = run([TextDelta("a")])
    machine.timed_out()
    assert machine.final is not None and machine.final.status is Status.COMPLETE
    assert machine.finish_reason == "length"
