"""Conversation titles written by a model after the first reply.

The title model (`DURACHAT_TITLE_MODEL`, else the conversation's) is asked for a
few words; the answer is cleaned up (one line, no quotes, no trailing period, at
most 80 characters). Any failure leaves the provisional title (the prompt's first
words) in place: a title is never worth an error shown to the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from durachat.providers.base import ChatRequest, PromptMessage, Provider, TextDelta

log = logging.getLogger(__name__)

INSTRUCTION = (
    "Write a short title, at most six words, for the conversation that follows. "
    "Answer with the title only: no quotes, no punctuation at the end."
)
MAX_TITLE = 80
_EXCERPT = 2000


def title_request(model: str, prompt: str, reply: str) -> ChatRequest:
    conversation = f"User: {prompt[:_EXCERPT]}\n\nAssistant: {reply[:_EXCERPT]}"
    return ChatRequest(model, (PromptMessage("user", conversation),), INSTRUCTION, purpose="title")


def clean_title(text: str) -> str | None:
    """The model's answer as a title, or None if nothing usable is left."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    title = lines[0].lstrip("#*- ").strip().strip("\"'`*").strip()
    if title.lower().startswith("title:"):
        title = title[6:].strip()
    title = title.rstrip(".!:;,").strip()
    if not title:
        return None
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1].rstrip() + "…"


async def write_title(
    provider: Provider, model: str, prompt: str, reply: str, timeout_s: float
) -> str | None:
    """Ask the model for a title; None on any failure."""
    parts: list[str] = []
    try:
        async with asyncio.timeout(timeout_s):
            stream = provider.stream(title_request(model, prompt, reply))
            async with contextlib.aclosing(stream):
                async for event in stream:
                    if isinstance(event, TextDelta):
                        parts.append(event.text)
                        if sum(map(len, parts)) > 4 * MAX_TITLE:
                            break
    except Exception as exc:  # a title is never worth an error
        log.info("no title from %s: %s", model, exc)
        return None
    return clean_title("".join(parts))
