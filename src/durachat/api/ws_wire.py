"""Server frames written straight to uvicorn's transport, each encoded once.

A frame the bus fans out is the same JSON text for every subscriber, and a
server-to-client WebSocket frame is not masked, so its bytes on the wire are the
same for every socket too. The ASGI path builds them again for each socket and
each frame (a message dict, uvicorn's `send` coroutine, the websockets library's
frame object, its serialisation, a join): several times the cost of the write
itself, on the path every chunk takes (SPEC 9, throughput and fan-out).

`direct_writer(send)` returns, for a socket served by uvicorn's websockets-sansio
protocol (the one `server.py` configures), a function that writes a text frame
with one `transport.write` when the socket can take it now: open, no close sent,
the transport not paused (uvicorn's `writable`) and no extension negotiated
(per-message compression is off). It returns False otherwise, and the caller
takes the ASGI path, which waits, queues or notices the disconnect exactly as
before; frames never overtake each other because the outbox uses the direct
path only when nothing is queued. Any other server (Starlette's test client,
another ASGI server or uvicorn protocol) gets None: the ASGI path only.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from starlette.types import Send

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import (
        WebSocketsSansIOProtocol,
    )
    from websockets.protocol import State
except ImportError:  # pragma: no cover - another uvicorn or websockets layout
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]

OP_TEXT_FIN = 0x81
_SHORT = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")

Writer = Callable[[str], bool]
"""Write one text frame now; False if it must go the ASGI way instead."""


class _Encoded:
    """The wire bytes of the last frame encoded: a fan-out writes the same text to
    every subscriber in a row, so it is encoded once, not once per socket."""

    __slots__ = ("data", "wire")

    def __init__(self) -> None:
        self.data: str | None = None  # not "": an empty frame is a frame too
        self.wire = b""


_last = _Encoded()


def text_frame(data: str) -> bytes:
    """An unmasked, final WebSocket text frame (RFC 6455 section 5.2) of `data`."""
    last = _last
    if data is last.data:
        return last.wire
    payload = data.encode()
    size = len(payload)
    if size < 126:
        wire = bytes((OP_TEXT_FIN, size)) + payload
    elif size < 65536:
        wire = _SHORT.pack(OP_TEXT_FIN, 126, size) + payload
    else:
        wire = _LONG.pack(OP_TEXT_FIN, 127, size) + payload
    last.data, last.wire = data, wire
    return wire


def direct_writer(send: Send) -> Writer | None:
    """A direct writer for the socket whose ASGI `send` this is, or None."""
    protocol: Any = getattr(send, "__self__", None)
    if WebSocketsSansIOProtocol is None or type(protocol) is not WebSocketsSansIOProtocol:
        return None
    connection = protocol.conn
    if connection.extensions:  # their frames need RSV bits and transformed payloads
        return None
    transport = protocol.transport
    writable = protocol.writable
    is_open = State.OPEN

    def write(data: str) -> bool:
        if (
            protocol.close_sent
            or connection.state is not is_open
            or not writable.is_set()
            or transport.is_closing()
        ):
            return False
        transport.write(text_frame(data))
        return True

    return write
