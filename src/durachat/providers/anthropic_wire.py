"""The Anthropic Messages API's wire format: requests out, stream events in, models listed.

Pure code, no I/O: the request a `ChatRequest` becomes, how one streamed event
reads (a wrong shape is `MalformedEvent`), how a prefilled continuation is joined
to the stored partial reply, and what a listed model can do. It never sends
anything and never sees the API key.

Requests. The system prompt is the top-level `system` field; `system` messages of
the branch path are appended to it (the Messages API has no system role). The path
becomes alternating `user`/`assistant` messages: empty messages are left out (the
API refuses empty content), consecutive messages of one role are merged with a
blank line, and a path that would open with `assistant` gets a placeholder `user`
message first (the API wants a user message first). For `continue` by prefill the
partial reply is the final `assistant` message with its trailing whitespace
trimmed (the API refuses trailing whitespace there); `Rejoin` then drops the
whitespace the model writes again, so the text yielded continues the stored
partial exactly.

Prefill, per Anthropic's documentation: a final assistant message is a 400 on
Claude 4.6 models ("Prefill removal" in the 4.6 migration guide) and on every
later model (Opus 4.7/4.8/5, Sonnet 5, Fable, Mythos), and prefill cannot be
combined with extended thinking, which DuraChat never turns on. So a model can
prefill when its id names a Claude version below 4.6 (`claude-3-5-sonnet-...`,
`claude-sonnet-4-5`, `claude-haiku-4-5-...`, `claude-opus-4-1-...`); Fable and
Mythos models and ids we cannot read cannot. The `[[models]]` table overrides it.

Models. What the Models API says wins: `max_input_tokens` (context), `max_tokens`
(the cap of a reply's `max_tokens`), `capabilities.image_input` (vision). Without
it: vision for Claude 3 and later, a context of 200k tokens for Claude 3 to 4.5
and 1M from 4.6 on, unknown otherwise. Retired models are not offered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from anthropic.types import (
    AssistantMessageParam,
    ImageBlockParam,
    MessageParam,
    TextBlockParam,
    UserMessageParam,
)

from durachat.domain import Usage
from durachat.providers.base import Capabilities, ChatRequest, ImagePart, ModelInfo

ANTHROPIC_API_URL = "https://api.anthropic.com"

DEFAULT_MAX_TOKENS = 8192
"""A reply's `max_tokens` unless the model allows less. Anthropic counts `max_tokens`
against the output-tokens-per-minute limit up front, so it is not the model's max."""
CLAUDE_3_MAX_TOKENS = 4096
"""The output limit of the first Claude 3 models (Opus, Sonnet, Haiku)."""

PLACEHOLDER = "(empty message)"
"""The user message put before a path that would open with the assistant."""

_PREFILL_UNTIL = (4, 6)
_LONG_CONTEXT_FROM = (4, 6)
# claude-<line>-<major>[-<minor>][-<date>] or claude-<major>[-<minor>]-<line>[-<date>]
_NEW_STYLE = re.compile(
    r"^claude-(?:opus|sonnet|haiku|fable|mythos)-(\d+)(?:-(\d{1,2}))?(?:-\d{8})?(?:$|[-@:])"
)
_OLD_STYLE = re.compile(r"^claude-(\d+)(?:[-.](\d{1,2}))?-(?:opus|sonnet|haiku)(?:$|[-@:])")
_LEGACY = re.compile(r"^claude-(?:instant-)?(\d+)(?:\.(\d+))?(?:$|[-@:])")
_CLAUDE_3_FIRST = re.compile(r"^claude-3-(?:opus|sonnet|haiku)-")


def claude_version(model: str) -> tuple[int, int] | None:
    """(major, minor) of a Claude model id, or None for ids that do not say."""
    for pattern in (_NEW_STYLE, _OLD_STYLE, _LEGACY):
        found = pattern.match(model)
        if found:
            return int(found.group(1)), int(found.group(2) or 0)
    return None


def can_prefill(model: str) -> bool:
    """Whether Anthropic accepts a final assistant message for this model (see above)."""
    version = claude_version(model)
    return version is not None and version < _PREFILL_UNTIL


def fallback_max_tokens(model: str) -> int:
    """`max_tokens` for a model the Models API said nothing about."""
    return CLAUDE_3_MAX_TOKENS if _CLAUDE_3_FIRST.match(model) else DEFAULT_MAX_TOKENS


