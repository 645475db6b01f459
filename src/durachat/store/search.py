"""Full-text search queries: the dialect-specific part of `Store.search`.

The index itself (SQLite FTS5, PostgreSQL tsvector + GIN) is created and kept in sync
by migration 0004's triggers; this module only reads it. A user's query is reduced
to words (`terms`) and each word is quoted before it reaches FTS5 or `to_tsquery`,
so no input can be an FTS syntax error or change the query's meaning. Every query
filters by the user id in SQL, in the index and again on `messages`.

Snippets come with private-use marker characters around the matches (from FTS5's
`snippet()` on SQLite, cut here on PostgreSQL, whose `ts_headline` drops anything
that looks like an HTML tag) and are split here into `SnippetPart`s: text and a
flag, never HTML.

This module never writes and never decides limits (the API does).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Row, and_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from durachat.domain import Role
from durachat.store.base import SearchHit, SnippetPart
from durachat.store.tables import conversations

SEARCH_OBJECT_PREFIX = "search_"
"""Every table, index, trigger and function of the search index is named so."""

MAX_TERMS = 16
TITLE_HITS = 5
"""Conversations found by their title, listed before the messages."""

_START, _STOP = "\ue000", "\ue001"  # private use: not expected in chat text
_MARKERS = re.compile(f"([{_START}{_STOP}])")
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")

_SQLITE_MESSAGES = text(
    """
    SELECT m.id, m.conversation_id, m.role, m.created_at, c.title, top.snip
    FROM (
        SELECT rowid AS rid, snippet(search_messages, 0, :start, :stop, '…', 24) AS snip, rank
        FROM search_messages WHERE search_messages MATCH :match
        ORDER BY rank LIMIT :limit
    ) AS top
    JOIN search_message_keys AS k ON k.key = top.rid
    JOIN messages AS m ON m.id = k.message_id
    JOIN conversations AS c ON c.id = m.conversation_id
    WHERE m.user_id = :user_id AND c.user_id = :user_id
    ORDER BY top.rank
    """
)

_POSTGRES_MESSAGES = text(
    """
    SELECT m.id, m.conversation_id, m.role, m.created_at, c.title, m.content
    FROM (
        SELECT s.message_id, ts_rank_cd(s.document, q.query) AS score
        FROM search_messages AS s, to_tsquery('simple', :tsquery) AS q(query)
        WHERE s.document @@ q.query AND s.user_id = :user_id
        ORDER BY score DESC, s.message_id LIMIT :limit
    ) AS top
    JOIN messages AS m ON m.id = top.message_id
    JOIN conversations AS c ON c.id = m.conversation_id
    WHERE m.user_id = :user_id AND c.user_id = :user_id
    ORDER BY top.score DESC, m.id
    """
)
SNIPPET_CHARS = 200
"""Length of a snippet cut here (PostgreSQL; `ts_headline` would drop `<tags>`)."""


def terms(query: str) -> list[str]:
    """The words of a query (letters, digits and `_` in any script), at most 16."""
    return _WORD.findall(query)[:MAX_TERMS]


def fts5_match(user_id: str, words: list[str]) -> str:
    """An FTS5 query: the owner's id and every word, each a quoted string (the
    last also a prefix), so nothing the user typed is read as FTS5 syntax."""
    quoted = [_fts5_string(w) for w in words]
    quoted[-1] += "*"
    return f"owner : {_fts5_string(user_id)} AND body : ({' '.join(quoted)})"


def tsquery(words: list[str]) -> str:
    """A `to_tsquery` text: every word quoted and ANDed, the last also a prefix."""
    quoted = [f"'{w}'" for w in words]  # words are \\w+: no quote can occur
    quoted[-1] += ":*"
    return " & ".join(quoted)


async def search_messages(
    conn: AsyncConnection, user_id: str, words: list[str], limit: int
) -> list[SearchHit]:
    """The user's finished messages that match every word, best first."""
    if conn.dialect.name == "sqlite":
        match = fts5_match(user_id, words)
        params: dict[str, Any] = {"match": match, "start": _START, "stop": _STOP}
        params |= {"user_id": user_id, "limit": limit}
        rows = (await conn.execute(_SQLITE_MESSAGES, params)).all()
        return [_message_hit(row, row.snip or "") for row in rows]
    params = {"tsquery": tsquery(words), "user_id": user_id, "limit": limit}
    rows = (await conn.execute(_POSTGRES_MESSAGES, params)).all()
    return [_message_hit(row, cut_snippet(row.content, words)) for row in rows]


