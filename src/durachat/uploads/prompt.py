"""Attachments into what a model is sent.

A user message stores only the ids (and chips) of its attachments; when a branch
is sent to a model, each text file and PDF is inlined after the message's text in
a fenced block headed by its file name, and each image becomes an `ImagePart` of
the message. A model without the `vision` capability is refused with
`bad_request` before anything is stored or generated, and the conversation with
its files inlined is held to the model's context window. Nothing here decides
limits of uploads (`uploads/intake.py` does) or talks HTTP.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from durachat.domain import Attachment, Message
from durachat.errors import BadRequest, TooLarge
from durachat.providers.base import ImagePart, ModelInfo, PromptMessage
from durachat.runner.commands import CHARS_PER_TOKEN
from durachat.store.base import Store
from durachat.uploads.detect import IMAGE, PDF
from durachat.uploads.files import UploadFiles

MAX_ATTACHMENTS = 20
"""Most attachments one message may carry (also the frame's limit)."""
IMAGE_TOKENS = 1_000
"""A rough, model-independent estimate of an image's share of the context."""

_TICKS = re.compile(r"`{3,}")


def inline_file(name: str, text: str) -> str:
    """A file's text as a fenced block headed by its name; the fence is longer than
    any run of backticks in the text, so the file cannot close it."""
    longest = max((len(run) for run in _TICKS.findall(text)), default=2)
    fence = "`" * max(3, longest + 1)
    return f"File `{name}`:\n{fence}\n{text}\n{fence}"


class PromptBuilder:
    """Resolves attachment ids and builds prompt messages with their files."""

    def __init__(self, store: Store, files: UploadFiles) -> None:
        self._store = store
        self._files = files

    async def attachments(self, user_id: str, upload_ids: Sequence[str]) -> tuple[Attachment, ...]:
        """The chips of these uploads (the user's own; `NotFound` otherwise)."""
        unique = list(dict.fromkeys(upload_ids))
        if not unique:  # most messages: no database read
            return ()
        if len(unique) > MAX_ATTACHMENTS:
            raise BadRequest(f"a message can carry at most {MAX_ATTACHMENTS} attachments")
        return tuple(u.attachment for u in await self._store.get_uploads(user_id, unique))

    async def build(
        self, path: Sequence[Message], info: ModelInfo, system_prompt: str
    ) -> tuple[PromptMessage, ...]:
        """The prompt messages of `path`, files inlined and images attached."""
        images = [a.name for m in path for a in m.attachments if a.kind == IMAGE]
        if images and not info.capabilities.vision:
            raise BadRequest(
                f"{info.id} cannot see images ({', '.join(images[:3])}); choose a model "
                "with vision, or send the message without images"
            )
        prompt: list[PromptMessage] = []
        for message in path:
            if message.attachments:
                prompt.append(await asyncio.to_thread(self._with_files, message))
            else:
                prompt.append(PromptMessage(message.role.value, message.content))
        _check_context(prompt, system_prompt, info)
        return tuple(prompt)

    def _with_files(self, message: Message) -> PromptMessage:
        texts = [message.content] if message.content else []
        images: list[ImagePart] = []
        for attachment in message.attachments:
            if attachment.kind == IMAGE:
                data = self._files.read(attachment.id)
                width, height = attachment.width or 0, attachment.height or 0
                images.append(ImagePart(attachment.media_type, data, width, height))
            else:
                text = self._files.read_text(attachment.id, pdf=attachment.kind == PDF)
                texts.append(inline_file(attachment.name, text))
        return PromptMessage(message.role.value, "\n\n".join(texts), tuple(images))


def _check_context(prompt: Sequence[PromptMessage], system_prompt: str, info: ModelInfo) -> None:
    limit = info.capabilities.context_tokens
    if limit is None:
        return
    chars = len(system_prompt) + sum(len(m.content) for m in prompt)
    estimate = chars // CHARS_PER_TOKEN + IMAGE_TOKENS * sum(len(m.images) for m in prompt)
    if estimate > limit:
        raise TooLarge(
            f"this conversation with its attachments is about {estimate:,} tokens, more than "
            f"the {limit:,}-token context window of {info.id}; attach less or start a new "
            "conversation"
        )


__all__ = ["MAX_ATTACHMENTS", "PromptBuilder", "inline_file"]
