"""`durachat chat`: the terminal client. Streams a reply, resumes after lost connections.

With a PROMPT it streams one reply and exits: 0 when the reply is complete, 1 when
it ended early (`interrupted`) or failed, 130 when stopped with Ctrl-C. Without
one it is a `> ` prompt loop continuing one conversation: Ctrl-C stops the reply
being written and returns to the prompt, Ctrl-D or `/exit` quits. The
conversation id goes to stderr so that `--conversation` can take it up again.
Errors are one line on stderr, never a traceback. The protocol itself lives in
`durachat.client`; this module only wires it to a terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

import typer

from durachat.cli.chat_view import ReplyView, notice, open_view
from durachat.cli.common import fail
from durachat.client import (
    DEFAULT_URL,
    AuthError,
    ClientError,
    Done,
    DuraChatClient,
    Reconnecting,
    ReplyFailed,
    Rewound,
    ServerError,
    Started,
    TextDelta,
)
from durachat.client.connection import ReplyStream, websocket_url

EXIT_STOPPED = 130


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    token: str | None
    model: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    conversation_id: str | None
    done: Done | None
    """None when the user stopped waiting (a second Ctrl-C)."""
    stopped: bool


async def _show(stream: ReplyStream, view: ReplyView, stop_asked: asyncio.Event) -> Done:
    """Move the reply's events to the view; return its `Done`."""
    reconnecting = False
    async for event in stream:
        if reconnecting and not isinstance(event, Reconnecting):
            view.notice("reconnected")
            reconnecting = False
        match event:
            case Started():
                if stop_asked.is_set():  # Ctrl-C came before the server knew the reply
                    await stream.stop()
            case TextDelta():
                view.text(event.text)
            case Rewound():
                view.rewind(event.keep)
            case Reconnecting():
                reconnecting = True
                view.notice(_reconnect_line(event))
            case Done():
                return event
    raise ClientError("the reply stream ended without its end")


def _reconnect_line(event: Reconnecting) -> str:
    if event.attempt == 1:
        why = "" if event.reason == "connection lost" else f" ({event.reason})"
        return f"connection lost{why}, reconnecting..."
    return f"still no connection ({event.reason}), next try in {event.delay:.1f} s"


@contextlib.contextmanager
def _on_sigint(handler: Callable[[], None]) -> Iterator[None]:
    """Call `handler` on Ctrl-C while the block runs (where the platform allows)."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, handler)
    except (NotImplementedError, RuntimeError):
        yield  # no signal handlers here: Ctrl-C ends the command
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _reply(
    client: DuraChatClient, target: Target, prompt: str, conversation_id: str | None, loop: bool
) -> Outcome:
    """One reply. Ctrl-C sends `stop`; a second Ctrl-C stops waiting for the reply to end."""
    stream = client.chat(prompt, conversation_id, target.model)
    stop_asked = asyncio.Event()
    with open_view(interactive=loop) as view:
        task = asyncio.create_task(_show(stream, view, stop_asked))

        def on_interrupt() -> None:
            if stop_asked.is_set():
                task.cancel()
                return
            stop_asked.set()
            view.notice("stopping the reply (Ctrl-C again to stop waiting)")
            if stream.message_id is not None:
                task.get_loop().create_task(stream.stop())

        with _on_sigint(on_interrupt):
            try:
                done = await task
            except asyncio.CancelledError:
                if not stop_asked.is_set():
                    raise
                return Outcome(stream.conversation_id, None, True)
    return Outcome(done.conversation_id, done, stop_asked.is_set())


def _report(outcome: Outcome) -> int:
    """Tell how a reply ended, if not complete; the exit code that means."""
    done = outcome.done
    if outcome.stopped:
        notice("stopped")
        return EXIT_STOPPED
    if done is not None and done.status == "interrupted":
        notice("the reply was interrupted (the server stopped); its text so far is kept")
        return 1
    return 0


def _say_conversation(conversation_id: str | None) -> None:
    if conversation_id is not None:
        notice(f"conversation {conversation_id} (continue it with --conversation)")


def _error_line(exc: ClientError) -> str:
    if isinstance(exc, AuthError):
        return f"the server refused the connection: {exc.reason} (check --token or DURACHAT_TOKEN)"
    if isinstance(exc, ServerError):
        return f"{exc.code}: {exc.message}" if exc.code == "provider_error" else exc.message
    return str(exc)


async def _one_shot(target: Target, prompt: str, conversation_id: str | None) -> int:
    async with DuraChatClient(target.url, target.token) as client:
        try:
            outcome = await _reply(client, target, prompt, conversation_id, loop=False)
        except ReplyFailed as exc:
            _say_conversation(exc.conversation_id)
            raise
    code = _report(outcome)
    _say_conversation(outcome.conversation_id)
    return code


async def _check(target: Target, conversation_id: str | None) -> None:
    """Fail before the first prompt if the server, the token or the conversation is wrong."""
    async with DuraChatClient(target.url, target.token) as client:
        if conversation_id is not None:
            await client.get_conversation(conversation_id)
        else:
            await client.list_conversations(limit=1)


async def _turn(target: Target, prompt: str, conversation_id: str | None) -> str | None:
    async with DuraChatClient(target.url, target.token) as client:
        outcome = await _reply(client, target, prompt, conversation_id, loop=True)
    _report(outcome)
    return outcome.conversation_id or conversation_id


def _interactive(target: Target, conversation_id: str | None) -> int:
    asyncio.run(_check(target, conversation_id))
    with contextlib.suppress(ImportError):
        importlib.import_module("readline")  # line editing and history for input()
    notice(f"chatting with {target.url}; Ctrl-C stops a reply, Ctrl-D or /exit quits")
    while True:
        try:
            line = input("> ")
        except (EOFError, KeyboardInterrupt):
            print()
            break
        if not line.strip():
            continue
        if line.strip() == "/exit":
            break
        try:
            conversation_id = asyncio.run(_turn(target, line, conversation_id))
        except KeyboardInterrupt:
            notice("stopped")
        except AuthError:
            raise
        except ReplyFailed as exc:
            conversation_id = exc.conversation_id
            notice(_error_line(exc))
        except ClientError as exc:
            notice(_error_line(exc))
    _say_conversation(conversation_id)
    return 0


def chat(
    prompt: Annotated[
        str | None, typer.Argument(help="What to ask; without it, chat interactively.")
    ] = None,
    url: Annotated[str, typer.Option(envvar="DURACHAT_URL", help="The server.")] = DEFAULT_URL,
    token: Annotated[
        str | None,
        typer.Option(envvar="DURACHAT_TOKEN", help="API token (servers with DURACHAT_AUTH=on)."),
    ] = None,
    conversation: Annotated[
        str | None, typer.Option("--conversation", help="Continue this conversation.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model as provider/model.")] = None,
) -> None:
    """Chat with a DuraChat server; the reply streams and survives lost connections."""
    try:
        websocket_url(url)
    except ValueError as exc:
        fail(str(exc))
    target = Target(url, token or None, model)
    try:
        if prompt is None:
            code = _interactive(target, conversation)
        else:
            code = asyncio.run(_one_shot(target, prompt, conversation))
    except ClientError as exc:
        fail(_error_line(exc))
    except KeyboardInterrupt:
        code = EXIT_STOPPED
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    raise SystemExit(code)
