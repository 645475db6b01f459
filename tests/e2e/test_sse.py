"""Server-Sent Events against a real server: chat streams, resume by Last-Event-ID
(also across a restart), JSON errors before streaming, and disconnects that never
stop a reply (PROTOCOL.md section 7)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from durachat.client.state import ConversationState, MessageState
from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_http_and_auth import bearer, make_user
from tests.e2e.test_streaming import demo_text, wait_status

TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Event:
    event: str
    id: str | None
    data: dict[str, Any]


async def read_events(response: httpx.Response) -> AsyncIterator[Event]:
    """A tiny SSE parser: `event`, `id` and `data` fields; comment lines skipped."""
    fields: dict[str, str] = {}
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                payload = orjson.loads("\n".join(data))
                yield Event(fields.get("event", "message"), fields.get("id"), payload)
            fields, data = {}, []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value


@contextlib.asynccontextmanager
async def sse(
    server: Server, method: str, path: str, **options: Any
) -> AsyncIterator[AsyncIterator[Event]]:
    """Open an event stream (asserting it is one) and yield its events."""
    async with (
        httpx.AsyncClient(base_url=server.http, timeout=TIMEOUT) as http,
        http.stream(method, path, **options) as response,
    ):
        if response.status_code != 200:
            await response.aread()
            raise AssertionError(f"{response.status_code}: {response.text}")
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        yield read_events(response)


async def collect(events: AsyncIterator[Event], until: Callable[[Event], bool]) -> list[Event]:
    """Events up to and including the first that matches `until` (with a timeout)."""
    got: list[Event] = []
    async with asyncio.timeout(TIMEOUT):
        async for event in events:
            got.append(event)
            if until(event):
                return got
    raise AssertionError(f"the stream ended before the expected event: {got[-3:]}")


def finished(message_id: str) -> Callable[[Event], bool]:
    """A `done` of the message, or a `catchup` in which it has finished."""

    def match(event: Event) -> bool:
        if event.event == "done":
            return bool(event.data["messageId"] == message_id)
        if event.event == "catchup":
            return any(
                m["id"] == message_id and m["status"] != "streaming" for m in event.data["messages"]
            )
        return False

    return match


def text_seq(seq: int) -> Callable[[Event], bool]:
    return lambda event: event.event == "text" and event.data["seq"] >= seq


async def json_answer(server: Server, method: str, path: str, **options: Any) -> tuple[int, Any]:
    async with httpx.AsyncClient(base_url=server.http, timeout=TIMEOUT) as http:
        response = await http.request(method, path, **options)
    assert response.headers["content-type"] == "application/json", response.text
    return response.status_code, response.json()


def stored_reply(server: Server, conversation_id: str, message_id: str) -> dict[str, Any]:
    catchup = server.get(f"/api/conversations/{conversation_id}/catchup")
    return next(m for m in catchup["messages"] if m["id"] == message_id)


async def test_post_chat_streams_the_ack_the_text_and_ends_after_done(server: Server) -> None:
    async with sse(server, "POST", "/api/chat", json={"prompt": "!demo chunks=40"}) as events:
        got = [event async for event in events]  # the server ends the stream
    ack = got[0]
    assert ack.event == "conversation_created" and ack.id is None
    conversation_id, message_id = ack.data["conversationId"], ack.data["messageId"]
    assert all(event.data["type"] == event.event for event in got)
    assert [e.event for e in got if e.id is not None] == ["text"] * 40 + ["done"]
    texts = [e for e in got if e.event == "text"]
    assert [e.id for e in texts] == [f"{message_id}:{seq}" for seq in range(1, 41)]
    done = got[-1]
    assert done.event == "done" and done.id == f"{message_id}:40"
    assert done.data["status"] == "complete"
    reply = stored_reply(server, conversation_id, message_id)
    assert "".join(e.data["content"] for e in texts) == reply["content"] == demo_text(40)

    follow_up = {"prompt": "!demo chunks=3", "conversationId": conversation_id}
    async with sse(server, "POST", "/api/chat", json=follow_up) as events:
        got = [event async for event in events]
    assert got[0].event == "message_started"
    assert got[-1].event == "done" and got[-1].data["messageId"] == got[0].data["messageId"]


async def test_test_chat_alias_starts_a_chat_and_streams_it(server: Server) -> None:
    async with sse(server, "GET", "/test/chat", params={"prompt": "!demo chunks=5"}) as events:
        got = [event async for event in events]
    assert got[0].event == "conversation_created"
    assert "".join(e.data["content"] for e in got if e.event == "text") == demo_text(5)
    params = {"prompt": "!demo chunks=2", "conversationId": got[0].data["conversationId"]}
    async with sse(server, "GET", "/test/chat", params=params) as events:
        again = [event async for event in events]
    assert again[0].event == "message_started" and again[-1].event == "done"


async def test_a_repeated_client_message_id_answers_the_first_ack_then_a_catchup(
    server: Server,
) -> None:
    body = {"prompt": "!demo chunks=4", "clientMessageId": "sse-once"}
    async with sse(server, "POST", "/api/chat", json=body) as events:
        first = [event async for event in events]
    async with sse(server, "POST", "/api/chat", json=body) as events:
        second = [event async for event in events]  # ends: the catch-up shows it finished
    kinds = [e.event for e in second if e.event != "conversation_updated"]  # e.g. a new title
    assert kinds == ["conversation_created", "catchup"]
    assert second[0].data["messageId"] == first[0].data["messageId"]


async def test_errors_before_streaming_are_json(server: Server) -> None:
    for body, status, code in [
        ({"prompt": "hi", "model": "nowhere/none"}, 400, "bad_request"),
        ({}, 400, "bad_request"),
        ({"prompt": 5}, 400, "bad_request"),
        ({"prompt": "hi", "conversationId": "missing"}, 404, "not_found"),
    ]:
        answer = await json_answer(server, "POST", "/api/chat", json=body)
        assert answer[0] == status and answer[1]["error"]["code"] == code, (body, answer)
    status, answer = await json_answer(server, "GET", "/test/chat")
    assert status == 400 and answer["error"]["message"] == "query.prompt is required"
    status, answer = await json_answer(server, "GET", "/api/conversations/missing/events")
    assert status == 404 and answer["error"]["code"] == "not_found"


async def test_malformed_positions_are_refused_and_the_header_wins(server: Server) -> None:
    async with sse(server, "POST", "/api/chat", json={"prompt": "!demo chunks=3"}) as events:
        got = [event async for event in events]
    path = f"/api/conversations/{got[0].data['conversationId']}/events"
    for bad in ["nocolon", "m:", ":5", "m:-1", "m:1.5", "m:1e3", "m:" + "9" * 40]:
        for options in ({"headers": {"Last-Event-ID": bad}}, {"params": {"after": bad}}):
            status, answer = await json_answer(server, "GET", path, **options)
            assert status == 400 and answer["error"]["code"] == "bad_request", (bad, options)
    done = got[-1]
    headers = {"Last-Event-ID": str(done.id)}
    async with sse(server, "GET", path, headers=headers, params={"after": "junk"}) as events:
        first = await anext(events)
    assert first == done, "a delta for a finished reply is its `done`, even with nothing missing"


async def test_events_without_a_position_start_with_catchup_then_stream_live(
    server: Server,
) -> None:
    async with sse(server, "POST", "/api/chat", json={"prompt": "!demo chunks=2"}) as events:
        conversation_id = (await anext(events)).data["conversationId"]
        await collect(events, lambda e: e.event == "done")
    async with sse(server, "GET", f"/api/conversations/{conversation_id}/events") as live:
        catchup = await anext(live)
        assert catchup.event == "catchup" and catchup.id is None
        assert len(catchup.data["messages"]) == 2
        body = {"prompt": "!demo chunks=30", "conversationId": conversation_id}
        async with sse(server, "POST", "/api/chat", json=body) as chat:
            message_id = (await anext(chat)).data["messageId"]
            got = await collect(live, finished(message_id))
    assert got[0].event == "message_started"
    assert "".join(e.data["content"] for e in got if e.event == "text") == demo_text(30)
    assert {e.data.get("conversationId", conversation_id) for e in got} == {conversation_id}


async def start_and_leave(server: Server, chunks: int, leave_at: int) -> ConversationState:
    """Start a slow reply over SSE, follow it until `leave_at`, disconnect; the state."""
    body = {"prompt": f"!demo chunks={chunks} delay_ms=5"}
    async with sse(server, "POST", "/api/chat", json=body) as events:
        ack = await anext(events)
        state = ConversationState(ack.data["conversationId"])
        for event in [ack, *await collect(events, text_seq(leave_at))]:
            assert state.apply(event.data) is None
    return state


def reply_of(state: ConversationState) -> MessageState:
    reply = state.newest_assistant()
    assert reply is not None
    return reply


async def resume(server: Server, state: ConversationState, **options: Any) -> list[Event]:
    """Reconnect to the conversation's events; apply them until the reply has finished."""
    reply = state.newest_assistant()
    assert reply is not None
    path = f"/api/conversations/{state.conversation_id}/events"
    async with sse(server, "GET", path, **options) as events:
        got = await collect(events, finished(reply.id))
    for event in got:
        assert state.apply(event.data) is None, event
    return got