def _get(obj: object, name: str) -> Any:
    """A field of an SDK object or of a plain dict (the SDK keeps odd shapes as dicts)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class ListedModel:
    """A model of the Models API, with the reply limit the provider keeps for it."""

    info: ModelInfo
    max_tokens: int | None


def listed_model(provider: str, model: object) -> ListedModel | None:
    """A Models API entry as a `ModelInfo`; None for entries without an id or retired."""
    upstream = _get(model, "id")
    if not isinstance(upstream, str) or not upstream:
        return None
    if _get(model, "lifecycle") == "retired":
        return None
    version = claude_version(upstream)
    modern = version is not None and version >= (3, 0)
    vision = _get(_get(_get(model, "capabilities"), "image_input"), "supported")
    context = _count(_get(model, "max_input_tokens"))
    if context is None and modern:
        assert version is not None
        context = 1_000_000 if version >= _LONG_CONTEXT_FROM else 200_000
    capabilities = Capabilities(
        vision=vision if isinstance(vision, bool) else modern,
        prefill=can_prefill(upstream),
        context_tokens=context,
    )
    label = _get(model, "display_name")
    label = label if isinstance(label, str) and label else upstream
    info = ModelInfo(f"{provider}/{upstream}", label, provider, capabilities)
    return ListedModel(info, _count(_get(model, "max_tokens")))


@dataclass(frozen=True, slots=True)
class Prepared:
    """The body of one Messages API request, and the whitespace a prefill trimmed."""

    system: str
    messages: list[MessageParam]
    trimmed: str = ""


@dataclass(slots=True)
class _Turn:
    role: str
    text: str
    images: tuple[ImagePart, ...] = ()


def _turns(request: ChatRequest) -> tuple[list[str], list[_Turn]]:
    system: list[str] = [request.system_prompt] if request.system_prompt.strip() else []
    turns: list[_Turn] = []
    for message in request.messages:
        if not message.content.strip() and not message.images:
            continue
        if message.role == "system":
            system.append(message.content)
            continue
        role = "assistant" if message.role == "assistant" else "user"
        if turns and turns[-1].role == role:
            last = turns[-1]
            last.text = "\n\n".join(t for t in (last.text, message.content) if t.strip())
            last.images += message.images
        else:
            turns.append(_Turn(role, message.content, message.images))
    return system, turns


def _message(turn: _Turn) -> MessageParam:
    if turn.role == "assistant":
        return AssistantMessageParam(role="assistant", content=turn.text)
    if not turn.images:
        return UserMessageParam(role="user", content=turn.text)
    blocks: list[ImageBlockParam | TextBlockParam] = [
        ImageBlockParam(
            type="image",
            source={"type": "base64", "media_type": image.media_type, "data": image.base64()},  # type: ignore[typeddict-item]
        )
        for image in turn.images
    ]
    if turn.text.strip():
        blocks.append(TextBlockParam(type="text", text=turn.text))
    return UserMessageParam(role="user", content=blocks)


def prepare(request: ChatRequest) -> Prepared:
    """The request's `system` and `messages` (see the module docstring for the rules)."""
    system, turns = _turns(request)
    trimmed = ""
    if request.prefill:
        partial = request.prefill.rstrip()
        if partial:
            trimmed = request.prefill[len(partial) :]
            if turns and turns[-1].role == "assistant":
                turns[-1].text += "\n\n" + partial
            else:
                turns.append(_Turn("assistant", partial))
    if not turns or turns[0].role != "user":
        turns.insert(0, _Turn("user", PLACEHOLDER))
    messages = [_message(turn) for turn in turns]
    return Prepared("\n\n".join(system), messages, trimmed)


class Rejoin:
    """Joins a prefilled continuation to the stored partial reply.

    The partial was sent without its trailing whitespace, so the model usually
    writes that whitespace again; it is already stored, so it is dropped, as far as
    the model's text repeats it character for character. Anything else passes.
    """

    def __init__(self, trimmed: str) -> None:
        self._pending = trimmed

    def feed(self, text: str) -> str:
        if not self._pending:
            return text
        matched = 0
        while matched < len(text) and matched < len(self._pending):
            if text[matched] != self._pending[matched]:
                self._pending = ""
                return text[matched:]
            matched += 1
        self._pending = self._pending[matched:]
        rest = text[matched:]
        if rest:
            self._pending = ""
        return rest


