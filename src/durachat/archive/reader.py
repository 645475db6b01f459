"""Which export a file is, read into `ImportedConversation`s, or a clear `BadRequest`.

DuraChat's JSON is an object with `"format": "durachat"`; ChatGPT's
`conversations.json` is a list of objects with a `mapping`. Anything else, and any
file that does not validate, is refused with the first problem found.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from durachat.archive.chatgpt import ChatGptConversation, read_chatgpt
from durachat.archive.ours import FORMAT, Archive, read_archive
from durachat.domain import split_model_id
from durachat.errors import BadRequest
from durachat.store.base import ImportedConversation

_CHATGPT = TypeAdapter(list[ChatGptConversation])


def read_import(data: Any, default_model: str) -> list[ImportedConversation]:
    """Conversations from a parsed JSON document; ChatGPT's get `default_model`."""
    try:
        if isinstance(data, dict) and data.get("format") == FORMAT:
            return read_archive(Archive.model_validate(data))
        if isinstance(data, list) and all(isinstance(c, dict) and "mapping" in c for c in data):
            provider, _ = split_model_id(default_model)
            return read_chatgpt(_CHATGPT.validate_python(data), default_model, provider)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadRequest(f"not a valid export: {where}: {first['msg']}") from None
    raise BadRequest(
        'not an export this server reads: expected DuraChat\'s JSON ("format": "durachat") '
        "or ChatGPT's conversations.json (a list of conversations with a mapping)"
    )


__all__ = ["read_import"]