@pytest.mark.parametrize("where", ["header", "query"])
async def test_a_position_resumes_mid_reply_without_duplicate_or_gap(
    server: Server, where: str
) -> None:
    state = await start_and_leave(server, 300, leave_at=50)
    reply = state.newest_assistant()
    assert reply is not None and reply.seq == 50
    position = f"{reply.id}:{reply.seq}"
    options = {"headers": {"Last-Event-ID": position}} if where == "header" else {}
    options = options or {"params": {"after": position}}
    got = await resume(server, state, **options)
    seqs = [e.data["seq"] for e in got if e.event == "text"]
    assert seqs == list(range(51, 301)), "exactly the rest: no duplicate, no gap"
    assert got[-1].event == "done" and got[-1].id == f"{reply.id}:300"
    assert state.duplicates == state.gaps == 0
    stored = stored_reply(server, state.conversation_id, reply.id)
    assert reply.content == stored["content"] == demo_text(300)


async def test_resume_across_a_restart_ends_with_the_stored_text(make_server: MakeServer) -> None:
    server = make_server({"DURACHAT_FLUSH_CHUNKS": "10", "DURACHAT_FLUSH_MS": "60000"})
    state = await start_and_leave(server, 300, leave_at=65)
    server.kill()
    server.start()
    message_id = reply_of(state).id
    stored = stored_reply(server, state.conversation_id, message_id)
    assert stored["status"] == "interrupted"
    positions = [
        reply_of(state).seq,  # where the client is: behind, equal to or ahead of the store
        stored["seq"] + 5,  # ahead of what was stored: a catch-up replaces the client's text
        stored["seq"],  # equal to it: a delta that is just the `done`
    ]
    for seq in positions:
        got = await resume(server, state, headers={"Last-Event-ID": f"{message_id}:{seq}"})
        assert reply_of(state).content == stored["content"] == demo_text(stored["seq"])
        assert reply_of(state).status == "interrupted"
    assert [e.event for e in got] == ["done"] and got[0].data["seq"] == stored["seq"]


