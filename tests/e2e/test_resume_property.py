"""The resume guarantee under random disconnects (PROTOCOL.md sections 1 and 5).

Several clients follow one reply; each drops its socket at random points and
resumes, by query parameters or by a `subscribe` frame, after a random pause
(sometimes after the reply has ended). Every client must end with exactly the
stored text, having applied no duplicate and met no gap.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from durachat.client.state import ConversationState
from tests.e2e.server import Server
from tests.e2e.test_streaming import demo_text, start, wait_status
from tests.e2e.wsclient import WsClient

CHUNKS = 120


@dataclass(frozen=True)
class Drop:
    after_frames: int
    pause_ms: int
    by_query: bool


drops = st.builds(
    Drop,
    after_frames=st.integers(min_value=0, max_value=60),
    pause_ms=st.integers(min_value=0, max_value=300),
    by_query=st.booleans(),
)
plans = st.lists(st.lists(drops, max_size=5), min_size=1, max_size=4)


@pytest.fixture(scope="module")
def resume_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("resume"), {"DURACHAT_FLUSH_CHUNKS": "7"})
    server.start()
    yield server
    server.stop()


async def follow(server: Server, conversation_id: str, plan: list[Drop]) -> ConversationState:
    """Follow the conversation until its reply is done, dropping as the plan says.

    Drops left when the reply has ended are made at once: resuming a finished
    reply must still end with its `done` (or a catch-up that shows it finished).
    """
    state = ConversationState(conversation_id)
    client = await WsClient.connect(server.ws, {"conversationId": conversation_id})
    plan = list(plan)
    seen = 0
    ended = False
    while True:
        if plan and (ended or seen >= plan[0].after_frames):
            drop = plan.pop(0)
            await client.close()
            await asyncio.sleep(drop.pause_ms / 1000)
            client = await reconnect(server, state, drop.by_query)
            seen, ended = 0, False
        frame = await client.recv(timeout=10)
        seen += 1
        if frame.get("conversationId", conversation_id) != conversation_id:
            continue
        resubscribe = state.apply(frame)
        assert resubscribe is None, f"the server sent a gap: {frame}"
        reply = state.newest_assistant()
        ended = frame["type"] in ("done", "catchup") and reply is not None and reply.finished
        if ended and not plan:
            await client.close()
            return state


async def reconnect(server: Server, state: ConversationState, by_query: bool) -> WsClient:
    point = state.resume_point()
    conversation_id = state.conversation_id
    if by_query:
        query = {
            "conversationId": conversation_id,
            "afterMessageId": point.after_message_id,
            "afterSeq": point.after_seq,
        }
        return await WsClient.connect(server.ws, query)
    client = await WsClient.connect(server.ws)
    await client.send(point.frame(conversation_id))
    return client


def run_scenario(server: Server, plan: list[list[Drop]], seed: int) -> None:
    async def scenario() -> None:
        starter = await WsClient.connect(server.ws)
        created = await start(starter, f"!demo chunks={CHUNKS} delay_ms=4")
        await starter.close()  # the reply must go on without its sender
        conversation_id = str(created["conversationId"])
        await asyncio.sleep(random.Random(seed).random() * 0.2)
        states = await asyncio.gather(*(follow(server, conversation_id, p) for p in plan))
        stored = await wait_status(server, conversation_id, str(created["messageId"]))
        assert stored["content"] == demo_text(CHUNKS)
        for state in states:
            reply = state.newest_assistant()
            assert reply is not None
            assert reply.content == stored["content"]
            assert reply.seq == stored["seq"] and reply.status == "complete"
            assert state.duplicates == 0 and state.gaps == 0

    asyncio.run(scenario())


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=plans, seed=st.integers(min_value=0, max_value=1000))
def test_every_client_ends_with_exactly_the_stored_text(
    resume_server: Server, plan: list[list[Drop]], seed: int
) -> None:
    run_scenario(resume_server, plan, seed)
