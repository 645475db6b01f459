"""The OpenAI chat-completions wire format: requests out, chunks in, models listed.

Pure code, no I/O: the messages sent for a `ChatRequest` (system prompt, the
branch path, and for `continue` the partial reply as a final assistant message with
vLLM's switches), how one streamed `chat.completion.chunk` reads (text, reasoning,
finish reason, usage; a chunk of the wrong shape is `MalformedChunk`), and which
listed models are chat models and what they can do. It never sends anything and
never sees the API key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from openai import BaseModel
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionChunk,
    ChatCompletionContentPartImageParam,
    ChatCompletionContentPartParam,
    ChatCompletionContentPartTextParam,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.completion_usage import CompletionUsage

from durachat.domain import Usage
from durachat.providers import vendor_errors
from durachat.providers.base import Capabilities, ChatRequest, ModelInfo, PromptMessage

OPENAI_API_URL = "https://api.openai.com/v1"

PREFILL_SWITCHES: dict[str, object] = {
    "continue_final_message": True,
    "add_generation_prompt": False,
}
"""vLLM's switches for prefill; other OpenAI-compatible servers ignore unknown fields."""

# Not chat models, whoever serves them: embeddings, speech, images, rerankers.
_NOT_CHAT = re.compile(
    r"embed|whisper|tts|dall-e|moderation|rerank|transcri|speech|gpt-image|sora|realtime",
    re.IGNORECASE,
)
# OpenAI's own list also holds legacy completion models and Responses-API-only ones.
_OPENAI_CHAT = re.compile(r"^(ft:)?(gpt-|chatgpt-|o\d)")
_OPENAI_NOT_CHAT = re.compile(r"instruct|audio|codex|computer-use|deep-research|-pro(-|$)")
_OPENAI_VISION = re.compile(
    r"^(ft:)?(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o4-mini"
    r"|gpt-4-turbo(-\d{4}-\d\d-\d\d)?(:|$)|o1(-\d{4}-\d\d-\d\d)?(:|$)|o3(-\d{4}-\d\d-\d\d)?(:|$))"
)


def is_openai_api(base_url: str) -> bool:
    """Whether `base_url` is OpenAI's own API (the default when empty)."""
    if not base_url:
        return True
    host = (urlsplit(base_url).hostname or "").lower()
    return host == "openai.com" or host.endswith(".openai.com")


def display_url(base_url: str) -> str:
    """`base_url` (OpenAI's API when empty) without credentials, for messages."""
    return vendor_errors.display_url(base_url, OPENAI_API_URL)


def _message(message: PromptMessage) -> ChatCompletionMessageParam:
    if message.role == "assistant":
        return ChatCompletionAssistantMessageParam(role="assistant", content=message.content)
    if message.role == "system":
        return ChatCompletionSystemMessageParam(role="system", content=message.content)
    if message.images:
        return ChatCompletionUserMessageParam(role="user", content=_parts(message))
    return ChatCompletionUserMessageParam(role="user", content=message.content)


def _parts(message: PromptMessage) -> list[ChatCompletionContentPartParam]:
    """A user message with images: its text, then each image as a data URL."""
    parts: list[ChatCompletionContentPartParam] = []
    if message.content:
        parts.append(ChatCompletionContentPartTextParam(type="text", text=message.content))
    for image in message.images:
        parts.append(
            ChatCompletionContentPartImageParam(
                type="image_url", image_url={"url": image.data_url()}
            )
        )
    return parts


def build_messages(request: ChatRequest) -> list[ChatCompletionMessageParam]:
    """System prompt, then the branch path, then the prefilled partial reply if any."""
    messages: list[ChatCompletionMessageParam] = []
    if request.system_prompt:
        messages.append(_message(PromptMessage("system", request.system_prompt)))
    messages.extend(_message(m) for m in request.messages)
    if request.prefill:
        messages.append(_message(PromptMessage("assistant", request.prefill)))
    return messages


def extra_body(request: ChatRequest, openai_api: bool) -> dict[str, object] | None:
    """vLLM's prefill switches, for a prefilled request to a server that is not OpenAI's."""
    if request.prefill and not openai_api:
        return dict(PREFILL_SWITCHES)
    return None


