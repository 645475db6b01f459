"""The text of an uploaded PDF, extracted with pypdf, within page and character limits.

Only text is taken (no images, no forms, no scripts are ever run); a PDF with more
pages or more text than the limits is refused rather than silently cut, and one
with no text (a scan) or that is encrypted is refused with a message saying so.
Blocking: call it from a thread.
"""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader
from pypdf.errors import PdfReadError, PyPdfError

from durachat.errors import BadRequest, TooLarge

# pypdf warns about every malformed object on the logger; they are not our errors
logging.getLogger("pypdf").setLevel(logging.ERROR)


def pdf_text(data: bytes, max_pages: int, max_chars: int) -> str:
    """The PDF's text, pages separated by a blank line."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise BadRequest("the PDF is encrypted; attach an unprotected copy")
        pages = len(reader.pages)
        if pages > max_pages:
            raise TooLarge(f"the PDF has {pages} pages; the limit is {max_pages}")
        texts: list[str] = []
        total = 0
        for page in reader.pages:
            text = page.extract_text().strip()
            total += len(text)
            if total > max_chars:
                raise TooLarge(
                    f"the PDF holds more than {max_chars:,} characters of text, the limit"
                )
            texts.append(text)
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise BadRequest(f"the PDF could not be read: {exc}") from None
    joined = "\n\n".join(t for t in texts if t)
    if not joined.strip():
        raise BadRequest("no text could be extracted from the PDF (a scan has none)")
    return joined


__all__ = ["pdf_text"]
