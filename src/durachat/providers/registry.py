"""The registry of configured providers and their models.

It answers "which provider serves `provider/model`" and "which model is the
default", and lists every model for `GET /api/models` and `durachat models`.
Vendor SDKs are imported only for providers that are configured (start fast).
"""

from __future__ import annotations

from collections.abc import Sequence

from durachat.errors import BadRequest
from durachat.providers.base import ModelInfo, Provider
from durachat.providers.demo import DemoProvider
from durachat.settings import Settings


class Registry:
    def __init__(self, providers: Sequence[Provider], default_model: str = "") -> None:
        self._providers = {p.name: p for p in providers}
        self._models: dict[str, tuple[Provider, ModelInfo]] = {}
        self._default = default_model

    async def refresh(self) -> None:
        models: dict[str, tuple[Provider, ModelInfo]] = {}
        for provider in self._providers.values():
            for info in await provider.models():
                models[info.id] = (provider, info)
        self._models = models

    def models(self) -> list[ModelInfo]:
        return [info for _, info in self._models.values()]

    def resolve(self, model_id: str) -> tuple[Provider, ModelInfo]:
        found = self._models.get(model_id)
        if found is None:
            known = ", ".join(sorted(self._models)) or "none"
            raise BadRequest(f"unknown model {model_id!r}; configured models: {known}")
        return found

    @property
    def default_model(self) -> str:
        if self._default:
            return self._default
        non_demo = [m for m in self._models if not m.startswith("demo/")]
        return non_demo[0] if non_demo else "demo/echo"

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()


async def build_registry(settings: Settings) -> Registry:
    """The registry of every provider the settings configure (the demo one always)."""
    registry = Registry([DemoProvider(settings.demo_delay_ms)], settings.default_model)
    await registry.refresh()
    if settings.default_model:
        registry.resolve(settings.default_model)
    return registry
