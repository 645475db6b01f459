"""A conversation's current branch as Markdown: the path from the first message to
the current leaf, one section per message. Other branches are left out (the JSON
export keeps them); the text is written as stored, Markdown as the model wrote it.
"""

from __future__ import annotations

from durachat.domain import Conversation, Message, Role

_HEADINGS = {Role.USER: "You", Role.ASSISTANT: "Assistant", Role.SYSTEM: "System"}


def current_branch(conversation: Conversation, messages: list[Message]) -> list[Message]:
    """The messages from the root to the current leaf (the newest leaf if unset)."""
    by_id = {m.id: m for m in messages}
    leaf = by_id.get(conversation.current_leaf_id or "")
    if leaf is None and messages:
        leaf = max(messages, key=lambda m: (m.created_at, m.id))
    path: list[Message] = []
    while leaf is not None and leaf not in path:
        path.append(leaf)
        leaf = by_id.get(leaf.parent_id) if leaf.parent_id else None
    return path[::-1]


def conversation_markdown(
    conversation: Conversation, messages: list[Message], exported_at: str
) -> str:
    branch = current_branch(conversation, messages)
    lines = [f"# {conversation.title or 'New chat'}", ""]
    lines.append(f"- Model: {conversation.model}")
    lines.append(f"- Created: {conversation.created_at}")
    lines.append(f"- Exported: {exported_at}")
    others = len(messages) - len(branch)
    if others:
        lines.append(f"- The current branch; {others} messages of other versions are not shown")
    if conversation.system_prompt:
        lines += ["", "## System prompt", "", conversation.system_prompt.strip()]
    for message in branch:
        heading = _HEADINGS[message.role]
        if message.role is Role.ASSISTANT and message.model:
            heading += f" ({message.model})"
        if message.status.value not in ("complete",) and message.role is Role.ASSISTANT:
            heading += f" [{message.status.value}]"
        lines += ["", f"## {heading}", "", message.content.strip()]
    return "\n".join(lines) + "\n"


__all__ = ["conversation_markdown", "current_branch"]
