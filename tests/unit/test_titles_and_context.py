"""Cleaning a model's answer into a title; refusing a conversation over the context."""

from __future__ import annotations

import pytest

from durachat.domain import Message, Role, Status
from durachat.errors import TooLarge
from durachat.providers.base import Capabilities, ModelInfo
from durachat.runner.commands import check_context
from durachat.runner.titles import clean_title


@pytest.mark.parametrize(
    ("answer", "title"),
    [
        ("Durable Streams Explained", "Durable Streams Explained"),
        ('"Durable Streams Explained."', "Durable Streams Explained"),
        ("Title: Resuming Chats\n\nMore text", "Resuming Chats"),
        ("## **Chat Recovery**", "Chat Recovery"),
        ("   \n  ", None),
        ("x" * 200, "x" * 79 + "…"),
    ],
)
def test_clean_title(answer: str, title: str | None) -> None:
    assert clean_title(answer) == title


def test_a_conversation_longer_than_the_context_is_refused_with_the_limit() -> None:
    info = ModelInfo("local/small", "Small", "local", Capabilities(context_tokens=100))
    short = [Message("m", "c", None, Role.USER, "x" * 400, Status.COMPLETE, 0)]
    check_context(short, "", info)
    with pytest.raises(TooLarge, match="context window of local/small"):
        check_context(short, "be brief", info)
