"""Logging set-up: readable text lines, or one JSON object per line.

A line carries the ids of what it is about as fields (`userId`,
`conversationId`, `messageId`): given with `extra={...}`, or bound for a whole
task with `bind()` (the runner binds a reply's ids in the reply's own task, so
every line logged while it generates carries them). In JSON every field passed
with `extra` becomes a key; the text format appends the ids as `key=value`.

What is logged must never contain message text, prompts, passwords, tokens or
provider keys: log ids, codes, counts and durations, never content. The lines
of libraries that log such data at debug level (SQL parameters, HTTP requests,
WebSocket frames) are dropped below their `QUIET_LOGGERS` level, whatever the
configured level.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

import orjson

ID_FIELDS = ("userId", "conversationId", "messageId")
"""The id fields a line may carry, in the order they are shown."""

QUIET_LOGGERS = {
    "aiosqlite": logging.WARNING,  # every statement with its parameters
    "asyncpg": logging.WARNING,
    "sqlalchemy": logging.WARNING,
    "httpx": logging.WARNING,  # request URLs (a key may sit in a query string)
    "httpx2": logging.WARNING,  # the fork some vendor SDKs use
    "httpcore": logging.WARNING,
    "httpcore2": logging.WARNING,
    "websockets": logging.WARNING,  # frame contents
    "uvicorn.error": logging.INFO,  # uvicorn's WebSocket debug lines dump frames
}
"""Loggers whose lower lines may carry data: the level below which they are dropped."""

_bound: ContextVar[dict[str, str] | None] = ContextVar("durachat_log_ids", default=None)

# attributes every LogRecord has, and uvicorn's colour copy of its message: not fields
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}


def bind(**ids: str) -> None:
    """Attach ids to every line logged from now on in this task (and tasks it starts)."""
    _bound.set({**(_bound.get() or {}), **ids})


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's fields: the ids bound to its task, then its `extra` values."""
    fields: dict[str, Any] = dict(_bound.get() or {})
    for key, value in vars(record).items():
        if key not in _STANDARD:
            fields[key] = value
    return fields


class _Quiet(logging.Filter):
    """Drops the data-carrying lines of `QUIET_LOGGERS` (a handler filter: uvicorn
    sets its own loggers' levels after ours)."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        for prefix, floor in QUIET_LOGGERS.items():
            if name == prefix or name.startswith(prefix + "."):
                return record.levelno >= floor
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class _TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        line = super().formatMessage(record)
        fields = _fields(record)
        ids = " ".join(f"{key}={fields[key]}" for key in ID_FIELDS if fields.get(key))
        return f"{line} [{ids}]" if ids else line


def configure(log_format: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if log_format == "json" else _TextFormatter())
    handler.addFilter(_Quiet())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
