"""`throughput-2nodes`: the throughput test through two DuraChat nodes.

SPEC section 9's multi-node bar: a private PostgreSQL and a private Redis
(`durachat.localservices`, from the installed binaries, free loopback ports,
temporary directories) are started, N users with an API token each are written
into a fresh database through the store before the nodes start, and two
`durachat serve` nodes share that database and that Redis
(`DURACHAT_DATABASE_URL`, `DURACHAT_REDIS_URL`). Half the clients connect to each
node; chunks/s delivered are counted exactly as `throughput` counts them, against
the bare relay of the same run, rounds alternating (the server CPU is both nodes'
sum). Then the cross-node check: pairs of sockets of one user, one on each node;
the socket on node B subscribes to a conversation, the one on node A starts a
reply in it, and B must receive every chunk live with the exact text.

Missing PostgreSQL or Redis binaries fail the scenario with one line before
anything starts. It must never use the machine's own PostgreSQL or Redis, and
every server it starts is stopped when it ends, fails or is interrupted.
"""

from __future__ import annotations

import asyncio

from durachat.bench.context import Context
from durachat.bench.report import Row, ScenarioResult
from durachat.bench.servers import STEP_TIMEOUT_S, Server
from durachat.bench.streaming import add_throughput_rows, compare, run_streams
from durachat.bench.wsclient import Client, close_clients, demo_prompt, open_clients
from durachat.localservices.postgres import PrivatePostgres
from durachat.localservices.redis import PrivateRedis

NAME = "throughput-2nodes"
DATABASE = "durachat_bench"


def demo_text(chunks: int) -> str:
    return "".join(f"w{i} " for i in range(1, chunks + 1))


async def _relayed(on_a: Client, on_b: Client, chunks: int) -> None:
    """A reply started on node A reaches B's subscribed socket live, exactly."""
    await on_a.send({"type": "start_chat", "prompt": demo_prompt(1)})
    created = await on_a.wait_for("conversation_created")
    conversation_id, first = created["conversationId"], created["messageId"]
    await on_a.wait_for("done", messageId=first)
    await on_b.send({"type": "subscribe", "conversationId": conversation_id})
    await on_b.wait_for("catchup")
    prompt = demo_prompt(chunks, delay_ms=2)
    await on_a.send({"type": "start_chat", "prompt": prompt, "conversationId": conversation_id})
    while True:
        started = await on_b.wait_for("message_started", conversationId=conversation_id)
        if started["messageId"] != first:
            break
    message_id = started["messageId"]
    done = await on_b.wait_for("done", messageId=message_id)
    recording = on_b.recordings.get(message_id)
    text = "".join(content for _, content in recording.texts) if recording else ""
    if on_b.problems or done.get("status") != "complete" or text != demo_text(chunks):
        raise RuntimeError(
            f"cross-node: node B got {len(text)} chars, status {done.get('status')}, "
            f"want {len(demo_text(chunks))} complete; problems {on_b.problems[:3]}"
        )


async def cross_node(a: Server, b: Server, tokens: list[str], chunks: int) -> int:
    """Run the pairs (one user each, A starts, B subscribes); how many got exact text."""
    on_a = await open_clients(a.ws_url, len(tokens), tokens=tokens)
    try:
        on_b = await open_clients(b.ws_url, len(tokens), tokens=tokens, record=True)
        try:
            pairs = (_relayed(x, y, chunks) for x, y in zip(on_a, on_b, strict=True))
            await asyncio.wait_for(asyncio.gather(*pairs), STEP_TIMEOUT_S + chunks / 100)
        finally:
            await close_clients(on_b)
    finally:
        await close_clients(on_a)
    return len(tokens)


async def throughput_two_nodes(ctx: Context) -> ScenarioResult:
    clients = ctx.options.client_count
    chunks = ctx.options.pick(100, 20)
    pairs, pair_chunks = ctx.options.pick(10, 4), ctx.options.pick(200, 50)
    postgres, redis = PrivatePostgres(), PrivateRedis()  # missing binaries: one line
    servers = ctx.servers
    nodes: list[Server] = []
    try:
        ctx.step(f"{NAME}: private PostgreSQL and Redis")
        servers.service(postgres)
        servers.service(redis)
        database_url = await postgres.shared_database(DATABASE)
        ctx.step(f"{NAME}: {clients} users in PostgreSQL")
        tokens = await servers.users.create_in(database_url, max(clients, pairs))
        env = {"DURACHAT_DATABASE_URL": database_url, "DURACHAT_REDIS_URL": redis.url}
        nodes = [servers.node(env) for _ in range(2)]
        result, m = await compare(
            ctx, NAME, run_streams, clients, chunks, per_user=True, nodes=tuple(nodes),
            tokens=tokens[:clients],
        )  # fmt: skip
        add_throughput_rows(result, m, clients, chunks)
        ctx.step(f"{NAME}: cross-node check")
        exact = await cross_node(nodes[0], nodes[1], tokens[:pairs], pair_chunks)
    finally:
        for node in nodes:
            servers.stop(node)
        servers.stop_service(redis)
        servers.stop_service(postgres)
    result.figures |= {
        "nodes": len(nodes),
        "cross_node_pairs": pairs,
        "cross_node_chunks": pair_chunks,
        "cross_node_exact": exact,
    }
    result.rows.append(
        Row(f"node A -> node B, exact text ({pair_chunks} chunks)", f"{exact}/{pairs}")
    )
    return result
