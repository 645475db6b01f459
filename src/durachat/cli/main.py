"""The `durachat` command: sub-commands by noun, no business logic here."""

from __future__ import annotations

import typer

from durachat.cli import backup, bench, chat, export, migrate, models, serve, token, user

app = typer.Typer(
    name="durachat",
    help="DuraChat: a self-hosted AI chat server whose replies are durable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.command("migrate")(migrate.migrate)
app.command("models")(models.models)
app.command("chat")(chat.chat)
app.command("bench")(bench.bench)
app.command("export")(export.export)
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)
app.add_typer(user.app, name="user")
app.add_typer(token.app, name="token")
