"""The registry: `[[models]]` overrides, unknown providers, the default model."""

from __future__ import annotations

import pytest

from durachat.errors import BadRequest, ConfigError
from durachat.providers.demo import DemoProvider
from durachat.providers.registry import Registry, build_registry, provider_configs
from durachat.settings import ModelSpec, load_settings


async def test_a_listed_model_overrides_label_and_capabilities() -> None:
    spec = ModelSpec("demo/echo", label="Parrot", prefill=False, context_tokens=50)
    registry = Registry([DemoProvider(0)], specs=[spec])
    await registry.refresh()
    _, info = registry.resolve("demo/echo")
    assert info.label == "Parrot"
    assert (info.capabilities.prefill, info.capabilities.context_tokens) == (False, 50)


async def test_a_listed_model_of_an_unknown_provider_is_a_config_error() -> None:
    registry = Registry([DemoProvider(0)], specs=[ModelSpec("nowhere/x")])
    with pytest.raises(ConfigError, match="no provider named 'nowhere'"):
        await registry.refresh()


async def test_unknown_models_name_the_configured_ones() -> None:
    registry = Registry([DemoProvider(0)])
    await registry.refresh()
    with pytest.raises(BadRequest, match="configured models: demo/echo"):
        registry.resolve("openai/gpt-x")
    assert registry.default_model == "demo/echo"


async def test_a_default_model_that_does_not_exist_stops_the_start() -> None:
    with pytest.raises(ConfigError, match="DURACHAT_DEFAULT_MODEL"):
        await build_registry(load_settings({"DURACHAT_DEFAULT_MODEL": "demo/nope"}))


def test_only_configured_providers_are_built() -> None:
    assert provider_configs(load_settings({})) == []
    kinds = [
        kind
        for kind, _ in provider_configs(
            load_settings(
                {"OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "OLLAMA_BASE_URL": "http://x"}
            )
        )
    ]
    assert kinds == ["openai", "ollama"]
