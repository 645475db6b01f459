"""The runner: one supervised asyncio task per reply, owned by no connection.

A socket or an HTTP request asks the runner to start or stop a reply; the runner
writes the turn, acknowledges it, and drives the reply's `ReplyMachine` from a task
of its own, publishing every frame to the bus and handing text to the group
committer. Closing every socket never cancels a reply (DESIGN.md invariant 4);
only `stop` does, or the server's shutdown, which stores the reply `interrupted`.
`done` is published only after the final state is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from durachat import events
from durachat.bus.base import Bus
from durachat.domain import (
    Conversation,
    ErrorInfo,
    Message,
    Role,
    Status,
    branch_path,
    new_id,
)
from durachat.errors import (
    BadRequest,
    Conflict,
    DuraChatError,
    RateLimited,
    TooLarge,
    Unavailable,
)
from durachat.providers.base import ChatRequest, PromptMessage, Provider
from durachat.providers.registry import Registry
from durachat.runner.machine import ReplyMachine
from durachat.settings import Settings
from durachat.store.base import NewConversation, NewTurn, Store
from durachat.store.groupcommit import GroupCommitter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StartChat:
    """A request for a new user message and its reply (PROTOCOL.md `start_chat`)."""

    prompt: str
    conversation_id: str | None = None
    model: str | None = None
    client_message_id: str | None = None
    parent_id: str | None = None


@dataclass(frozen=True, slots=True)
class Started:
    """A reply that was accepted: what its acknowledgement carries."""

    conversation: Conversation
    user_message: Message
    message: Message
    created: bool
    client_message_id: str | None

    def ack(self) -> events.Frame:
        if self.created:
            return events.conversation_created(
                self.conversation, self.user_message, self.message, self.client_message_id
            )
        return events.message_started(self.user_message, self.message, self.client_message_id)


@dataclass(slots=True)
class _Reply:
    user_id: str
    conversation_id: str
    message_id: str
    epoch: int
    machine: ReplyMachine
    task: asyncio.Task[None] | None = None
    stop_status: Status | None = None


def title_from(prompt: str) -> str:
    lines = [line.strip() for line in prompt.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("!demo")] or ["New chat"]
    first = lines[0]
    return first if len(first) <= 60 else first[:59].rstrip() + "…"


class Runner:
    """Starts, stops, supervises and recovers replies."""

    def __init__(self, settings: Settings, store: Store, bus: Bus, registry: Registry) -> None:
        self._settings = settings
        self._store = store
        self._bus = bus
        self._registry = registry
        self.committer = GroupCommitter(
            store, settings.flush_chunks, settings.flush_ms, self._on_fenced
        )
        self._replies: dict[str, _Reply] = {}
        self._by_conversation: dict[str, _Reply] = {}
        self._per_user: Counter[str] = Counter()
        self.accepting = True
        self.text_events = 0

    @property
    def active(self) -> int:
        return len(self._replies)

    async def start(self) -> int:
        """Recover replies a previous process left streaming; start group commit."""
        recovered = await self._store.recover_streaming()
        if recovered:
            log.info("marked %d replies interrupted after a restart", len(recovered))
        self.committer.start()
        return len(recovered)

    def _check_accepting(self, user_id: str) -> None:
        if not self.accepting:
            raise Unavailable("the server is shutting down; try again in a moment")
        limit = self._settings.user_concurrent_replies
        if self._per_user[user_id] >= limit:
            raise RateLimited(f"you already have {limit} replies streaming; wait for one to end")

    async def start_chat(
        self, user_id: str, command: StartChat, on_ready: Callable[[Started], None]
    ) -> Started:
        """Write the new turn, call `on_ready` (subscribe the asker), then start the reply.

        `on_ready` runs before anything about the reply is published, so the asker
        sees the acknowledgement before any `text`.
        """
        self._check_accepting(user_id)
        if len(command.prompt) > self._settings.max_prompt_chars:
            raise TooLarge(
                f"the prompt has {len(command.prompt)} characters; "
                f"the limit is {self._settings.max_prompt_chars}"
            )
        conversation: Conversation | None = None
        history: list[Message] = []
        if command.conversation_id is not None:
            conversation = await self._store.get_conversation(user_id, command.conversation_id)
            if conversation.id in self._by_conversation:
                raise Conflict("a reply is already streaming in this conversation")
            history = await self._store.list_messages(user_id, conversation.id)
        model_id = command.model or (conversation.model if conversation else "")
        model_id = model_id or self._registry.default_model
        provider, info = self._registry.resolve(model_id)
        parent_id = self._parent(command, conversation, history)
        conversation_id = conversation.id if conversation else new_id()
        user_message = Message(
            new_id(),
            conversation_id,
            parent_id,
            Role.USER,
            command.prompt,
            Status.COMPLETE,
            0,
            client_message_id=command.client_message_id,
        )
        assistant = Message(
            new_id(),
            conversation_id,
            user_message.id,
            Role.ASSISTANT,
            "",
            Status.STREAMING,
            0,
            model=info.id,
            provider=info.provider,
            epoch=1,
        )
        new_conversation = None
        if conversation is None:
            new_conversation = NewConversation(
                conversation_id, user_id, title_from(command.prompt), info.id, info.provider
            )
        self._check_accepting(user_id)
        stored = await self._store.create_turn(
            NewTurn(user_id, conversation_id, assistant, user_message, new_conversation)
        )
        started = Started(
            stored, user_message, assistant, conversation is None, command.client_message_id
        )
        path = [*branch_path(history, parent_id), user_message] if parent_id else [user_message]
        request = ChatRequest(
            info.upstream,
            tuple(PromptMessage(m.role.value, m.content) for m in path),
            stored.system_prompt,
        )
        self._launch(user_id, started, provider, request, on_ready)
        return started

    @staticmethod
    def _parent(
        command: StartChat, conversation: Conversation | None, history: list[Message]
    ) -> str | None:
        if conversation is None:
            if command.parent_id is not None:
                raise BadRequest("parentId needs a conversationId")
            return None
        if command.parent_id is None:
            return conversation.current_leaf_id
        if not any(m.id == command.parent_id for m in history):
            raise BadRequest(
                f"parentId {command.parent_id!r} is not a message of this conversation"
            )
        return command.parent_id

    def _launch(
        self,
        user_id: str,
        started: Started,
        provider: Provider,
        request: ChatRequest,
        on_ready: Callable[[Started], None],
    ) -> None:
        message = started.message
        machine = ReplyMachine(
            message.conversation_id, message.id, max_chars=self._settings.max_reply_chars
        )
        reply = _Reply(user_id, message.conversation_id, message.id, message.epoch, machine)
        self._replies[message.id] = reply
        self._by_conversation[message.conversation_id] = reply
        self._per_user[user_id] += 1
        on_ready(started)
        if not started.created:
            self._bus.publish(started.ack())
        self._bus.publish_user(user_id, events.conversation_updated(started.conversation))
        reply.task = asyncio.create_task(
            self._generate(reply, provider, request), name=f"reply-{message.id}"
        )

    async def _generate(self, reply: _Reply, provider: Provider, request: ChatRequest) -> None:
        machine = reply.machine
        try:
            await self._stream(reply, provider, request)
        except asyncio.CancelledError:
            machine.cancel(reply.stop_status or Status.INTERRUPTED)
        except TimeoutError:
            machine.timed_out()
        except DuraChatError as exc:
            machine.fail(ErrorInfo(exc.code, exc.message))
        except Exception:
            log.exception("reply %s failed", reply.message_id)
            machine.fail(ErrorInfo("internal", "the server failed while generating this reply"))
        await self._finish(reply)

    async def _stream(self, reply: _Reply, provider: Provider, request: ChatRequest) -> None:
        machine = reply.machine
        bus = self._bus
        committer = self.committer
        async with asyncio.timeout(self._settings.max_reply_seconds):
            async with contextlib.aclosing(provider.stream(request)) as stream:
                async for event in stream:
                    output = machine.feed(event)
                    for frame in output.frames:
                        bus.publish(frame)
                    appended = output.appended
                    if appended is not None:
                        if appended.text:
                            self.text_events += 1
                            committer.add(
                                reply.message_id, reply.epoch, appended.text, appended.seq
                            )
                        else:
                            committer.add_reasoning(
                                reply.message_id,
                                reply.epoch,
                                appended.reasoning,
                                appended.reasoning_seq,
                                appended.seq,
                            )
                    if machine.finished:
                        break
        machine.end_of_stream()

    async def _finish(self, reply: _Reply) -> None:
        machine = reply.machine
        assert machine.final is not None
        try:
            await self.committer.finish(
                reply.message_id, reply.epoch, machine.seq, machine.final, machine.reasoning_seq
            )
        finally:
            for frame in machine.closing_frames():
                self._bus.publish(frame)
            self._bus.end_log(reply.message_id)
            self._forget(reply)
        try:
            conversation = await self._store.get_conversation(reply.user_id, reply.conversation_id)
        except DuraChatError:
            return  # deleted while streaming
        self._bus.publish_user(reply.user_id, events.conversation_updated(conversation))

    def _forget(self, reply: _Reply) -> None:
        self._replies.pop(reply.message_id, None)
        if self._by_conversation.get(reply.conversation_id) is reply:
            del self._by_conversation[reply.conversation_id]
        self._per_user[reply.user_id] -= 1
        if self._per_user[reply.user_id] <= 0:
            del self._per_user[reply.user_id]

    def _on_fenced(self, message_id: str) -> None:
        reply = self._replies.get(message_id)
        if reply is not None and reply.task is not None and not reply.machine.finished:
            log.warning("reply %s was taken over elsewhere; stopping here", message_id)
            reply.stop_status = Status.INTERRUPTED
            reply.task.cancel()

    def stop(self, user_id: str, conversation_id: str, message_id: str | None = None) -> bool:
        """Cancel the conversation's streaming reply; False if none streams here."""
        reply = self._by_conversation.get(conversation_id)
        if reply is None or reply.user_id != user_id:
            return False
        if message_id is not None and reply.message_id != message_id:
            return False
        if reply.task is None or reply.stop_status is not None:
            return False
        reply.stop_status = Status.CANCELLED
        reply.task.cancel()
        return True

    def streaming_message(self, conversation_id: str) -> str | None:
        reply = self._by_conversation.get(conversation_id)
        return reply.message_id if reply else None

    async def shutdown(self, grace_s: float) -> None:
        """Refuse new replies, let running ones finish for `grace_s`, store the rest
        `interrupted`, and write everything pending."""
        self.accepting = False
        tasks = [r.task for r in self._replies.values() if r.task is not None]
        if tasks:
            log.info("waiting up to %.0f s for %d replies", grace_s, len(tasks))
            await asyncio.wait(tasks, timeout=grace_s)
        for reply in list(self._replies.values()):
            if reply.task is not None and not reply.task.done():
                reply.stop_status = reply.stop_status or Status.INTERRUPTED
                reply.task.cancel()
        remaining = [r.task for r in self._replies.values() if r.task is not None]
        if remaining:
            await asyncio.wait(remaining, timeout=max(grace_s, 5.0))
        await self.committer.close(timeout=max(grace_s, 5.0))
