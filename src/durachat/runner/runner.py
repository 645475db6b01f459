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
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from durachat import events, logs
from durachat.bus.base import Bus
from durachat.domain import (
    Conversation,
    ErrorInfo,
    Message,
    Status,
    branch_path,
)
from durachat.errors import (
    BadRequest,
    Conflict,
    DuraChatError,
    NotFound,
    RateLimited,
    TooLarge,
    Unavailable,
)
from durachat.metrics import Metrics
from durachat.providers.base import ChatRequest, PromptMessage, Provider, ProviderEvent, TextDelta
from durachat.providers.registry import Registry
from durachat.runner.commands import (
    Command,
    Continue,
    Edit,
    Regenerate,
    StartChat,
    check_context,
    plan_edit,
    plan_regenerate,
    plan_start,
    title_from,
)
from durachat.runner.leases import Leases, LocalLeases
from durachat.runner.machine import ReplyMachine
from durachat.runner.repeats import drop_repeats
from durachat.runner.sweeper import Sweeper
from durachat.runner.titles import write_title
from durachat.settings import Settings
from durachat.store.base import NewTurn, Store
from durachat.store.groupcommit import GroupCommitter
from durachat.uploads.files import UploadFiles
from durachat.uploads.prompt import PromptBuilder

log = logging.getLogger(__name__)

GO_ON = "Continue exactly where your previous reply stopped. Do not repeat any of it."
"""Asked of a model that cannot prefill when an interrupted reply is continued."""


@dataclass(frozen=True, slots=True)
class Started:
    """A reply that was accepted: what its acknowledgement carries."""

    conversation: Conversation
    user_message: Message
    message: Message
    created: bool
    client_message_id: str | None
    repeated: bool = False
    """A repeat of an earlier command: nothing new was started."""

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
    provider: str = ""
    model: str = ""
    started_at: float = 0.0
    task: asyncio.Task[None] | None = None
    stop_status: Status | None = None
    warned_unsaved: bool = False
    title_from_prompt: str | None = None
    """Set for a conversation's first reply: the prompt whose title a model may write."""
    drop_repeats_of: str = ""