async def connected_sockets(server: Server, expected: float) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if server.metric("durachat_connected_sockets") == expected:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_disconnecting_mid_reply_does_not_stop_the_generation(server: Server) -> None:
    state = await start_and_leave(server, 200, leave_at=10)
    assert await connected_sockets(server, 0), "a closed stream's outbox must be detached"
    reply = state.newest_assistant()
    assert reply is not None
    message = await wait_status(server, state.conversation_id, reply.id)
    assert message["status"] == "complete"
    assert message["content"] == demo_text(200) and message["seq"] == 200


async def test_other_users_conversations_and_oversized_prompts_answer_before_streaming(
    make_server: MakeServer,
) -> None:
    server = make_server({"DURACHAT_AUTH": "on", "DURACHAT_MAX_PROMPT_CHARS": "10"}, start=False)
    alice, bob = make_user(server.data_dir, "alice"), make_user(server.data_dir, "bob")
    server.start()
    status, answer = await json_answer(
        server, "POST", "/api/chat", json={"prompt": "x" * 11}, headers=bearer(alice)
    )
    assert status == 413 and answer["error"]["code"] == "too_large"
    body = {"prompt": "hello"}
    async with sse(server, "POST", "/api/chat", json=body, headers=bearer(alice)) as events:
        conversation_id = (await anext(events)).data["conversationId"]
    path = f"/api/conversations/{conversation_id}/events"
    status, answer = await json_answer(server, "GET", path, headers=bearer(bob))
    assert status == 404 and answer["error"]["code"] == "not_found"
    status, answer = await json_answer(server, "GET", path)
    assert status == 401 and answer["error"]["code"] == "unauthorized"
    body = {"prompt": "hi", "conversationId": conversation_id}
    status, answer = await json_answer(server, "POST", "/api/chat", json=body, headers=bearer(bob))
    assert status == 404 and answer["error"]["code"] == "not_found"
