"""A file's type from its first bytes, never from its name or a client's header.

Images (PNG, JPEG, WebP, GIF) and PDF are known by their magic numbers; anything
else is text only if it decodes as UTF-8 and holds no NUL or other binary control
characters. Everything else is refused. This module only looks at bytes: it never
decodes an image or parses a PDF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from durachat.errors import BadRequest

IMAGE = "image"
PDF = "pdf"
TEXT = "text"

# C0 controls other than tab, newline, form feed and carriage return; and DEL
_BINARY = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Detected:
    kind: str
    """`image`, `pdf` or `text`."""
    media_type: str


def sniff(data: bytes) -> Detected:
    """The type of `data`; `BadRequest` for an empty file or one of no accepted type."""
    if not data:
        raise BadRequest("the file is empty")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return Detected(IMAGE, "image/png")
    if data.startswith(b"\xff\xd8\xff"):
        return Detected(IMAGE, "image/jpeg")
    if data.startswith((b"GIF87a", b"GIF89a")):
        return Detected(IMAGE, "image/gif")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return Detected(IMAGE, "image/webp")
    if data.startswith(b"%PDF-"):
        return Detected(PDF, "application/pdf")
    decode_text(data)
    return Detected(TEXT, "text/plain; charset=utf-8")


def decode_text(data: bytes) -> str:
    """`data` as text (a UTF-8 byte-order mark dropped); `BadRequest` if it is not
    UTF-8 text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest(
            "unsupported file type: attach images (PNG, JPEG, WebP, GIF), PDF, "
            "or UTF-8 text and code"
        ) from None
    if _BINARY.search(text):
        raise BadRequest("the file is not text: it holds binary control characters")
    return text


__all__ = ["IMAGE", "PDF", "TEXT", "Detected", "decode_text", "sniff"]
