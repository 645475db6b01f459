"""Client frames are parsed strictly, with errors that say what is wrong."""

from __future__ import annotations

import pytest

from durachat.api.protocol import (
    CLIENT_TYPES,
    StartChatFrame,
    SubscribeFrame,
    parse_client_frame,
)
from durachat.errors import BadRequest


def test_a_start_chat_frame_with_camel_case_fields() -> None:
    frame = parse_client_frame(
        '{"type":"start_chat","prompt":"hi","conversationId":"c","clientMessageId":"k",'
        '"futureField":1}'
    )
    assert isinstance(frame, StartChatFrame)
    assert (frame.prompt, frame.conversation_id, frame.client_message_id) == ("hi", "c", "k")


def test_subscribe_with_a_position() -> None:
    frame = parse_client_frame(
        '{"type":"subscribe","conversationId":"c","afterMessageId":"m","afterSeq":41}'
    )
    assert isinstance(frame, SubscribeFrame) and frame.after_seq == 41


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object, not list"),
        ('"hello"', "must be a JSON object, not str"),
        ('{"prompt": "x"}', "no 'type'"),
        ('{"type": "dance"}', "unknown message type 'dance'"),
        ('{"type": "start_chat"}', "prompt is required"),
        ('{"type": "start_chat", "prompt": 5}', "prompt"),
        ('{"type": "subscribe", "conversationId": "c", "afterSeq": "7"}', "afterSeq"),
        ('{"type": "subscribe", "conversationId": "c", "afterSeq": -1}', "afterSeq"),
        ('{"type": "stop"}', "conversationId is required"),
    ],
)
def test_bad_frames_name_their_problem(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_client_frame(text)
    assert message in caught.value.message


def test_every_client_type_of_the_protocol_is_known() -> None:
    assert set(CLIENT_TYPES) == {
        "start_chat",
        "subscribe",
        "unsubscribe",
        "stop",
        "regenerate",
        "edit",
        "continue",
        "ping",
    }