async def search_titles(conn: AsyncConnection, user_id: str, words: list[str]) -> list[SearchHit]:
    """Conversations whose title contains every word (case-insensitive substring),
    most recently active first: titles are short, the user's own rows are few."""
    c = conversations.c
    contains = [c.title.ilike(f"%{_like_escape(w)}%", escape="\\") for w in words]
    query = (
        select(c.id, c.title, c.updated_at)
        .where(c.user_id == user_id, and_(*contains))
        .order_by(c.updated_at.desc(), c.id.desc())
        .limit(TITLE_HITS)
    )
    rows = (await conn.execute(query)).all()
    return [
        SearchHit(row.id, row.title, None, None, _highlight(row.title, words), row.updated_at)
        for row in rows
    ]


def snippet_parts(marked: str) -> tuple[SnippetPart, ...]:
    """Split text with match markers into parts; whitespace runs become one space."""
    parts: list[SnippetPart] = []
    inside = False
    for piece in _MARKERS.split(_SPACE.sub(" ", marked.strip())):
        if piece in (_START, _STOP):
            inside = piece == _START
        elif piece:
            parts.append(SnippetPart(piece, inside))
    return tuple(parts)


def cut_snippet(content: str, words: list[str]) -> str:
    """About `SNIPPET_CHARS` of `content` around its first match, matches marked:
    whole words that equal a query word (the last one also as a prefix)."""
    plain = content.replace(_START, "").replace(_STOP, "")
    pattern = _word_pattern(words, prefix=True)
    first = pattern.search(plain)
    start = 0 if first is None else max(0, first.start() - SNIPPET_CHARS // 3)
    if start:
        space = plain.find(" ", start, first.start() if first else None)
        start = space + 1 if space >= 0 else start
    end = min(len(plain), start + SNIPPET_CHARS)
    if end < len(plain):
        space = plain.rfind(" ", start + SNIPPET_CHARS // 2, end)
        end = space if space >= 0 else end
    window = pattern.sub(lambda m: f"{_START}{m.group(0)}{_STOP}", plain[start:end])
    return ("…" if start else "") + window + ("…" if end < len(plain) else "")


def _word_pattern(words: list[str], prefix: bool) -> re.Pattern[str]:
    exact = [re.escape(w) for w in words]
    if prefix:
        exact[-1] += r"\w*"
    return re.compile(r"(?<!\w)(?:" + "|".join(exact) + r")(?!\w)", re.IGNORECASE)


def _message_hit(row: Row[Any], snippet: str) -> SearchHit:
    return SearchHit(
        conversation_id=row.conversation_id,
        title=row.title,
        message_id=row.id,
        role=Role(row.role),
        snippet=snippet_parts(snippet),
        created_at=row.created_at,
    )


def _highlight(title: str, words: list[str]) -> tuple[SnippetPart, ...]:
    """Titles match by substring: mark each occurrence of a word."""
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    marked = pattern.sub(lambda m: f"{_START}{m.group(0)}{_STOP}", title)
    return snippet_parts(marked)


def _fts5_string(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _like_escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


__all__ = [
    "MAX_TERMS",
    "SEARCH_OBJECT_PREFIX",
    "SNIPPET_CHARS",
    "TITLE_HITS",
    "cut_snippet",
    "fts5_match",
    "search_messages",
    "search_titles",
    "snippet_parts",
    "terms",
    "tsquery",
]
