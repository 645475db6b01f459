"""`durachat serve`'s uvicorn server run in this process: frames written straight to
uvicorn's transport (api/ws_wire.py) take the direct path and are what the
websockets library would have written, and the garbage collector is tuned once
the server has started (server.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import websockets
from fastapi import FastAPI
from websockets.frames import Frame, Opcode

from durachat.api.ws_wire import direct_writer, text_frame
from durachat.bench.wsclient import demo_prompt
from durachat.server import YOUNG_COLLECTION_EVERY, serving
from durachat.settings import load_settings


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70_000])
def test_a_text_frame_is_what_websockets_would_write(size: int) -> None:
    data = ("é" * (size // 2)) + ("x" * (size % 2))  # two bytes per é
    expected = Frame(Opcode.TEXT, data.encode()).serialize(mask=False, extensions=[])
    assert text_frame(data) == expected
    assert text_frame(data) == expected  # again, from the one-frame memo


async def test_no_direct_writer_outside_uvicorns_sansio_protocol() -> None:
    async def send(message: object) -> None:
        return None

    assert direct_writer(send) is None  # the test client, another server


@contextlib.asynccontextmanager
async def _served(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, str]]:
    settings = load_settings({"DURACHAT_DATA_DIR": str(tmp_path), "DURACHAT_AUTH": "off"})
    server, app = serving(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.01)
        yield app, f"ws://127.0.0.1:{port}/ws"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def test_frames_take_the_direct_path_and_arrive_whole(tmp_path: Path) -> None:
    async with _served(tmp_path) as (app, url), websockets.connect(url, max_size=None) as client:
        hello = orjson.loads(await client.recv())
        assert hello["type"] == "hello"
        (connection,) = app.state.services.sockets
        write = connection.outbox._write
        assert write is not None, "uvicorn's sansio protocol: frames go to the transport"
        written: list[bool] = []

        def counted(data: str) -> bool:
            written.append(write(data))
            return written[-1]

        connection.outbox._write = counted
        # a prompt long enough for a frame past 64 KiB (the 8-byte length form)
        prompt = demo_prompt(200) + "\n" + "é" * 40_000
        await client.send(orjson.dumps({"type": "start_chat", "prompt": prompt}).decode())
        seqs: list[int] = []
        created = None
        while True:
            frame = orjson.loads(await asyncio.wait_for(client.recv(), 10))
            if frame["type"] == "conversation_created":
                created = frame
            elif frame["type"] == "text":
                seqs.append(frame["seq"])
            elif frame["type"] == "done":
                break
        assert created is not None and created["userMessage"]["content"] == prompt
        assert seqs == list(range(1, 201))
        assert len(written) > 200 and all(written)


async def test_the_collector_is_settled_once_the_server_has_started(tmp_path: Path) -> None:
    before = gc.get_threshold()
    try:
        async with _served(tmp_path):
            assert gc.get_threshold()[0] == YOUNG_COLLECTION_EVERY
            assert gc.get_freeze_count() > 10_000  # the started server's objects
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
