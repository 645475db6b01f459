"""How `durachat chat` shows a reply: live Markdown on a terminal, the raw text on a pipe.

`PlainView` writes the text to stdout exactly as it streams (a pipe or a test gets
the reply byte for byte, no trailing newline added). `LiveView` renders the reply
as Markdown with rich, refreshed a few times a second, so a long reply is parsed
a few times a second rather than once per chunk. Notices (reconnecting, a reply
that ended early) go to stderr in both. No protocol logic here.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import Protocol

from rich.console import Console, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.text import Text

REFRESHES_PER_SECOND = 8


class ReplyView(Protocol):
    def __enter__(self) -> ReplyView: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def text(self, delta: str) -> None:
        """Reply text that follows what was shown."""

    def rewind(self, keep: int) -> None:
        """Only the first `keep` characters shown are part of the reply."""

    def notice(self, line: str) -> None:
        """A line for the user beside the reply (stderr)."""


def notice(line: str) -> None:
    print(f"durachat: {line}", file=sys.stderr, flush=True)


class PlainView:
    """The text as streamed on stdout; what cannot be taken back is told on stderr."""

    def __init__(self, end: str = "") -> None:
        self._end = end
        self._shown = 0

    def __enter__(self) -> PlainView:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._end and self._shown:
            sys.stdout.write(self._end)
        sys.stdout.flush()

    def text(self, delta: str) -> None:
        sys.stdout.write(delta)
        sys.stdout.flush()
        self._shown += len(delta)

    def rewind(self, keep: int) -> None:
        lost = self._shown - keep
        self._shown = keep
        sys.stdout.flush()
        notice(
            f"the server restarted before storing the last {lost} characters shown above; "
            "they are not part of the stored reply"
        )

    def notice(self, line: str) -> None:
        sys.stdout.flush()
        notice(line)


class LiveView:
    """The reply as Markdown, redrawn in place while it streams."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._lock = threading.Lock()  # rich refreshes from its own thread
        self._live = Live(
            console=Console(),
            get_renderable=self._render,
            refresh_per_second=REFRESHES_PER_SECOND,
            vertical_overflow="visible",
            redirect_stdout=False,
            redirect_stderr=sys.stderr.isatty(),  # notices print above the reply
        )

    def _render(self) -> RenderableType:
        text = self._text()
        return Markdown(text) if text else Text("")

    def _text(self) -> str:
        with self._lock:
            if len(self._parts) > 1:
                self._parts = ["".join(self._parts)]
            return self._parts[0] if self._parts else ""

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._live.stop()

    def text(self, delta: str) -> None:
        with self._lock:
            self._parts.append(delta)

    def rewind(self, keep: int) -> None:
        text = self._text()
        with self._lock:
            self._parts = [text[:keep]]

    def notice(self, line: str) -> None:
        notice(line)


def open_view(interactive: bool) -> ReplyView:
    """`LiveView` when stdout is a terminal, else `PlainView`."""
    if sys.stdout.isatty():
        return LiveView()
    return PlainView(end="\n" if interactive else "")
