"""`durachat user ...`: local accounts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from durachat.auth.passwords import check_rules, hash_password
from durachat.auth.usernames import check_username
from durachat.cli import common
from durachat.domain import User
from durachat.errors import BadRequest, NotFound
from durachat.store.base import Store

app = typer.Typer(help="Manage local accounts.", no_args_is_help=True)


def _checked_password(from_stdin: bool) -> str:
    password = _read_password(from_stdin)
    try:
        check_rules(password)
    except BadRequest as exc:
        common.fail(exc.message)
    return password


async def _named(store: Store, username: str) -> User:
    found = await store.find_user(username)
    if found is None:
        raise NotFound(f"no user named {username!r}")
    return found[0]


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
    try:
        username = check_username(username)
    except BadRequest as exc:
        common.fail(exc.message)
    password = _checked_password(password_stdin)
    config = common.settings()

    async def body(store: Store) -> None:
        await store.create_user(username, hash_password(password), is_admin=admin)

    common.run(common.with_store(config, body))
    typer.echo(f"created {'admin ' if admin else ''}user {username}")


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from one line of stdin.")
]


@app.command("set-password")
def set_password(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set a user's password (ends their sessions): for an admin locked out of the UI."""
    password = _checked_password(password_stdin)
    config = common.settings()

    async def body(store: Store) -> None:
        user = await _named(store, username)
        await store.set_password(user.id, hash_password(password))

    common.run(common.with_store(config, body))
    typer.echo(f"password of {username} set")


@app.command("disable")
def disable(
    username: str,
    enable: Annotated[bool, typer.Option("--enable", help="Enable the user again.")] = False,
) -> None:
    """Disable a user (ending their sessions), or enable them with --enable."""
    config = common.settings()

    async def body(store: Store) -> None:
        user = await _named(store, username)
        await store.set_disabled(user.id, not enable)

    common.run(common.with_store(config, body))
    typer.echo(f"{'enabled' if enable else 'disabled'} user {username}")


@app.command("list")
def list_users() -> None:
    """List the accounts: username, role, state."""
    config = common.settings()
    users = common.run(common.with_store(config, lambda store: store.list_users()))
    for user in users:
        role = "admin" if user.is_admin else "user"
        typer.echo(f"{user.username}\t{role}\t{'disabled' if user.disabled else 'enabled'}")
