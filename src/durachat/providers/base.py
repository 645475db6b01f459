"""The `Provider` protocol: the one narrow surface every model vendor plugs into.

A provider turns a `ChatRequest` (the branch path, the system prompt, and for
`continue` the partial reply to prefill) into an async stream of `ProviderEvent`s
and ends it with a `Finish`. Failures are raised as `errors.ProviderError` with a
message a user can act on, never with a key in it. Cancelling the consuming task
must close the vendor's HTTP stream at once (the async generator's `aclose`).
"""

from __future__ import annotations

import base64
import random
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol

from durachat.domain import Usage


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image attached to a prompt message, for vision models (already cleaned)."""

    media_type: str
    data: bytes = field(repr=False)
    width: int = 0
    height: int = 0

    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{self.base64()}"


@dataclass(frozen=True, slots=True)
class PromptMessage:
    role: str
    content: str
    images: tuple[ImagePart, ...] = ()
    """Images the user attached (only on `user` messages, only for vision models)."""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    """The upstream model name, without the `provider/` prefix."""
    messages: tuple[PromptMessage, ...]
    system_prompt: str = ""
    prefill: str | None = None
    """For `continue` by prefill: the partial reply, sent as a final assistant message."""
    purpose: str = "chat"
    """`chat`, or `title` when the server asks for a conversation's title."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str = "stop"
    usage: Usage | None = None


ProviderEvent = TextDelta | ReasoningDelta | Finish


@dataclass(frozen=True, slots=True)
class Capabilities:
    vision: bool = False
    prefill: bool = False
    system_prompt: bool = True
    context_tokens: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "vision": self.vision,
            "prefill": self.prefill,
            "systemPrompt": self.system_prompt,
            "contextTokens": self.context_tokens,
        }


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    """`provider/model`."""
    label: str
    provider: str
    capabilities: Capabilities = field(default_factory=Capabilities)

    @property
    def upstream(self) -> str:
        return self.id.partition("/")[2]

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "provider": self.provider,
            "capabilities": self.capabilities.to_wire(),
        }


@dataclass(frozen=True, slots=True)
class StreamPolicy:
    """Timeouts and retries of a provider's streams (see `providers/resilience.py`)."""

    connect_s: float = 10.0
    first_token_s: float = 120.0
    idle_s: float = 120.0
    retries: int = 3
    backoff_s: float = 0.5
    backoff_cap_s: float = 20.0

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        """The wait before retry number `attempt` (0-based)."""
        wait = min(self.backoff_cap_s, self.backoff_s * 2.0**attempt) * random.uniform(0.5, 1.5)
        if retry_after_s is not None:
            wait = max(wait, retry_after_s)
        return wait


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """How one configured provider is reached. The key never appears in a message."""

    name: str
    """The prefix of its model ids: `openai`, or a `[[providers]]` name."""
    base_url: str = ""
    api_key: str = field(default="", repr=False)
    policy: StreamPolicy = field(default_factory=lambda: StreamPolicy())


class Provider(Protocol):
    @property
    def name(self) -> str: ...

    async def models(self) -> list[ModelInfo]:
        """The chat models this provider offers (may ask the vendor; cached by the registry)."""
        ...

    def stream(self, request: ChatRequest) -> AsyncGenerator[ProviderEvent, None]:
        """Stream one reply. Raise `errors.ProviderError` on failure."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
