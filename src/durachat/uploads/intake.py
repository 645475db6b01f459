"""From an upload's bytes and name to what is kept: checked, cleaned, measured.

The type comes from `detect.sniff` (content only). Images are re-encoded without
metadata within the pixel limit, PDFs give their text, and text files must be
UTF-8 within the character limit. The name the client gave is only displayed
(and sanitised for that); files are stored under the upload's id.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from durachat.errors import TooLarge
from durachat.uploads import detect


@dataclass(frozen=True, slots=True)
class UploadLimits:
    max_bytes: int
    max_pixels: int
    max_text_chars: int
    max_pdf_pages: int


@dataclass(frozen=True, slots=True)
class Accepted:
    """What is kept of an upload: the bytes to store and, for PDFs, their text."""

    kind: str
    media_type: str
    data: bytes
    text: str | None = None
    """The extracted text of a PDF (stored beside it)."""
    width: int | None = None
    height: int | None = None
    chars: int = 0


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")


def display_name(raw: str) -> str:
    """The client's file name made safe to show: no path, no control characters,
    at most 200 characters; `file` when nothing is left."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("", name).strip().strip(".") or "file"
    return name[:200]


def accept(data: bytes, limits: UploadLimits) -> Accepted:
    """Check and clean `data` by its detected type (blocking: pillow, pypdf)."""
    found = detect.sniff(data)
    if found.kind == detect.IMAGE:
        from durachat.uploads.images import clean_image  # Pillow loads on the first image

        image = clean_image(data, found.media_type, limits.max_pixels)
        return Accepted(
            found.kind, found.media_type, image.data, width=image.width, height=image.height
        )
    if found.kind == detect.PDF:
        from durachat.uploads.pdfs import pdf_text  # pypdf loads on the first PDF

        text = pdf_text(data, limits.max_pdf_pages, limits.max_text_chars)
        return Accepted(found.kind, found.media_type, data, text=text, chars=len(text))
    text = detect.decode_text(data)
    if len(text) > limits.max_text_chars:
        raise TooLarge(
            f"the text file has {len(text):,} characters; the limit is {limits.max_text_chars:,}"
        )
    return Accepted(found.kind, found.media_type, data, chars=len(text))


__all__ = ["Accepted", "UploadLimits", "accept", "display_name"]
