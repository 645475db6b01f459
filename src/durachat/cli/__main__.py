"""`python -m durachat.cli`: the same as the `durachat` command."""

from durachat.cli.main import app

app()
