"""Checking and cleaning an uploaded image with Pillow.

The image is decoded whole (so a truncated or forged file is refused), its size is
checked against the pixel limit before any pixel is decoded, EXIF orientation is
applied, and it is written again in its own format without any metadata: EXIF
(camera, GPS), XMP, ICC profiles and text chunks are dropped. An animated GIF
keeps its first frame. Blocking: call it from a thread.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from durachat.errors import BadRequest, TooLarge

_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF"}


@dataclass(frozen=True, slots=True)
class CleanImage:
    data: bytes
    width: int
    height: int


def clean_image(data: bytes, media_type: str, max_pixels: int) -> CleanImage:
    """The image re-encoded without metadata; `TooLarge` over `max_pixels`,
    `BadRequest` if it does not decode as the type its magic bytes claim."""
    expected = _FORMATS[media_type]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[expected]) as opened:
                width, height = opened.size
                if width * height > max_pixels:
                    raise TooLarge(
                        f"the image is {width}x{height} pixels; the limit is {max_pixels:,} pixels"
                    )
                opened.seek(0)
                opened.load()
                image = ImageOps.exif_transpose(opened)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadRequest(f"the image could not be read: {exc}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooLarge(f"the image has more than {max_pixels:,} pixels") from None
    return CleanImage(_encode(image, expected), image.width, image.height)


def _encode(image: Image.Image, fmt: str) -> bytes:
    """`image` written again in `fmt` with nothing but its pixels (and palette)."""
    if fmt == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    bare = Image.frombytes(image.mode, image.size, image.tobytes())
    if image.mode == "P" and image.palette is not None:
        bare.putpalette(image.getpalette() or [])
        if "transparency" in image.info:
            bare.info["transparency"] = image.info["transparency"]
    out = io.BytesIO()
    options: dict[str, object] = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
    bare.save(out, fmt, **options)
    return out.getvalue()


__all__ = ["CleanImage", "clean_image"]
