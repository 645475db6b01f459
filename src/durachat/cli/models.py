"""`durachat models`: the configured models, one `provider/model` per line."""

from __future__ import annotations

import typer

from durachat.cli import common
from durachat.providers.registry import Registry, build_registry


async def _models() -> list[str]:
    registry: Registry = await build_registry(common.settings())
    try:
        return [m.id for m in registry.models()]
    finally:
        await registry.aclose()


def models() -> None:
    """List the configured models, one provider/model per line."""
    for model_id in common.run(_models()):
        typer.echo(model_id)
