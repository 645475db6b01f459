"""The generating commands and the turns they plan, without I/O.

`start_chat`, `edit` and `regenerate` each become a `Plan`: the rows to write (a new
user message or none, a new assistant message, maybe a new conversation) and the
branch path the model is sent (root to the user message the reply answers). Nothing
is ever overwritten: `edit` adds a sibling of the edited user message, `regenerate`
a sibling of the assistant message (PROTOCOL.md section 6). `continue` takes an
existing reply up again and is planned by the runner with the store.
"""

from __future__ import annotations

from dataclasses import dataclass

from durachat.domain import Attachment, Conversation, Message, Role, Status, branch_path, new_id
from durachat.errors import BadRequest, NotFound, TooLarge
from durachat.providers.base import ModelInfo
from durachat.store.base import NewConversation


@dataclass(frozen=True, slots=True)
class StartChat:
    """A new user message and its reply (PROTOCOL.md `start_chat`)."""

    prompt: str
    conversation_id: str | None = None
    model: str | None = None
    client_message_id: str | None = None
    parent_id: str | None = None
    attachments: tuple[str, ...] = ()
    """Upload ids attached to the new user message."""


@dataclass(frozen=True, slots=True)
class Edit:
    """A new version of a user message (a sibling) and its reply."""

    conversation_id: str
    message_id: str
    prompt: str
    client_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Regenerate:
    """Another answer (a sibling) to the user message an assistant message answered."""

    conversation_id: str
    message_id: str
    model: str | None = None
    client_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Continue:
    """Finish an `interrupted` reply, appending to it."""

    conversation_id: str
    message_id: str
    client_message_id: str | None = None


Command = StartChat | Edit | Regenerate | Continue


@dataclass(frozen=True, slots=True)
class Plan:
    """The rows a new turn writes and the path its model is sent."""

    conversation_id: str
    user_message: Message
    """The user message the reply answers (new, or existing for a regenerate)."""
    new_user_message: bool
    assistant: Message
    path: list[Message]
    new_conversation: NewConversation | None = None


def title_from(prompt: str) -> str:
    """A provisional title: the prompt's first line, shortened."""
    lines = [line.strip() for line in prompt.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("!demo")] or ["New chat"]
    first = lines[0]
    return first if len(first) <= 60 else first[:59].rstrip() + "…"


def _find(history: list[Message], message_id: str, role: Role, command: str) -> Message:
    message = next((m for m in history if m.id == message_id), None)
    if message is None:
        raise NotFound(f"message {message_id!r} not found in this conversation")
    if message.role is not role:
        raise BadRequest(f"{command} needs {'a' if role is Role.USER else 'an'} {role} message")
    return message


def _reply(conversation_id: str, parent_id: str, info: ModelInfo) -> Message:
    return Message(
        new_id(),
        conversation_id,
        parent_id,
        Role.ASSISTANT,
        "",
        Status.STREAMING,
        0,
        model=info.id,
        provider=info.provider,
        epoch=1,
    )


def _user_turn(
    conversation_id: str,
    parent_id: str | None,
    prompt: str,
    history: list[Message],
    info: ModelInfo,
    client_message_id: str | None,
    attachments: tuple[Attachment, ...] = (),
) -> tuple[Message, Message, list[Message]]:
    user = Message(
        new_id(),
        conversation_id,
        parent_id,
        Role.USER,
        prompt,
        Status.COMPLETE,
        0,
        client_message_id=client_message_id,
        attachments=attachments,
    )
    path = [*branch_path(history, parent_id), user] if parent_id else [user]
    return user, _reply(conversation_id, user.id, info), path


def plan_start(
    command: StartChat,
    user_id: str,
    conversation: Conversation | None,
    history: list[Message],
    info: ModelInfo,
    attachments: tuple[Attachment, ...] = (),
) -> Plan:
    """A new user message (with `attachments`, resolved from the command's ids) and
    its reply."""
    if conversation is None:
        if command.parent_id is not None:
            raise BadRequest("parentId needs a conversationId")
        conversation_id, parent_id = new_id(), None
        new = NewConversation(
            conversation_id, user_id, title_from(command.prompt), info.id, info.provider
        )
    else:
        conversation_id, parent_id, new = conversation.id, conversation.current_leaf_id, None
        if command.parent_id is not None:
            if not any(m.id == command.parent_id for m in history):
                raise BadRequest(
                    f"parentId {command.parent_id!r} is not a message of this conversation"
                )
            parent_id = command.parent_id
    user, reply, path = _user_turn(
        conversation_id,
        parent_id,
        command.prompt,
        history,
        info,
        command.client_message_id,
        attachments,
    )
    return Plan(conversation_id, user, True, reply, path, new)


def plan_edit(
    command: Edit, conversation: Conversation, history: list[Message], info: ModelInfo
) -> Plan:
    edited = _find(history, command.message_id, Role.USER, "edit")
    user, reply, path = _user_turn(
        conversation.id,
        edited.parent_id,
        command.prompt,
        history,
        info,
        command.client_message_id,
        edited.attachments,  # a new version keeps the edited message's files
    )
    return Plan(conversation.id, user, True, reply, path)


def plan_regenerate(
    command: Regenerate, conversation: Conversation, history: list[Message], info: ModelInfo
) -> Plan:
    answered = _find(history, command.message_id, Role.ASSISTANT, "regenerate")
    if answered.parent_id is None:
        raise BadRequest("this message answers no user message and cannot be regenerated")
    path = branch_path(history, answered.parent_id)
    reply = _reply(conversation.id, answered.parent_id, info)
    return Plan(conversation.id, path[-1], False, reply, path)


CHARS_PER_TOKEN = 4
"""A rough, model-independent estimate; providers report the exact count when over."""


def check_context(path: list[Message], system_prompt: str, info: ModelInfo) -> None:
    """Refuse, before anything is stored, a conversation the model cannot read whole.

    Nothing is ever silently cut: the user is told the size and the limit.
    """
    limit = info.capabilities.context_tokens
    if limit is None:
        return
    chars = len(system_prompt) + sum(len(m.content) for m in path)
    estimate = chars // CHARS_PER_TOKEN
    if estimate > limit:
        raise TooLarge(
            f"this conversation is about {estimate:,} tokens, more than the {limit:,}-token "
            f"context window of {info.id}; start a new conversation or edit an earlier message"
        )