class MalformedEvent(ValueError):
    """A streamed event that does not have the Messages API's shape."""


@dataclass(frozen=True, slots=True)
class EventParts:
    """What one stream event says; most events say nothing DuraChat needs."""

    text: str = ""
    reasoning: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    stop_reason: str | None = None
    stopped: bool = False
    """`message_stop`: the message is complete."""


_NOTHING = EventParts()


def _string(value: object, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedEvent(f"{what} is not a string")
    return value


def _tokens(usage: object, *names: str) -> int | None:
    """The sum of the token counts `names` of a usage object (None if none is there)."""
    counts = [_get(usage, name) for name in names]
    for value in counts:
        if value is not None and _count(value) is None:
            raise MalformedEvent("a token count is not a whole number")
    present = [value for value in counts if value is not None]
    return sum(present) if present else None


_INPUT = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _block(block: object) -> EventParts:
    kind = _get(block, "type")
    if kind == "text":
        return EventParts(text=_string(_get(block, "text"), "a text block"))
    if kind == "thinking":
        return EventParts(reasoning=_string(_get(block, "thinking"), "a thinking block"))
    return _NOTHING


def _delta(delta: object) -> EventParts:
    kind = _get(delta, "type")
    if kind == "text_delta":
        return EventParts(text=_string(_get(delta, "text"), "a text delta"))
    if kind == "thinking_delta":
        return EventParts(reasoning=_string(_get(delta, "thinking"), "a thinking delta"))
    if not isinstance(kind, str):
        raise MalformedEvent("a content block delta has no type")
    return _NOTHING  # signature, citations, tool input: nothing to show


def read_event(event: object) -> EventParts:
    """What one raw stream event says; `MalformedEvent` if it has the wrong shape.

    Event and delta types this module does not know are ignored, as Anthropic's
    versioning policy asks; `ping` never reaches here (the SDK skips it), and an
    `error` event is raised by the SDK as an `APIStatusError`.
    """
    kind = _get(event, "type")
    if not isinstance(kind, str):
        raise MalformedEvent("an event has no type")
    if kind == "content_block_delta":
        delta = _get(event, "delta")
        if delta is None:
            raise MalformedEvent("a content block delta has no delta")
        return _delta(delta)
    if kind == "content_block_start":
        return _block(_get(event, "content_block"))
    if kind == "message_start":
        message = _get(event, "message")
        if message is None:
            raise MalformedEvent("message_start has no message")
        return EventParts(input_tokens=_tokens(_get(message, "usage"), *_INPUT))
    if kind == "message_delta":
        usage = _get(event, "usage")
        reason = _get(_get(event, "delta"), "stop_reason")
        return EventParts(
            input_tokens=_tokens(usage, *_INPUT),
            output_tokens=_tokens(usage, "output_tokens"),
            stop_reason=_string(reason, "stop_reason") or None,
        )
    if kind == "message_stop":
        return EventParts(stopped=True)
    return _NOTHING


_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
}


def finish_reason(stop_reason: str | None) -> str:
    """DuraChat's finish reason for Anthropic's `stop_reason` (others pass as they are)."""
    if stop_reason is None:
        return "stop"
    return _REASONS.get(stop_reason, stop_reason)


@dataclass(slots=True)
class Tally:
    """The usage and stop reason of a stream, as its events report them."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    stop_reason: str | None = None

    def add(self, parts: EventParts) -> None:
        if parts.input_tokens is not None:
            self.input_tokens = parts.input_tokens
        if parts.output_tokens is not None:
            self.output_tokens = parts.output_tokens  # cumulative in message_delta
        if parts.stop_reason is not None:
            self.stop_reason = parts.stop_reason

    def usage(self) -> Usage | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return Usage(self.input_tokens, self.output_tokens)


__all__ = [
    "ANTHROPIC_API_URL",
    "DEFAULT_MAX_TOKENS",
    "PLACEHOLDER",
    "EventParts",
    "ListedModel",
    "MalformedEvent",
    "Prepared",
    "Rejoin",
    "Tally",
    "can_prefill",
    "claude_version",
    "fallback_max_tokens",
    "finish_reason",
    "listed_model",
    "prepare",
    "read_event",
]
