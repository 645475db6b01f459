"""Log lines carry the ids bound to their task, in JSON and in text; data-carrying
library lines are dropped."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from durachat import logs


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    logs.configure("json", "debug")
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        yield stream, handler
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def lines(stream: io.StringIO, logger: str | None = None) -> list[dict[str, object]]:
    found = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    return [e for e in found if logger is None or e["logger"] == logger]


async def test_ids_bound_in_a_task_stay_in_that_task(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    stream, _ = captured
    log = logging.getLogger("durachat.test")

    async def reply(message_id: str) -> None:
        logs.bind(conversationId="c1", messageId=message_id)
        await asyncio.sleep(0)
        log.info("reply ended", extra={"status": "complete"})

    await asyncio.gather(reply("m1"), reply("m2"))
    log.info("outside")
    found = lines(stream, "durachat.test")
    assert {(e["messageId"], e["conversationId"], e["status"]) for e in found[:2]} == {
        ("m1", "c1", "complete"),
        ("m2", "c1", "complete"),
    }
    assert "messageId" not in found[2]


def test_library_lines_that_carry_data_are_dropped(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    stream, handler = captured

    def emit(name: str, level: int, message: str) -> None:
        # straight to the handler: uvicorn may have turned its loggers' propagation off
        handler.handle(logging.LogRecord(name, level, __file__, 1, message, None, None))

    emit("aiosqlite", logging.DEBUG, "executing INSERT ... ('my secret prompt')")
    emit("uvicorn.error", logging.DEBUG, '> TEXT \'{"content":"secret"}\'')
    emit("httpcore2.http11", logging.DEBUG, "receive_response_headers.complete")
    emit("uvicorn.error", logging.INFO, "Started server process")
    emit("aiosqlite", logging.WARNING, "a real problem")
    assert [e["message"] for e in lines(stream)] == ["Started server process", "a real problem"]


def test_text_lines_show_the_ids(captured: tuple[io.StringIO, logging.Handler]) -> None:
    stream, handler = captured
    logs.configure("text", "info")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logging.getLogger("durachat.test").warning(
        "taken over", extra={"conversationId": "c9", "messageId": "m9"}
    )
    assert stream.getvalue().rstrip().endswith("taken over [conversationId=c9 messageId=m9]")
