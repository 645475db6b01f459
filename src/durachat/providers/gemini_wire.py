"""Gemini's request and response shapes, as the `google-genai` SDK types them.

Pure translation, no I/O: the branch path becomes `contents` with the roles `user`
and `model` (system messages join the system instruction), a streamed
`GenerateContentResponse` becomes its text, its thoughts, its finish reason and its
usage, and the models list becomes `ModelInfo`s.

Prefill: the Gemini API answers a request whose last turn is the user's; one
ending with a model turn is refused (400, "Requests ending with a model turn are
not supported"). So no Gemini model is listed with the `prefill` capability, and
`continue` asks the model to go on instead. An operator who turns `prefill` on for
a model in `[[models]]` gets the partial reply sent as a final model turn, and the
server's answer if it refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.genai import types

from durachat.domain import Usage
from durachat.providers.base import Capabilities, ChatRequest, ModelInfo

_FINISH_REASONS = {
    types.FinishReason.STOP: "stop",
    types.FinishReason.MAX_TOKENS: "length",
    types.FinishReason.SAFETY: "content_filter",
    types.FinishReason.RECITATION: "content_filter",
    types.FinishReason.BLOCKLIST: "content_filter",
    types.FinishReason.PROHIBITED_CONTENT: "content_filter",
    types.FinishReason.SPII: "content_filter",
}

_NOT_CHAT = ("embedding", "-tts", "-image", "imagen", "veo", "aqa", "native-audio", "-live")
"""Parts of the names of models that support generateContent but do not chat in text."""


def build_contents(request: ChatRequest) -> tuple[list[types.Content], str]:
    """The conversation as Gemini `contents`, and the system instruction."""
    system = [request.system_prompt] if request.system_prompt else []
    contents: list[types.Content] = []
    for message in request.messages:
        if message.role == "system":
            system.append(message.content)
            continue
        role = "model" if message.role == "assistant" else "user"
        parts = [types.Part(text=message.content)] if message.content or not message.images else []
        parts.extend(
            types.Part(inline_data=types.Blob(mime_type=image.media_type, data=image.data))
            for image in message.images
        )
        contents.append(types.Content(role=role, parts=parts))
    if request.prefill:
        contents.append(types.Content(role="model", parts=[types.Part(text=request.prefill)]))
    return contents, "\n\n".join(system)


def generation_config(system_instruction: str, thinking: bool) -> types.GenerateContentConfig:
    """The request's config: the system instruction, thoughts when the model thinks.

    Automatic function calling is off (no tools are sent); the SDK's automatic
    continuation stays as Google ships it (it follows the server's checkpoints).
    """
    return types.GenerateContentConfig(
        system_instruction=system_instruction or None,
        thinking_config=types.ThinkingConfig(include_thoughts=True) if thinking else None,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )


@dataclass(frozen=True, slots=True)
class ChunkParts:
    """What one streamed response says about its first candidate."""

    text: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    blocked: str | None = None
    """Why the prompt was blocked (`promptFeedback.blockReason`), if it was."""


def finish_reason(reason: types.FinishReason | str) -> str:
    """DuraChat's finish reason (`stop`, `length`, `content_filter`, ...) for Gemini's."""
    known = _FINISH_REASONS.get(reason) if isinstance(reason, types.FinishReason) else None
    if known is not None:
        return known
    value = reason.value if isinstance(reason, types.FinishReason) else str(reason)
    return value.lower()


def read_usage(metadata: types.GenerateContentResponseUsageMetadata | None) -> Usage | None:
    """Prompt tokens in, candidate and thought tokens out (both are billed as output)."""
    if metadata is None:
        return None
    prompt = metadata.prompt_token_count
    output = metadata.candidates_token_count
    thoughts = metadata.thoughts_token_count
    if output is not None or thoughts is not None:
        output = (output or 0) + (thoughts or 0)
    if prompt is None and output is None:
        return None
    return Usage(input_tokens=prompt, output_tokens=output)


def read_chunk(response: types.GenerateContentResponse) -> ChunkParts:
    """The text, thoughts, finish reason and usage of one streamed response."""
    usage = read_usage(response.usage_metadata)
    feedback = response.prompt_feedback
    if not response.candidates:
        if feedback is not None and feedback.block_reason is not None:
            blocked = feedback.block_reason
            name = blocked.value if isinstance(blocked, types.BlockedReason) else str(blocked)
            return ChunkParts(usage=usage, blocked=name)
        return ChunkParts(usage=usage)
    candidate = response.candidates[0]
    text: list[str] = []
    reasoning: list[str] = []
    parts = candidate.content.parts if candidate.content is not None else None
    for part in parts or ():
        if part.text:
            (reasoning if part.thought else text).append(part.text)
    reason = candidate.finish_reason
    finish = finish_reason(reason) if reason is not None else None
    return ChunkParts("".join(text), "".join(reasoning), finish, usage)


def upstream_name(model_name: str) -> str:
    """`models/gemini-x` -> `gemini-x`."""
    return model_name.removeprefix("models/")


def is_chat_model(model: types.Model) -> bool:
    """A model that generates text content in a conversation."""
    if "generateContent" not in (model.supported_actions or ()):
        return False
    name = upstream_name(model.name or "")
    return bool(name) and not any(part in name for part in _NOT_CHAT)


def model_info(provider: str, model: types.Model) -> ModelInfo:
    name = upstream_name(model.name or "")
    capabilities = Capabilities(
        vision=name.startswith("gemini-"),
        prefill=False,
        context_tokens=model.input_token_limit or None,
    )
    return ModelInfo(f"{provider}/{name}", model.display_name or name, provider, capabilities)


__all__ = [
    "ChunkParts",
    "build_contents",
    "finish_reason",
    "generation_config",
    "is_chat_model",
    "model_info",
    "read_chunk",
    "read_usage",
    "upstream_name",
]
