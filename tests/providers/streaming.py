"""What the fake vendor servers share: sending a scripted stream, line by line.

A stream is a sequence of `(delay before it, bytes)`; `None` instead of bytes cuts
the connection there (uvicorn closes it when the app raises after the response
started), as a crashed upstream would. The client's disconnect is watched all the
while and recorded with its time, so a test can check that cancelling a reply
really closed its HTTP stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterable

from starlette.types import Receive, Send

Line = tuple[float, bytes | None]


class Drop(Exception):
    """Raised after the response started: uvicorn then closes the connection."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], Drop))


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


class Disconnects:
    """When clients went away mid-stream (read from the test's thread)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.event = threading.Event()

    def record(self) -> None:
        self.times.append(time.monotonic())
        self.event.set()

    def clear(self) -> None:
        self.times.clear()
        self.event.clear()


async def send_stream(
    receive: Receive,
    send: Send,
    content_type: bytes,
    lines: Iterable[Line],
    disconnects: Disconnects,
) -> bool:
    """Send `lines` as a 200 streaming response; True if it was sent to its end."""
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnects.record()
        gone.set()

    watcher = asyncio.create_task(watch())
    try:
        headers = [(b"content-type", content_type)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for delay, line in lines:
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(gone.wait(), delay)
            if gone.is_set():
                return False
            if line is None:
                raise Drop
            await send({"type": "http.response.body", "body": line, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True
    except OSError:
        return False
    finally:
        watcher.cancel()


__all__ = ["Disconnects", "Drop", "Line", "send_stream"]
