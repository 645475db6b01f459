"""The registry of configured providers and their models.

It answers "which provider serves `provider/model`" and "which model is the
default", and lists every model for `GET /api/models` and `durachat models`.
Vendor SDKs are imported only for providers that are configured (start fast).
Models listed in the `[[models]]` table override what discovery says about their
label and capabilities, and are offered even when discovery fails.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence

from durachat.errors import BadRequest, ConfigError
from durachat.providers.base import (
    Capabilities,
    ModelInfo,
    Provider,
    ProviderConfig,
    StreamPolicy,
)
from durachat.providers.demo import DemoProvider
from durachat.settings import ModelSpec, Settings

log = logging.getLogger(__name__)

# kind -> (module, class): imported only when such a provider is configured
_KINDS = {
    "openai": ("durachat.providers.openai", "OpenAIProvider"),
    "anthropic": ("durachat.providers.anthropic", "AnthropicProvider"),
    "gemini": ("durachat.providers.gemini", "GeminiProvider"),
    "ollama": ("durachat.providers.ollama", "OllamaProvider"),
}


class Registry:
    def __init__(
        self,
        providers: Sequence[Provider],
        default_model: str = "",
        specs: Sequence[ModelSpec] = (),
    ) -> None:
        self._providers = {p.name: p for p in providers}
        self._models: dict[str, tuple[Provider, ModelInfo]] = {}
        self._default = default_model
        self._specs = {spec.id: spec for spec in specs}

    async def refresh(self) -> None:
        """Ask every provider for its models; a provider that fails keeps its listed ones."""
        models: dict[str, tuple[Provider, ModelInfo]] = {}
        for provider in self._providers.values():
            try:
                found = await provider.models()
            except Exception as exc:  # a provider that is down must not stop the server
                log.warning("cannot list the models of %s: %s", provider.name, exc)
                found = []
            for info in found:
                models[info.id] = (provider, info)
        for spec in self._specs.values():
            provider_name = spec.id.partition("/")[0]
            owner = self._providers.get(provider_name)
            if owner is None:
                raise ConfigError(f"[[models]] {spec.id}: no provider named {provider_name!r}")
            known = models.get(spec.id)
            base = known[1] if known else ModelInfo(spec.id, spec.id, provider_name)
            models[spec.id] = (owner, _apply(spec, base))
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


def _apply(spec: ModelSpec, info: ModelInfo) -> ModelInfo:
    """The model as the `[[models]]` table describes it."""
    base = info.capabilities
    capabilities = Capabilities(
        vision=base.vision if spec.vision is None else spec.vision,
        prefill=base.prefill if spec.prefill is None else spec.prefill,
        system_prompt=base.system_prompt if spec.system_prompt is None else spec.system_prompt,
        context_tokens=spec.context_tokens or base.context_tokens,
    )
    return ModelInfo(info.id, spec.label or info.label, info.provider, capabilities)


def provider_configs(settings: Settings) -> list[tuple[str, ProviderConfig]]:
    """(kind, config) of every provider the settings configure, besides the demo."""
    policy = StreamPolicy(
        settings.provider_connect_s,
        settings.provider_first_token_s,
        settings.provider_idle_s,
        settings.provider_retries,
    )
    configs: list[tuple[str, ProviderConfig]] = []
    if settings.openai_api_key or settings.openai_base_url:
        configs.append(
            (
                "openai",
                ProviderConfig("openai", settings.openai_base_url, settings.openai_api_key, policy),
            )
        )
    if settings.anthropic_api_key:
        configs.append(
            (
                "anthropic",
                ProviderConfig(
                    "anthropic", settings.anthropic_base_url, settings.anthropic_api_key, policy
                ),
            )
        )
    if settings.gemini_api_key:
        configs.append(
            (
                "gemini",
                ProviderConfig("gemini", settings.gemini_base_url, settings.gemini_api_key, policy),
            )
        )
    if settings.ollama_base_url:
        configs.append(("ollama", ProviderConfig("ollama", settings.ollama_base_url, "", policy)))
    for spec in settings.providers:
        configs.append((spec.kind, ProviderConfig(spec.name, spec.base_url, spec.api_key, policy)))
    return configs


def _instantiate(kind: str, config: ProviderConfig) -> Provider:
    module_name, class_name = _KINDS[kind]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"the {kind} provider is not available in this build: {exc}") from None
    provider: Provider = getattr(module, class_name)(config)
    return provider


async def build_registry(settings: Settings) -> Registry:
    """The registry of every provider the settings configure (the demo one always)."""
    providers: list[Provider] = [DemoProvider(settings.demo_delay_ms)]
    providers += [_instantiate(kind, config) for kind, config in provider_configs(settings)]
    registry = Registry(providers, settings.default_model, settings.models)
    await registry.refresh()
    for name, model in (
        ("DURACHAT_DEFAULT_MODEL", settings.default_model),
        ("DURACHAT_TITLE_MODEL", settings.title_model),
    ):
        if model:
            try:
                registry.resolve(model)
            except BadRequest as exc:
                await registry.aclose()
                raise ConfigError(f"{name}: {exc.message}") from None
    return registry


__all__ = ["Registry", "build_registry", "provider_configs"]
