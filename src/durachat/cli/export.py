"""`durachat export`: a user's conversations as one JSON archive or Markdown files.

JSON (the default) is DuraChat's archive with every branch (`POST /api/import`
reads it back); Markdown is one file per conversation with its current branch.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer

from durachat.cli import common
from durachat.domain import User
from durachat.errors import BadRequest, NotFound
from durachat.store.base import Store

_SLUG = re.compile(r"[^a-z0-9]+")


async def _user(store: Store, username: str | None) -> User:
    if username is not None:
        found = await store.find_user(username)
        if found is None:
            raise NotFound(f"no user named {username!r}")
        return found[0]
    users = await store.list_users()
    if len(users) != 1:
        raise BadRequest(f"there are {len(users)} users: name one with --user")
    return users[0]


def _markdown_name(title: str, created_at: str, conversation_id: str) -> str:
    slug = _SLUG.sub("-", title.lower()).strip("-")[:60] or "chat"
    return f"{created_at[:10]}-{slug}-{conversation_id[-8:]}.md"


async def _export(store: Store, username: str | None, format: str) -> list[tuple[str, bytes]]:
    """The files to write: names and contents (no file I/O in the event loop)."""
    # imported here: the archive code loads only for this command
    from durachat.archive.exporter import user_archive, user_conversations, with_messages
    from durachat.archive.markdown import conversation_markdown
    from durachat.domain import now_iso

    user = await _user(store, username)
    if format == "json":
        data = orjson.dumps(await user_archive(store, user.id), option=orjson.OPT_INDENT_2)
        return [(f"durachat-{user.username}.json", data)]
    files = []
    conversations = await user_conversations(store, user.id)
    for conversation, messages in await with_messages(store, user.id, conversations):
        name = _markdown_name(conversation.title, conversation.created_at, conversation.id)
        files.append((name, conversation_markdown(conversation, messages, now_iso()).encode()))
    return files


def export(
    user: Annotated[
        str | None, typer.Option("--user", help="Whose conversations (needed with several users).")
    ] = None,
    format: Annotated[
        Literal["json", "md"],
        typer.Option("--format", help="json: one archive, every branch; md: a file per chat."),
    ] = "json",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Directory to write to (json without it: stdout)."),
    ] = None,
) -> None:
    """Export conversations: JSON (every branch, re-importable) or Markdown."""
    config = common.settings()
    files = common.run(common.with_store(config, lambda store: _export(store, user, format)))
    if format == "json" and out is None:
        sys.stdout.buffer.write(files[0][1] + b"\n")
        return
    folder = out or Path(f"durachat-export-{user or 'local'}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files:
            (folder / name).write_bytes(data)
            typer.echo(str(folder / name))
    except OSError as exc:
        common.fail(f"cannot write the export: {exc}")
