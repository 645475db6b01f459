"""Continuing without prefill: repeated text is dropped, new text kept exactly."""

from __future__ import annotations

import pytest

from durachat.runner.repeats import RepeatFilter

PARTIAL = "Durable streams keep generating when the browser closes. They are stored"


def run(partial: str, chunks: list[str]) -> str:
    repeats = RepeatFilter(partial)
    return "".join(repeats.feed(chunk) for chunk in chunks) + repeats.end()


def split(text: str, size: int = 7) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize(
    ("new_text", "kept"),
    [
        (" while they stream.", " while they stream."),
        (PARTIAL + " while they stream.", " while they stream."),
        ("when the browser closes. They are stored while they stream.", " while they stream."),
        ("the browser closes. They are stored", ""),
        (PARTIAL, ""),
        ("Durable, yes.", "Durable, yes."),
        ("ed as they go.", "ed as they go."),
    ],
)
def test_repeats_are_dropped_and_new_text_kept(new_text: str, kept: str) -> None:
    assert run(PARTIAL, split(new_text)) == kept
    assert run(PARTIAL, [new_text]) == kept


def test_nothing_partial_means_nothing_filtered() -> None:
    assert run("", ["a", "b"]) == "ab"


def test_after_deciding_text_passes_straight_through() -> None:
    repeats = RepeatFilter(PARTIAL)
    assert repeats.feed(" fresh text that is clearly new") == " fresh text that is clearly new"
    assert repeats.feed(PARTIAL) == PARTIAL
