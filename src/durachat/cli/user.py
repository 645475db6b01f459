"""`durachat user ...`: local accounts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from durachat.auth.passwords import check_rules, hash_password
from durachat.cli import common
from durachat.errors import BadRequest
from durachat.store.base import Store

app = typer.Typer(help="Manage local accounts.", no_args_is_help=True)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@app.command("create")
def create(
    username: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an administrator.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from one line of stdin.")
    ] = False,
) -> None:
    """Create a local account."""
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        common.fail("a username is 1 to 64 characters without spaces")
    password = _read_password(password_stdin)
    try:
        check_rules(password)
    except BadRequest as exc:
        common.fail(exc.message)
    config = common.settings()

    async def body(store: Store) -> None:
        await store.create_user(username, hash_password(password), is_admin=admin)

    common.run(common.with_store(config, body))
    typer.echo(f"created {'admin ' if admin else ''}user {username}")
