"""`durachat token ...`: API tokens for scripts and the terminal client."""

from __future__ import annotations

from typing import Annotated

import typer

from durachat.auth.tokens import new_token
from durachat.cli import common
from durachat.errors import NotFound
from durachat.store.base import Store

app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)


@app.command("create")
def create(
    username: str,
    name: Annotated[str, typer.Option("--name", help="A label for the token.")] = "cli",
) -> None:
    """Create an API token and print only the token on stdout."""
    config = common.settings()
    token, token_hash = new_token()

    async def body(store: Store) -> None:
        found = await store.find_user(username)
        if found is None:
            raise NotFound(f"no user named {username!r}")
        await store.create_api_token(found[0].id, name, token_hash)

    common.run(common.with_store(config, body))
    typer.echo(token)
