"""Uploaded files on disk, under names the server chooses (the upload's id).

A file is written to a temporary name and renamed into place, so a reader never
sees half of it; a PDF's extracted text sits beside it as `<id>.txt`. Ids are
checked to be DuraChat ids before they become paths, so no name a client sends
ever reaches the file system. Blocking: call from a thread.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from durachat.errors import NotFound

_ID = re.compile(r"^[0-9a-z]{26}$")


class UploadFiles:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, upload_id: str) -> Path:
        if not _ID.match(upload_id):
            raise NotFound("upload not found")
        return self.directory / upload_id

    def save(self, upload_id: str, data: bytes, text: str | None = None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if text is not None:
            _write(self.path(upload_id).with_suffix(".txt"), text.encode())
        _write(self.path(upload_id), data)

    def remove(self, upload_id: str) -> None:
        path = self.path(upload_id)
        for each in (path, path.with_suffix(".txt")):
            each.unlink(missing_ok=True)

    def read(self, upload_id: str) -> bytes:
        try:
            return self.path(upload_id).read_bytes()
        except FileNotFoundError:
            raise NotFound("the uploaded file is missing on the server") from None

    def read_text(self, upload_id: str, pdf: bool) -> str:
        """A text file's text, or a PDF's extracted text."""
        path = self.path(upload_id)
        try:
            if pdf:
                return path.with_suffix(".txt").read_text("utf-8")
            return path.read_bytes().decode("utf-8-sig")
        except FileNotFoundError:
            raise NotFound("the uploaded file is missing on the server") from None


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.incoming")
    with temporary.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)


__all__ = ["UploadFiles"]