class MalformedChunk(ValueError):
    """A streamed chunk that is not a `chat.completion.chunk`."""


@dataclass(frozen=True, slots=True)
class ChunkParts:
    """What one chunk says about the first choice, and the usage if it carries it."""

    text: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None


def _text(value: object, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedChunk(f"{what} is not a string")
    return value


def _count(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedChunk("a token count is not a whole number")
    return value


def _usage(value: object) -> Usage | None:
    if value is None:
        return None
    if not isinstance(value, CompletionUsage):
        raise MalformedChunk("usage is not an object")
    return Usage(_count(value.prompt_tokens), _count(value.completion_tokens))


def read_chunk(chunk: object) -> ChunkParts:
    """Text, reasoning and finish reason of choice 0, and usage; `MalformedChunk` if broken.

    Reasoning is `reasoning_content` (vLLM, DeepSeek, llama.cpp) or, failing that,
    `reasoning` (OpenRouter, Ollama, newer vLLM): one of them, never both, since some
    servers fill both with the same text. A refusal is shown as text.
    """
    if not isinstance(chunk, ChatCompletionChunk):
        raise MalformedChunk("not a JSON object")
    usage = _usage(getattr(chunk, "usage", None))
    choices = getattr(chunk, "choices", None)
    if choices is None and usage is not None:
        choices = []
    if not isinstance(choices, list):
        raise MalformedChunk("no list of choices")
    for choice in choices:
        if not isinstance(choice, BaseModel):
            raise MalformedChunk("a choice is not an object")
        if getattr(choice, "index", 0) not in (0, None):
            continue
        finish = getattr(choice, "finish_reason", None)
        if finish is not None and not isinstance(finish, str):
            raise MalformedChunk("finish_reason is not a string")
        delta = getattr(choice, "delta", None)
        if delta is None:
            return ChunkParts(finish_reason=finish, usage=usage)
        if not isinstance(delta, BaseModel):
            raise MalformedChunk("delta is not an object")
        text = _text(getattr(delta, "content", None), "content")
        text += _text(getattr(delta, "refusal", None), "refusal")
        reasoning = _text(getattr(delta, "reasoning_content", None), "reasoning_content")
        if not reasoning:
            reasoning = _text(getattr(delta, "reasoning", None), "reasoning")
        return ChunkParts(text, reasoning, finish, usage)
    return ChunkParts(usage=usage)


def is_chat_model(upstream: str, openai_api: bool) -> bool:
    """Whether a listed model id names a chat model (by its id: lists say no more)."""
    if _NOT_CHAT.search(upstream):
        return False
    if openai_api:
        return bool(_OPENAI_CHAT.match(upstream)) and not _OPENAI_NOT_CHAT.search(upstream)
    return True


def context_tokens(listed: object) -> int | None:
    """The context window a models-list entry states: vLLM's `max_model_len`,
    OpenRouter's `context_length`; None when it states none."""
    for name in ("max_model_len", "context_length"):
        value = getattr(listed, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def model_info(
    provider: str, upstream: str, openai_api: bool, context: int | None = None
) -> ModelInfo:
    """`provider/upstream` with the capabilities its id (and listing) imply.

    OpenAI's own API cannot prefill (it answers a trailing assistant message anew);
    an OpenAI-compatible server at a custom URL is assumed to (vLLM, llama.cpp,
    Ollama do). Vision is known only for OpenAI's models; the `[[models]]` table
    overrides all of these.
    """
    vision = openai_api and bool(_OPENAI_VISION.match(upstream))
    capabilities = Capabilities(vision=vision, prefill=not openai_api, context_tokens=context)
    return ModelInfo(f"{provider}/{upstream}", upstream, provider, capabilities)


__all__ = [
    "OPENAI_API_URL",
    "PREFILL_SWITCHES",
    "ChunkParts",
    "MalformedChunk",
    "build_messages",
    "context_tokens",
    "display_url",
    "extra_body",
    "is_chat_model",
    "is_openai_api",
    "model_info",
    "read_chunk",
]
