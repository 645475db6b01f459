"""The resume rules of PROTOCOL.md section 5 (`ConversationState`), with lists of frames."""

from __future__ import annotations

from typing import Any

from durachat.client.state import ConversationState, Resubscribe

C = "conv"
M = "reply"
Frame = dict[str, Any]


def wire(message_id: str, role: str, content: str = "", seq: int = 0, **extra: Any) -> Frame:
    return {
        "id": message_id,
        "conversationId": C,
        "parentId": None if role == "user" else "u1",
        "role": role,
        "content": content,
        "seq": seq,
        "status": extra.pop("status", "streaming" if role == "assistant" else "complete"),
        **extra,
    }


def created() -> Frame:
    return {
        "type": "conversation_created",
        "conversationId": C,
        "messageId": M,
        "userMessageId": "u1",
        "conversation": {"id": C, "title": "t"},
        "userMessage": wire("u1", "user", "hi"),
        "message": wire(M, "assistant"),
    }


def text(seq: int, content: str | None = None, message_id: str = M) -> Frame:
    return {
        "type": "text",
        "conversationId": C,
        "messageId": message_id,
        "seq": seq,
        "content": content if content is not None else f"w{seq} ",
    }


def done(seq: int, status: str = "complete", **extra: Any) -> Frame:
    return {"type": "done", "conversationId": C, "messageId": M, "seq": seq, "status": status}


def catchup(content: str, seq: int, status: str = "streaming") -> Frame:
    return {
        "type": "catchup",
        "conversation": {"id": C, "title": "t"},
        "messages": [wire("u1", "user", "hi"), wire(M, "assistant", content, seq, status=status)],
        "hasActiveStream": status == "streaming",
        "activeMessageId": M if status == "streaming" else None,
        "activeSeq": seq if status == "streaming" else None,
    }


def apply_all(state: ConversationState, frames: list[Frame]) -> list[Resubscribe | None]:
    return [state.apply(frame) for frame in frames]


def reply(state: ConversationState) -> Any:
    message = state.newest_assistant()
    assert message is not None
    return message


def test_text_in_order_is_applied_and_done_ends_the_reply() -> None:
    state = ConversationState(C)
    usage = {"inputTokens": 1, "outputTokens": 3}
    answers = apply_all(state, [created(), text(1), text(2), text(3), {**done(3), "usage": usage}])
    assert answers == [None] * 5
    message = reply(state)
    assert (message.content, message.seq, message.status) == ("w1 w2 w3 ", 3, "complete")
    assert message.finished and message.usage == usage
    assert state.conversation == {"id": C, "title": "t"}


def test_duplicates_are_ignored_and_counted() -> None:
    state = ConversationState(C)
    answers = apply_all(state, [created(), text(1), text(2), text(1, "again"), text(2, "again")])
    assert answers == [None] * 5
    assert reply(state).content == "w1 w2 " and reply(state).seq == 2
    assert state.duplicates == 2 and state.gaps == 0


def test_a_gap_asks_to_resubscribe_from_the_last_applied_seq() -> None:
    state = ConversationState(C)
    apply_all(state, [created(), text(1), text(2)])
    assert state.apply(text(4)) == Resubscribe(M, 2)
    assert reply(state).content == "w1 w2 " and reply(state).seq == 2, "nothing past a gap"
    assert state.gaps == 1
    # the delta the subscribe brings fills the gap; the live duplicate is ignored
    assert apply_all(state, [text(3), text(4), text(4)]) == [None, None, None]
    assert reply(state).content == "w1 w2 w3 w4 "


def test_text_of_an_unknown_message_is_a_gap() -> None:
    state = ConversationState(C)
    state.apply(created())
    assert state.apply(text(1, message_id="other")) == Resubscribe(M, 0)
    assert state.gaps == 1


def test_done_with_a_higher_seq_is_a_gap() -> None:
    state = ConversationState(C)
    apply_all(state, [created(), text(1)])
    assert state.apply(done(3)) == Resubscribe(M, 1)
    assert reply(state).status == "streaming"


def test_done_with_a_lower_seq_asks_for_a_full_catch_up() -> None:
    state = ConversationState(C)
    apply_all(state, [created(), text(1), text(2)])
    assert state.apply(done(1, "interrupted")) == Resubscribe(None, None)
    assert reply(state).status == "streaming", "not applied: our text goes beyond it"


def test_catchup_replaces_local_state() -> None:
    state = ConversationState(C)
    apply_all(state, [created(), text(1), text(2)])
    assert state.apply(catchup("w1 w2 w3 w4 ", 4)) is None
    assert reply(state).content == "w1 w2 w3 w4 " and reply(state).seq == 4
    assert state.apply(text(5)) is None
    assert reply(state).content == "w1 w2 w3 w4 w5 "


def test_catchup_replaces_local_state_even_when_it_is_behind() -> None:
    state = ConversationState(C)
    apply_all(state, [created(), text(1), text(2), text(3)])
    state.apply(catchup("w1 ", 1, status="interrupted"))
    message = reply(state)
    assert (message.content, message.seq, message.status) == ("w1 ", 1, "interrupted")
    assert state.resume_point() == Resubscribe(M, 1)


def test_resync_asks_for_the_resume_point() -> None:
    state = ConversationState(C)
    apply_all(state, [created(), text(1)])
    resync = {"type": "resync", "conversationId": C, "reason": "slow_consumer"}
    assert state.apply(resync) == Resubscribe(M, 1)


def test_resume_point_as_a_frame_and_as_a_query() -> None:
    state = ConversationState(C)
    assert state.resume_point() == Resubscribe(None, None)
    assert state.resume_point().frame(C) == {"type": "subscribe", "conversationId": C}
    assert state.resume_point().query(C) == {"conversationId": C}
    apply_all(state, [created(), text(1), text(2)])
    point = state.resume_point()
    assert point.frame(C) == {
        "type": "subscribe",
        "conversationId": C,
        "afterMessageId": M,
        "afterSeq": 2,
    }
    assert point.query(C) == {"conversationId": C, "afterMessageId": M, "afterSeq": "2"}


def test_frames_of_other_conversations_are_ignored() -> None:
    state = ConversationState(C)
    state.apply(created())
    other_text = {**text(1), "conversationId": "elsewhere"}
    other_update = {"type": "conversation_updated", "conversation": {"id": "elsewhere"}}
    assert apply_all(state, [other_text, other_update]) == [None, None]
    assert reply(state).seq == 0 and state.conversation == {"id": C, "title": "t"}
    state.apply({"type": "conversation_updated", "conversation": {"id": C, "title": "new"}})
    assert state.conversation == {"id": C, "title": "new"}


def test_an_error_for_the_reply_is_kept_with_it() -> None:
    state = ConversationState(C)
    apply_all(state, [created(), text(1)])
    error = {"type": "error", "code": "provider_error", "message": "boom", "messageId": M}
    apply_all(state, [error, done(1, "error")])
    assert reply(state).error == {"code": "provider_error", "message": "boom"}
    assert reply(state).status == "error"


def test_a_long_reply_is_followed_in_linear_time() -> None:
    state = ConversationState(C)
    state.apply(created())
    for seq in range(1, 100_001):
        state.apply(text(seq, "abcd"))
    assert reply(state).content == "abcd" * 100_000