class Runner:
    """Starts, stops, supervises and recovers replies."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: Bus,
        registry: Registry,
        metrics: Metrics | None = None,
        leases: Leases | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._bus = bus
        self._registry = registry
        self._prompts = PromptBuilder(store, UploadFiles(settings.uploads_path))
        self.metrics = metrics or Metrics()
        self.committer = GroupCommitter(
            store,
            settings.flush_chunks,
            settings.flush_ms,
            self._on_fenced,
            self._on_unsaved,
            on_flushed=self.metrics.flushed,
        )
        self._replies: dict[str, _Reply] = {}
        self._by_conversation: dict[str, _Reply] = {}
        self._per_user: Counter[str] = Counter()
        self.accepting = True
        self.text_events = 0
        self._background: set[asyncio.Task[None]] = set()
        self._leases: Leases = leases or LocalLeases()
        self._sweeper: Sweeper | None = None

    @property
    def active(self) -> int:
        return len(self._replies)

    async def start(self) -> int:
        """Recover replies a previous process left streaming; start group commit.

        One node: every streaming reply is orphaned. Many nodes: only those whose
        lease has expired (the sweeper, which then goes on every few seconds)."""
        if self._leases.shared:
            await self._leases.start(self._on_fenced, self._stop_here)
            self._sweeper = Sweeper(
                self._store,
                self._bus,
                self._leases,
                self._replies.keys,
                self._settings.lease_ms,
            )
            try:
                recovered = len(await self._sweeper.sweep())
            except Exception as exc:  # Redis away at start: the sweeper's rounds retry
                log.warning("first lease sweep failed (%s)", exc)
                recovered = 0
            self._sweeper.start()
        else:
            recovered = len(await self._store.recover_streaming())
        if recovered:
            log.info("marked %d replies interrupted after a restart", recovered)
        self.committer.start()
        return recovered

    def _check_accepting(self, user_id: str) -> None:
        if not self.accepting:
            raise Unavailable("the server is shutting down; try again in a moment")
        limit = self._settings.user_concurrent_replies
        if self._per_user[user_id] >= limit:
            raise RateLimited(f"you already have {limit} replies streaming; wait for one to end")

    async def start_reply(
        self, user_id: str, command: Command, on_ready: Callable[[Started], None]
    ) -> Started:
        """Start the reply a generating command asks for; `on_ready` subscribes the asker.

        `on_ready` runs before anything about the reply is published, so the asker
        sees the acknowledgement before any `text`. A command whose
        `clientMessageId` was seen before starts nothing: it is answered with the
        first answer (`Started.repeated`), and the asker should send a catch-up.
        """
        self._check_accepting(user_id)
        key = command.client_message_id
        if key is not None and (repeat := await self._repeat(user_id, key)) is not None:
            on_ready(repeat)
            return repeat
        try:
            return await self._begin(user_id, command, on_ready)
        except Conflict:
            if key is not None and (repeat := await self._repeat(user_id, key)) is not None:
                on_ready(repeat)  # the same command, sent twice at once
                return repeat
            raise

    async def _repeat(self, user_id: str, client_message_id: str) -> Started | None:
        command = await self._store.find_command(user_id, client_message_id)
        if command is None:
            return None
        conversation = await self._store.get_conversation(user_id, command.conversation_id)
        history = {m.id: m for m in await self._store.list_messages(user_id, conversation.id)}
        message = history[command.message_id]
        user_message = history[command.user_message_id or message.parent_id or message.id]
        return Started(
            conversation,
            user_message,
            message,
            command.created_conversation,
            client_message_id,
            repeated=True,
        )

    def _check_prompt(self, prompt: str) -> None:
        limit = self._settings.max_prompt_chars
        if len(prompt) > limit:
            raise TooLarge(f"the prompt has {len(prompt)} characters; the limit is {limit}")

    async def _history(
        self, user_id: str, conversation_id: str
    ) -> tuple[Conversation, list[Message]]:
        conversation = await self._store.get_conversation(user_id, conversation_id)
        if conversation.id in self._by_conversation:
            raise Conflict("a reply is already streaming in this conversation")
        return conversation, await self._store.list_messages(user_id, conversation.id)

    async def _begin(
        self, user_id: str, command: Command, on_ready: Callable[[Started], None]
    ) -> Started:
        if isinstance(command, Continue):
            return await self._continue(user_id, command, on_ready)
        if isinstance(command, StartChat | Edit):
            self._check_prompt(command.prompt)
        conversation: Conversation | None = None
        history: list[Message] = []
        if command.conversation_id is not None:
            conversation, history = await self._history(user_id, command.conversation_id)
        model = command.model if isinstance(command, StartChat | Regenerate) else None
        model_id = model or (conversation.model if conversation else self._registry.default_model)
        provider, info = self._registry.resolve(model_id)
        if isinstance(command, StartChat):
            attached = await self._prompts.attachments(user_id, command.attachments)
            plan = plan_start(command, user_id, conversation, history, info, attached)
        elif conversation is None:
            raise BadRequest(f"{type(command).__name__.lower()} needs a conversationId")
        elif isinstance(command, Edit):
            plan = plan_edit(command, conversation, history, info)
        else:
            plan = plan_regenerate(command, conversation, history, info)
        check_context(plan.path, conversation.system_prompt if conversation else "", info)
        prompt = await self._prompts.build(
            plan.path, info, conversation.system_prompt if conversation else ""
        )
        self._check_accepting(user_id)
        new_user = plan.user_message if plan.new_user_message else None
        turn = NewTurn(
            user_id,
            plan.conversation_id,
            plan.assistant,
            new_user,
            plan.new_conversation,
            command.client_message_id,
        )
        await self._leases.acquire(plan.assistant.id)  # before it is `streaming` anywhere
        try:
            stored = await self._store.create_turn(turn)
        except BaseException:
            self._leases.release(plan.assistant.id)
            raise
        started = Started(
            stored,
            plan.user_message,
            plan.assistant,
            plan.new_conversation is not None,
            command.client_message_id,
        )
        request = ChatRequest(info.upstream, prompt, stored.system_prompt)
        self._launch(user_id, started, provider, request, on_ready)
        return started

    async def _continue(
        self, user_id: str, command: Continue, on_ready: Callable[[Started], None]
    ) -> Started:
        conversation, history = await self._history(user_id, command.conversation_id)
        message = next((m for m in history if m.id == command.message_id), None)
        if message is None:
            raise NotFound(f"message {command.message_id!r} not found in this conversation")
        if message.status is not Status.INTERRUPTED or message.parent_id is None:
            raise Conflict(
                f"only an interrupted reply can be continued; this one is {message.status}"
            )
        provider, info = self._registry.resolve(message.model or conversation.model)
        check_context([*branch_path(history, message.id)], conversation.system_prompt, info)
        path = branch_path(history, message.parent_id)
        prompt = await self._prompts.build(path, info, conversation.system_prompt)
        self._check_accepting(user_id)
        await self._leases.acquire(message.id)
        try:
            conversation, message = await self._store.continue_reply(
                user_id, message.id, command.client_message_id
            )
        except BaseException:
            self._leases.release(message.id)
            raise
        started = Started(conversation, path[-1], message, False, command.client_message_id)
        if info.capabilities.prefill:
            request = ChatRequest(
                info.upstream, prompt, conversation.system_prompt, message.content
            )
            self._launch(user_id, started, provider, request, on_ready)
        else:
            extra = (PromptMessage("assistant", message.content), PromptMessage("user", GO_ON))
            request = ChatRequest(info.upstream, prompt + extra, conversation.system_prompt)
            self._launch(user_id, started, provider, request, on_ready, message.content)
        return started

    def _launch(
        self,
        user_id: str,
        started: Started,
        provider: Provider,
        request: ChatRequest,
        on_ready: Callable[[Started], None],
        drop_repeats_of: str = "",
    ) -> None:
        message = started.message
        machine = ReplyMachine(
            message.conversation_id,
            message.id,
            seq=message.seq,
            chars=len(message.content),
            reasoning_seq=message.reasoning_seq,
            max_chars=self._settings.max_reply_chars,
        )
        reply = _Reply(user_id, message.conversation_id, message.id, message.epoch, machine)
        # its writes start where the stored text ends, so a retried flush is idempotent
        self.committer.begin(message.id, len(message.content), len(message.reasoning), message.seq)
        reply.provider, reply.model = provider.name, message.model or ""
        reply.drop_repeats_of = drop_repeats_of
        if started.created:
            reply.title_from_prompt = started.user_message.content
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
        # this task's own context: every line it (and its title task) logs has the ids
        logs.bind(
            userId=reply.user_id, conversationId=reply.conversation_id, messageId=reply.message_id
        )
        log.debug("reply started (model %s)", reply.model, extra={"model": reply.model})
        reply.started_at = time.monotonic()
        machine = reply.machine
        try:
            await self._stream(reply, provider, request)
        except asyncio.CancelledError:
            machine.cancel(reply.stop_status or Status.INTERRUPTED)
        except TimeoutError:
            machine.timed_out()
        except DuraChatError as exc:
            self._provider_failed(reply, exc.code, exc.message)
            machine.fail(ErrorInfo(exc.code, exc.message))
        except Exception:
            log.exception("reply failed in the server")
            self._provider_failed(reply, "internal", "")
            machine.fail(ErrorInfo("internal", "the server failed while generating this reply"))
        await self._finish(reply)

    def _provider_failed(self, reply: _Reply, code: str, reason: str) -> None:
        self.metrics.provider_error(reply.provider, code)
        fields = {"provider": reply.provider, "model": reply.model, "code": code}
        # error messages are written for users and never hold secrets (errors.py)
        log.warning("provider %s failed: %s %s", reply.provider, code, reason, extra=fields)

    def _ended(self, reply: _Reply) -> None:
        """Count and log a reply's end (before its `done` is published)."""
        machine = reply.machine
        assert machine.final is not None
        seconds = time.monotonic() - reply.started_at
        status = machine.final.status.value
        self.metrics.reply_ended(status)
        fields = {
            "status": status,
            "finishReason": machine.finish_reason,
            "model": reply.model,
            "seq": machine.seq,
            "seconds": round(seconds, 3),
        }
        log.info("reply %s after %.2f s, seq %d", status, seconds, machine.seq, extra=fields)

    async def _stream(self, reply: _Reply, provider: Provider, request: ChatRequest) -> None:
        machine = reply.machine
        publish = self._bus.publish
        add = self.committer.add
        message_id, epoch = reply.message_id, reply.epoch
        async with asyncio.timeout(self._settings.max_reply_seconds):
            asked = time.perf_counter()
            source = provider.stream(request)
            if reply.drop_repeats_of:
                source = drop_repeats(source, reply.drop_repeats_of)
            async with contextlib.aclosing(source) as stream:
                async for event in stream:  # the first event: time to first token
                    self.metrics.first_token(reply.provider, time.perf_counter() - asked)
                    self._first_event(reply, event)
                    break
                if machine.final is not None:
                    return
                async for event in stream:  # the same stream, from its second event
                    if type(event) is TextDelta:  # the hot path: one frame, one append
                        frame = machine.text(event.text)
                        if frame is not None:
                            publish(frame)
                            add(message_id, epoch, frame.content, frame.seq)
                            self.text_events += 1
                    else:
                        self._other_event(reply, event)
                    if machine.final is not None:
                        break
        machine.end_of_stream()

    def _first_event(self, reply: _Reply, event: ProviderEvent) -> None:
        """The stream's first event: what the hot loop does, kept out of it."""
        if type(event) is not TextDelta:
            self._other_event(reply, event)
            return
        frame = reply.machine.text(event.text)
        if frame is not None:
            self._bus.publish(frame)
            self.committer.add(reply.message_id, reply.epoch, frame.content, frame.seq)
            self.text_events += 1

    def _other_event(self, reply: _Reply, event: ProviderEvent) -> None:
        """Reasoning and the finish: rarer than text, through the general path."""
        output = reply.machine.feed(event)
        for frame in output.frames:
            self._bus.publish(frame)
        appended = output.appended
        if appended is not None and appended.reasoning:
            self.committer.add_reasoning(
                reply.message_id,
                reply.epoch,
                appended.reasoning,
                appended.reasoning_seq,
                appended.seq,
            )

    async def _finish(self, reply: _Reply) -> None:
        machine = reply.machine
        assert machine.final is not None
        try:
            await self.committer.finish(
                reply.message_id, reply.epoch, machine.seq, machine.final, machine.reasoning_seq
            )
        finally:
            self._ended(reply)
            for frame in machine.closing_frames():
                self._bus.publish(frame)
            self._bus.end_log(reply.message_id)
            self._forget(reply)
        try:
            conversation = await self._store.get_conversation(reply.user_id, reply.conversation_id)
        except DuraChatError:
            return  # deleted while streaming
        self._bus.publish_user(reply.user_id, events.conversation_updated(conversation))
        if reply.title_from_prompt is not None and machine.final.status is Status.COMPLETE:
            task = asyncio.create_task(self._title(reply, conversation))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _title(self, reply: _Reply, conversation: Conversation) -> None:
        """Have a model title a new conversation, unless the user renamed it meanwhile."""
        prompt = reply.title_from_prompt or ""
        try:
            provider, info = self._registry.resolve(
                self._settings.title_model or conversation.model
            )
            message = await self._store.get_message(reply.user_id, reply.message_id)
        except DuraChatError:
            return
        timeout = self._settings.provider_first_token_s
        title = await write_title(provider, info.upstream, prompt, message.content, timeout)
        if title is None:
            return
        try:  # unless the user renamed it while the title was being written
            updated = await self._store.retitle(
                reply.user_id, reply.conversation_id, title_from(prompt), title
            )
        except DuraChatError:
            return
        if updated is None:
            return
        self._bus.publish_user(reply.user_id, events.conversation_updated(updated))

    def _forget(self, reply: _Reply) -> None:
        self._replies.pop(reply.message_id, None)
        self._leases.release(reply.message_id)
        if self._by_conversation.get(reply.conversation_id) is reply:
            del self._by_conversation[reply.conversation_id]
        self._per_user[reply.user_id] -= 1
        if self._per_user[reply.user_id] <= 0:
            del self._per_user[reply.user_id]

    def _on_fenced(self, message_id: str) -> None:
        reply = self._replies.get(message_id)
        if reply is not None and reply.task is not None and not reply.machine.finished:
            ids = {"conversationId": reply.conversation_id, "messageId": message_id}
            log.warning("reply was taken over elsewhere; stopping here", extra=ids)
            reply.stop_status = Status.INTERRUPTED
            reply.task.cancel()

    def _on_unsaved(self, message_ids: list[str], reason: str) -> None:
        """A flush failed (full disk, locked database): tell the replies' readers once.

        The text stays in memory and in the replay log, and the flush is retried;
        `done` follows only once the reply's end is committed.
        """
        for message_id in message_ids:
            reply = self._replies.get(message_id)
            if reply is None or reply.warned_unsaved:
                continue
            reply.warned_unsaved = True
            warning = ErrorInfo(
                "unavailable",
                f"this reply is not saved yet: {reason}. It is kept and will be saved "
                "as soon as the database accepts writes again.",
            )
            self._bus.publish(events.error(warning, reply.conversation_id, message_id))

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

    async def stop_anywhere(
        self, user_id: str, conversation_id: str, message_id: str | None = None
    ) -> bool:
        """`stop`, and with many nodes also a reply generated on another node: the
        conversation's active reply (scoped by user: `NotFound` for another's) is
        sent to its owner through Redis. True if a stop was made or sent."""
        if self.stop(user_id, conversation_id, message_id):
            return True
        if not self._leases.shared:
            return False
        conversation = await self._store.get_conversation(user_id, conversation_id)
        target = conversation.active_message_id
        if target is None or (message_id is not None and target != message_id):
            return False
        await self._leases.send_stop(target)
        return True

    def _stop_here(self, message_id: str) -> None:
        """A stop sent by another node for a reply generated here."""
        reply = self._replies.get(message_id)
        if reply is not None:
            self.stop(reply.user_id, reply.conversation_id, message_id)

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
        for task in list(self._background):
            task.cancel()
        await self.committer.close(timeout=max(grace_s, 5.0))
        if self._sweeper is not None:
            await self._sweeper.close()
        await self._leases.close()
