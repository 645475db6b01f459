"""`SqlStore`: the `Store` protocol on SQLite and PostgreSQL through SQLAlchemy Core.

One class serves both dialects; `store/engine.py` decides how connections are made
(on SQLite every write goes through one writer connection, in turn, and reads use
their own connections). Every query that touches user data filters by the user id
in SQL, and a streaming reply's text is appended under an epoch fence, never
re-sent whole, at the place each write names (`substr(content, 1, :base) ||
:delta`), so a retried write never duplicates text. Rows become domain values in
`_user`, `_conversation` and `_message` and nowhere else.

This module never decides policy (limits, who may stream) and never reads settings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    Integer,
    Row,
    Table,
    Text,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Update

from durachat.domain import (
    Attachment,
    Conversation,
    ErrorInfo,
    Message,
    Role,
    Status,
    Upload,
    Usage,
    User,
    new_id,
    now_iso,
)
from durachat.errors import BadRequest, Conflict, NotFound
from durachat.store import accounts, branches, search, shares, uploads
from durachat.store.base import (
    ApiTokenInfo,
    ClientCommand,
    ConversationPage,
    ConversationPatch,
    FlushItem,
    ImportedConversation,
    NewConversation,
    NewTurn,
    SearchHit,
    Share,
    StoreStats,
    conversation_cursor,
)
from durachat.store.checkpoints import Checkpoints
from durachat.store.engine import (
    POSTGRES_POOL_SIZE,
    Engines,
    SqliteLimits,
    open_engines,
    translate_errors,
)
from durachat.store.migrate import upgrade
from durachat.store.tables import (
    api_tokens,
    client_commands,
    conversations,
    messages,
    sessions,
    users,
)
from durachat.store.tables import shares as shares_table
from durachat.store.write_batches import WriteBatches

T = TypeVar("T")
_Work = Callable[[AsyncConnection], Awaitable[T]]  # the body of one write transaction

_MIGRATION_LOCK = 0x44555241  # "DURA": serialises concurrent `migrate()` on PostgreSQL
_DUPLICATE_MESSAGE = "this message was already sent (duplicate client message id)"

_m = messages.c

# No attempt of this item has landed: the stored seq is still the one it follows, and
# the item moves it (had an attempt landed, the stored seq would be the item's).
_UNWRITTEN = and_(
    _m.seq == bindparam("p_base_seq", type_=Integer),
    bindparam("p_seq", type_=Integer) != bindparam("p_base_seq", type_=Integer),
)


def _at(column: Any, base: str, delta: str) -> Any:
    """`substr(column, 1, :base) || :delta`: the stored text up to where this write
    starts, then its text. Idempotent, unlike `column || :delta`: a retry of a
    flush that did commit writes the same text again, not a second copy. SQLite and
    PostgreSQL both count characters (code points) for TEXT, as Python's `len` does.

    When `_UNWRITTEN` holds, the stored text ends at `base` already and a plain
    append gives the same: counting characters costs PostgreSQL about as much as
    the append itself on long replies, so only retries (and items that do not move
    the seq, like reasoning alone) pay for it.
    """
    one = literal_column("1", Integer)  # a literal, not a bind: see `_execute_many`
    kept = func.substr(column, one, bindparam(base, type_=Integer), type_=Text)
    return case((_UNWRITTEN, column), else_=kept) + bindparam(delta, type_=Text)


_APPEND_VALUES: dict[str, Any] = {
    "content": _at(_m.content, "p_base", "p_delta"),
    "seq": bindparam("p_seq"),
    "reasoning": _at(_m.reasoning, "p_reasoning_base", "p_reasoning_delta"),
    # A write that carries no reasoning says 0: reasoning_seq never moves back.
    "reasoning_seq": case(
        (
            bindparam("p_reasoning_seq", type_=Integer) > _m.reasoning_seq,
            bindparam("p_reasoning_seq", type_=Integer),
        ),
        else_=_m.reasoning_seq,
    ),
    "updated_at": bindparam("p_now"),
}
_FENCE = and_(_m.id == bindparam("p_id"), _m.epoch == bindparam("p_epoch"))
_APPEND = update(messages).where(_FENCE).values(_APPEND_VALUES)
_APPEND_FINAL = (
    update(messages)
    .where(_FENCE)
    .values(
        {
            **_APPEND_VALUES,
            "status": bindparam("p_status"),
            "input_tokens": bindparam("p_input_tokens"),
            "output_tokens": bindparam("p_output_tokens"),
            "error_code": bindparam("p_error_code"),
            "error_message": bindparam("p_error_message"),
        }
    )
)
_RELEASE = (
    update(conversations)
    .where(
        conversations.c.id
        == select(_m.conversation_id).where(_m.id == bindparam("p_id")).scalar_subquery(),
        conversations.c.active_message_id == bindparam("p_id"),
    )
    .values(active_message_id=None, updated_at=bindparam("p_now"))
)
# The statements of the hot paths, built once (building one costs more than running it).
_c = conversations.c
_INSERT_CONVERSATION = insert(conversations)
_INSERT_MESSAGE = insert(messages)
_INSERT_COMMAND = insert(client_commands)
_OWNED = select(conversations).where(_c.id == bindparam("p_id"), _c.user_id == bindparam("p_user"))
_CLAIM = (
    update(conversations)
    .where(
        _c.id == bindparam("p_id"),
        _c.user_id == bindparam("p_user"),
        _c.active_message_id.is_(None),
    )
    .values(
        active_message_id=bindparam("p_reply"),
        current_leaf_id=bindparam("p_reply"),
        updated_at=bindparam("p_now"),
    )
    .returning(*conversations.c)
)
_RETITLE = (
    update(conversations)
    .where(
        _c.id == bindparam("p_id"),
        _c.user_id == bindparam("p_user"),
        _c.title == bindparam("p_old"),
    )
    .values(title=bindparam("p_new"))
    .returning(*conversations.c)
)
_MESSAGE = select(messages).where(_m.id == bindparam("p_id"), _m.user_id == bindparam("p_user"))


class SqlStore:
    """The durable state of DuraChat in one SQL database (see `store/base.py`)."""

    def __init__(self, engines: Engines) -> None:
        self.stats = StoreStats()
        self._engines = engines
        # SQLite's one writer runs inline and batches writes; PostgreSQL writes concurrently
        self._batches: WriteBatches | None = None
        self._checkpoints: Checkpoints | None = None
        if engines.dialect == "sqlite":
            self._checkpoints = Checkpoints(engines.reader)
            self._batches = WriteBatches(engines.writer, self._began, self._checkpoints.written)
        self._writes: set[asyncio.Task[Any]] = set()

    @property
    def dialect(self) -> str:
        return self._engines.dialect

    # plumbing

    async def _write(self, work: _Work[T], conflict: str | None = None) -> T:
        """Run `work` in one write transaction; constraint violations become `Conflict`.

        The transaction runs in a task of its own that the caller's cancellation does
        not reach: a write once started commits or fails whole, and never leaves the
        (single, on SQLite) writer connection stuck in the middle of a transaction.
        """
        conflict = conflict or "the change conflicts with stored data"
        if self._batches is not None:
            return await self._batches.run(work, conflict)
        task = asyncio.ensure_future(self._transact(work, conflict))
        self._writes.add(task)
        task.add_done_callback(self._write_done)
        return await asyncio.shield(task)

    async def _transact(self, work: _Work[T], conflict: str) -> T:
        with translate_errors(conflict):
            async with self._engines.writer.begin() as conn:
                self.stats.write_transactions += 1
                return await work(conn)

    def _began(self) -> None:
        self.stats.write_transactions += 1

    def _write_done(self, task: asyncio.Task[Any]) -> None:
        self._writes.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: the caller may have gone away

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads that may take long (on a thread, on SQLite)."""
        with translate_errors():
            async with self._engines.reader.connect() as conn:
                yield conn

    @asynccontextmanager
    async def _quick(self) -> AsyncIterator[AsyncConnection]:
        """A connection for short reads by key (inline, on SQLite)."""
        with translate_errors():
            async with self._engines.quick.connect() as conn:
                yield conn

    # lifecycle

    async def migrate(self) -> None:
        await self._write(_migrate)

    async def close(self) -> None:
        """Let writes in flight finish, then close every connection."""
        await asyncio.gather(*self._writes, return_exceptions=True)
        if self._batches is not None:
            await self._batches.idle()
        if self._checkpoints is not None:
            await self._checkpoints.close()
        await self._engines.dispose()

    async def ping(self) -> None:
        async with self._read() as conn:
            await conn.execute(select(1))

    # users and tokens

    async def create_user(self, username: str, password_hash: str, is_admin: bool) -> User:
        user = User(id=new_id(), username=username, is_admin=is_admin)
        row = {
            "id": user.id,
            "username": username,
            "password_hash": password_hash,
            "is_admin": is_admin,
            "disabled": False,
            "created_at": user.created_at,
        }
        await self._write(_inserter(users, row), f"the username {username!r} is taken")
        return user

    async def get_user(self, user_id: str) -> User | None:
        async with self._quick() as conn:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
        return _user(row) if row is not None else None

    async def find_user(self, username: str) -> tuple[User, str] | None:
        async with self._quick() as conn:
            query = select(users).where(users.c.username == username)
            row = (await conn.execute(query)).first()
        return (_user(row), row.password_hash) if row is not None else None

    async def create_api_token(self, user_id: str, name: str, token_hash: str) -> str:
        token_id = new_id()
        row = {"id": token_id, "user_id": user_id, "name": name, "token_hash": token_hash}
        row["created_at"] = now_iso()
        await self._write(lambda conn: _insert_token(conn, row), "this token is already stored")
        return token_id

    async def user_for_token(self, token_hash: str) -> User | None:
        query = (
            select(users)
            .join(api_tokens, api_tokens.c.user_id == users.c.id)
            .where(api_tokens.c.token_hash == token_hash, users.c.disabled.is_(False))
        )
        async with self._quick() as conn:
            row = (await conn.execute(query)).first()
        return _user(row) if row is not None else None

    async def list_api_tokens(self, user_id: str) -> list[ApiTokenInfo]:
        async with self._read() as conn:
            rows = await accounts.list_tokens(conn, user_id)
        return [ApiTokenInfo(r.id, r.name, r.created_at) for r in rows]

    async def revoke_api_token(self, user_id: str, token_id: str) -> str:
        return await self._write(lambda conn: accounts.revoke_token(conn, user_id, token_id))

    async def list_users(self) -> list[User]:
        async with self._read() as conn:
            rows = (await conn.execute(select(users).order_by(users.c.username))).all()
        return [_user(row) for row in rows]

    async def set_password(self, user_id: str, password_hash: str) -> None:
        await self._write(lambda conn: accounts.set_password(conn, user_id, password_hash))

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        await self._write(lambda conn: accounts.set_disabled(conn, user_id, disabled))

    async def delete_user(self, user_id: str) -> None:
        await self._write(lambda conn: accounts.delete_user(conn, user_id))

    # sessions

    async def create_session(self, user_id: str, id_hash: str, expires_at: str) -> None:
        row = {
            "id_hash": id_hash,
            "user_id": user_id,
            "created_at": now_iso(),
            "expires_at": expires_at,
            "revoked": False,
        }
        await self._write(_inserter(sessions, row))

    async def user_for_session(self, id_hash: str) -> User | None:
        async with self._quick() as conn:
            row = await accounts.user_for_session(conn, id_hash, now_iso())
        return _user(row) if row is not None and not row.disabled else None

    async def revoke_session(self, id_hash: str) -> None:
        await self._write(lambda conn: accounts.revoke_session(conn, id_hash))

    async def delete_old_sessions(self) -> int:
        return await self._write(lambda conn: accounts.delete_old_sessions(conn, now_iso()))

    # conversations and messages

    async def create_turn(self, turn: NewTurn) -> Conversation:
        _check_turn(turn)
        return await self._write(lambda conn: _create_turn(conn, turn), _DUPLICATE_MESSAGE)

    async def find_command(self, user_id: str, client_message_id: str) -> ClientCommand | None:
        k = client_commands.c
        query = select(client_commands).where(
            k.user_id == user_id, k.client_message_id == client_message_id
        )
        async with self._quick() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return ClientCommand(
            row.conversation_id, row.message_id, row.user_message_id, row.created_conversation
        )

    async def continue_reply(
        self, user_id: str, message_id: str, client_message_id: str | None
    ) -> tuple[Conversation, Message]:
        async def work(conn: AsyncConnection) -> tuple[Conversation, Message]:
            return await _continue_reply(conn, user_id, message_id, client_message_id)

        return await self._write(work, _DUPLICATE_MESSAGE)

    async def get_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        async with self._quick() as conn:
            return await _owned_conversation(conn, user_id, conversation_id)

    async def list_conversations(
        self, user_id: str, *, limit: int, cursor: str | None = None, archived: bool = False
    ) -> ConversationPage:
        if limit < 1:
            raise BadRequest("limit must be at least 1")
        c = conversations.c
        query = (
            select(conversations)
            .where(c.user_id == user_id, c.archived == archived)
            .order_by(c.updated_at.desc(), c.id.desc())
            .limit(limit + 1)
        )
        if cursor:
            updated_at, after_id = _parse_cursor(cursor)
            after = and_(c.updated_at == updated_at, c.id < after_id)
            query = query.where(or_(c.updated_at < updated_at, after))
        async with self._quick() as conn:
            rows = (await conn.execute(query)).all()
        page = [_conversation(row) for row in rows[:limit]]
        more = len(rows) > limit
        return ConversationPage(page, conversation_cursor(page[-1]) if more else None)

    async def update_conversation(
        self, user_id: str, conversation_id: str, patch: ConversationPatch
    ) -> Conversation:
        return await self._write(
            lambda conn: _update_conversation(conn, user_id, conversation_id, patch)
        )

    async def retitle(
        self, user_id: str, conversation_id: str, expected: str, title: str
    ) -> Conversation | None:
        params = {"p_id": conversation_id, "p_user": user_id, "p_old": expected, "p_new": title}

        async def work(conn: AsyncConnection) -> Row[Any] | None:
            return (await conn.execute(_RETITLE, params)).first()

        row = await self._write(work)
        return _conversation(row) if row is not None else None

    async def delete_conversation(self, user_id: str, conversation_id: str) -> None:
        await self._write(lambda conn: _delete_conversation(conn, user_id, conversation_id))

    async def import_conversation(
        self, user_id: str, imported: ImportedConversation
    ) -> Conversation | None:
        _check_import(imported)
        return await self._write(
            lambda conn: _import_conversation(conn, user_id, imported),
            "this conversation is being imported already",
        )

    async def create_share(self, share: Share) -> None:
        await self._write(lambda conn: shares.create(conn, share))

    async def list_shares(self, user_id: str) -> list[Share]:
        async with self._read() as conn:
            return await shares.list_for(conn, user_id)

    async def delete_share(self, user_id: str, share_id: str) -> None:
        await self._write(lambda conn: shares.revoke(conn, user_id, share_id))

    async def share_by_token(self, token: str) -> Share | None:
        async with self._quick() as conn:
            return await shares.by_token(conn, token)

    async def create_upload(self, upload: Upload) -> None:
        await self._write(lambda conn: uploads.create(conn, upload))

    async def get_uploads(self, user_id: str, upload_ids: Sequence[str]) -> list[Upload]:
        async with self._quick() as conn:
            return await uploads.owned(conn, user_id, upload_ids)

    async def delete_message(self, user_id: str, message_id: str) -> Conversation:
        return await self._write(lambda conn: _delete_message(conn, user_id, message_id))

    async def list_messages(self, user_id: str, conversation_id: str) -> list[Message]:
        query = (
            select(messages)
            .where(_m.conversation_id == conversation_id, _m.user_id == user_id)
            .order_by(_m.created_at, _m.id)
        )
        async with self._quick() as conn:
            await _owned_conversation(conn, user_id, conversation_id)
            rows = (await conn.execute(query)).all()
        return [_message(row) for row in rows]

    async def get_message(self, user_id: str, message_id: str) -> Message:
        async with self._quick() as conn:
            row = (await conn.execute(_MESSAGE, {"p_id": message_id, "p_user": user_id})).first()
        if row is None:
            raise NotFound("message not found")
        return _message(row)

    async def apply_flush(self, items: Sequence[FlushItem]) -> set[str]:
        if not items:
            return set()
        started = time.perf_counter()
        stale = await self._write(lambda conn: _flush(conn, items, now_iso()))
        self.stats.flush_transactions += 1
        self.stats.flushed_items += len(items)
        self.stats.flush_seconds_total += time.perf_counter() - started
        return stale

    async def search(self, user_id: str, query: str, *, limit: int) -> list[SearchHit]:
        if limit < 1:
            raise BadRequest("limit must be at least 1")
        words = search.terms(query)
        if not words:
            return []
        async with self._read() as conn:
            titles = await search.search_titles(conn, user_id, words)
            found = await search.search_messages(conn, user_id, words, limit)
        return (titles + found)[:limit]

    async def recover_streaming(self) -> list[Message]:
        rows = await self._write(_recover)
        return sorted((_message(row) for row in rows), key=lambda m: (m.created_at, m.id))

    async def streaming_replies(self) -> list[tuple[str, int]]:
        query = select(_m.id, _m.epoch).where(_m.status == Status.STREAMING.value)
        async with self._read() as conn:
            return [(row.id, row.epoch) for row in await conn.execute(query)]

    async def interrupt_replies(
        self, replies: Sequence[tuple[str, int]]
    ) -> list[tuple[Message, Conversation]]:
        if not replies:
            return []
        rows = await self._write(lambda conn: _interrupt(conn, replies))
        return [(_message(message), _conversation(conversation)) for message, conversation in rows]


async def open_store(
    url: str, sqlite: SqliteLimits | None = None, pool_size: int = POSTGRES_POOL_SIZE
) -> SqlStore:
    """A store on `url` (`sqlite:///path`, `postgresql://...`, or their async forms).

    Creates the SQLite file's directory; does not migrate (call `migrate()`).
    """
    return SqlStore(open_engines(url, sqlite, pool_size))


# transactions and the queries inside them


async def _migrate(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":  # several nodes may start at once
        await conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
    await conn.run_sync(upgrade)


def _inserter(table: Table, row: dict[str, Any]) -> _Work[None]:
    async def work(conn: AsyncConnection) -> None:
        await conn.execute(insert(table).values(row))

    return work


async def _insert_token(conn: AsyncConnection, row: dict[str, str]) -> None:
    if await conn.scalar(select(users.c.id).where(users.c.id == row["user_id"])) is None:
        raise NotFound("user not found")
    await conn.execute(insert(api_tokens).values(row))


async def _create_turn(conn: AsyncConnection, turn: NewTurn) -> Conversation:
    now = now_iso()
    reply_id = turn.assistant_message.id
    if turn.conversation is None:
        conversation = await _claim_conversation(conn, turn, now)
    else:
        new = _new_conversation(turn.conversation, reply_id, now)
        await conn.execute(_INSERT_CONVERSATION, new)
        conversation = Conversation(**new)
    turn_messages = (turn.user_message, turn.assistant_message)
    rows = [_message_values(m, turn.user_id) for m in turn_messages if m is not None]
    for row in rows:  # one by one: an executemany goes to a thread (inline_sqlite.py)
        await conn.execute(_INSERT_MESSAGE, row)
    if turn.client_message_id is not None:
        user_message_id = turn.user_message.id if turn.user_message else None
        command = ClientCommand(
            turn.conversation_id, reply_id, user_message_id, turn.conversation is not None
        )
        await _record_command(conn, turn.user_id, turn.client_message_id, command, now)
    return conversation


async def _record_command(
    conn: AsyncConnection, user_id: str, client_message_id: str, command: ClientCommand, now: str
) -> None:
    row = {
        "conversation_id": command.conversation_id,
        "message_id": command.message_id,
        "user_message_id": command.user_message_id,
        "created_conversation": command.created_conversation,
        "user_id": user_id,
        "client_message_id": client_message_id,
        "created_at": now,
    }
    await conn.execute(_INSERT_COMMAND, row)


async def _continue_reply(
    conn: AsyncConnection, user_id: str, message_id: str, client_message_id: str | None
) -> tuple[Conversation, Message]:
    query = select(messages).where(_m.id == message_id, _m.user_id == user_id)
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound("message not found")
    message = _message(row)
    if message.role is not Role.ASSISTANT or message.status is not Status.INTERRUPTED:
        raise Conflict(
            f"only an interrupted reply can be continued; this message is {message.status.value}"
        )
    now = now_iso()
    c = conversations.c
    claimed = await conn.execute(
        update(conversations)
        .where(c.id == message.conversation_id, c.active_message_id.is_(None))
        .values(active_message_id=message.id, current_leaf_id=message.id, updated_at=now)
    )
    if claimed.rowcount == 0:
        raise Conflict("a reply is already streaming in this conversation")
    resumed = (
        update(messages)
        .where(_m.id == message.id, _m.status == Status.INTERRUPTED.value)
        .values(
            status=Status.STREAMING.value,
            epoch=_m.epoch + 1,
            error_code=None,
            error_message=None,
            updated_at=now,
        )
        .returning(*messages.c)
    )
    message = _message((await conn.execute(resumed)).one())
    if client_message_id is not None:
        command = ClientCommand(message.conversation_id, message.id, message.parent_id, False)
        await _record_command(conn, user_id, client_message_id, command, now)
    conversation = await _owned_conversation(conn, user_id, message.conversation_id)
    return conversation, message


async def _update_conversation(
    conn: AsyncConnection, user_id: str, conversation_id: str, patch: ConversationPatch
) -> Conversation:
    await _owned_conversation(conn, user_id, conversation_id)
    if patch.current_leaf_id is not None:
        await _require_leaf(conn, conversation_id, patch.current_leaf_id)
    values = {  # the patch's fields are named after the columns they set
        f.name: getattr(patch, f.name)
        for f in dataclasses.fields(patch)
        if getattr(patch, f.name) is not None
    }
    if not values:
        return await _owned_conversation(conn, user_id, conversation_id)
    c = conversations.c
    await conn.execute(
        update(conversations).where(c.id == conversation_id, c.user_id == user_id).values(values)
    )
    return await _owned_conversation(conn, user_id, conversation_id)


async def _delete_conversation(conn: AsyncConnection, user_id: str, conversation_id: str) -> None:
    """Messages first, then the conversation: no reliance on the FK cascade being on."""
    owned = and_(conversations.c.id == conversation_id, conversations.c.user_id == user_id)
    owned_ids = select(conversations.c.id).where(owned)
    await conn.execute(delete(shares_table).where(shares_table.c.conversation_id.in_(owned_ids)))
    await conn.execute(delete(messages).where(_m.conversation_id.in_(owned_ids)))
    result = await conn.execute(delete(conversations).where(owned))
    if result.rowcount == 0:
        raise NotFound("conversation not found")


async def _import_conversation(
    conn: AsyncConnection, user_id: str, imported: ImportedConversation
) -> Conversation | None:
    c = conversations.c
    same = c.source_id == imported.source_id
    if imported.original_id is not None:
        same = or_(same, c.id == imported.original_id)
    if await conn.scalar(select(c.id).where(c.user_id == user_id, same).limit(1)) is not None:
        return None
    row = {
        "id": imported.id,
        "user_id": user_id,
        "title": imported.title,
        "model": imported.model,
        "provider": imported.provider,
        "system_prompt": imported.system_prompt,
        "pinned": imported.pinned,
        "archived": imported.archived,
        "current_leaf_id": imported.current_leaf_id,
        "active_message_id": None,
        "created_at": imported.created_at,
        "updated_at": imported.updated_at,
        "source_id": imported.source_id,
    }
    await conn.execute(insert(conversations).values(row))
    if imported.messages:
        rows = [_message_values(m, user_id) for m in imported.messages]
        await conn.execute(insert(messages), rows)
    return await _owned_conversation(conn, user_id, imported.id)


async def _delete_message(conn: AsyncConnection, user_id: str, message_id: str) -> Conversation:
    """Delete a message's subtree and move the current leaf off it, in one transaction.

    The conversation row is locked first (PostgreSQL), so no turn can claim it
    between the streaming check and the delete."""
    query = select(_m.conversation_id).where(_m.id == message_id, _m.user_id == user_id)
    conversation_id = await conn.scalar(query)
    if conversation_id is None:
        raise NotFound("message not found")
    c = conversations.c
    locked = (
        select(conversations).where(c.id == conversation_id, c.user_id == user_id).with_for_update()
    )
    conversation = _conversation((await conn.execute(locked)).one())
    rows = (
        await conn.execute(
            select(_m.id, _m.parent_id, _m.created_at, _m.status).where(
                _m.conversation_id == conversation_id, _m.user_id == user_id
            )
        )
    ).all()
    nodes = [branches.Node(r.id, r.parent_id, r.created_at) for r in rows]
    gone, leaf = branches.leaf_after_delete(nodes, message_id, conversation.current_leaf_id)
    streaming = {r.id for r in rows if r.status == Status.STREAMING.value}
    if gone & (streaming | {conversation.active_message_id}):
        raise Conflict("a reply in this branch is streaming; stop it before deleting")
    ids = list(gone)
    k = client_commands.c
    await conn.execute(
        delete(client_commands).where(
            k.user_id == user_id,
            or_(k.message_id.in_(ids), k.user_message_id.in_(ids)),
        )
    )
    await conn.execute(delete(messages).where(_m.id.in_(ids), _m.user_id == user_id))
    await conn.execute(
        update(conversations).where(c.id == conversation_id).values(current_leaf_id=leaf)
    )
    return await _owned_conversation(conn, user_id, conversation_id)


async def _flush(conn: AsyncConnection, items: Sequence[FlushItem], now: str) -> set[str]:
    stale = await _append(conn, items, now)
    ended = [i.message_id for i in items if i.final and i.message_id not in stale]
    if ended:
        await conn.execute(_RELEASE, [{"p_id": mid, "p_now": now} for mid in ended])
    return stale


async def _recover(conn: AsyncConnection) -> Sequence[Row[Any]]:
    """Streaming replies become interrupted (text kept) and their epoch moves on, so
    whoever wrote them before can write them no more."""
    interrupt = (
        update(messages)
        .where(_m.status == Status.STREAMING.value)
        .values(status=Status.INTERRUPTED.value, epoch=_m.epoch + 1, updated_at=now_iso())
        .returning(*messages.c)
    )
    release = (
        update(conversations)
        .where(conversations.c.active_message_id.is_not(None))
        .values(active_message_id=None)
    )
    rows = (await conn.execute(interrupt)).all()
    await conn.execute(release)
    return rows


async def _interrupt(
    conn: AsyncConnection, replies: Sequence[tuple[str, int]]
) -> list[tuple[Row[Any], Row[Any]]]:
    """`_recover` for chosen replies, each fenced on its epoch: a reply that ended
    or was taken up again since it was read is left alone."""
    marked: list[tuple[Row[Any], Row[Any]]] = []
    now = now_iso()
    for message_id, epoch in replies:
        interrupt = (
            update(messages)
            .where(
                _m.id == message_id,
                _m.epoch == epoch,
                _m.status == Status.STREAMING.value,
            )
            .values(status=Status.INTERRUPTED.value, epoch=_m.epoch + 1, updated_at=now)
            .returning(*messages.c)
        )
        row = (await conn.execute(interrupt)).one_or_none()
        if row is None:
            continue
        release = (
            update(conversations)
            .where(conversations.c.id == row.conversation_id)
            .values(
                active_message_id=case(
                    (conversations.c.active_message_id == message_id, None),
                    else_=conversations.c.active_message_id,
                )
            )
            .returning(*conversations.c)
        )
        marked.append((row, (await conn.execute(release)).one()))
    return marked


async def _owned_conversation(
    conn: AsyncConnection, user_id: str, conversation_id: str
) -> Conversation:
    row = (await conn.execute(_OWNED, {"p_id": conversation_id, "p_user": user_id})).first()
    if row is None:
        raise NotFound("conversation not found")
    return _conversation(row)


async def _require_leaf(conn: AsyncConnection, conversation_id: str, message_id: str) -> None:
    query = select(_m.id).where(_m.id == message_id, _m.conversation_id == conversation_id)
    if await conn.scalar(query) is None:
        raise BadRequest("current_leaf_id is not a message of this conversation")


async def _claim_conversation(conn: AsyncConnection, turn: NewTurn, now: str) -> Conversation:
    """Make the turn's reply the conversation's active one, unless one already is;
    the conversation as it is now."""
    reply_id = turn.assistant_message.id
    params = {"p_id": turn.conversation_id, "p_user": turn.user_id, "p_reply": reply_id}
    row = (await conn.execute(_CLAIM, params | {"p_now": now})).first()
    if row is None:
        await _owned_conversation(conn, turn.user_id, turn.conversation_id)
        raise Conflict("a reply is already streaming in this conversation")
    return _conversation(row)


async def _append(conn: AsyncConnection, items: Sequence[FlushItem], now: str) -> set[str]:
    """Write every item's text at its base (one executemany per kind); return the
    fenced-out ids."""
    streaming = [_flush_params(i, now) for i in items if i.final is None]
    final = [_flush_params(i, now) for i in items if i.final is not None]
    matched = 0
    if streaming:
        matched += await _execute_many(conn, _APPEND, streaming)
    if final:
        matched += await _execute_many(conn, _APPEND_FINAL, final)
    if matched == len(items) and conn.dialect.supports_sane_multi_rowcount:
        return set()
    return await _stale_ids(conn, items)


async def _execute_many(
    conn: AsyncConnection, statement: Update, rows: list[dict[str, Any]]
) -> int:
    """`conn.execute(statement, rows)`; the rows it matched.

    On SQLite (qmark, no type processing for these columns) the statement's SQL,
    compiled once, goes to the driver with positional rows: SQLAlchemy's
    per-row parameter processing cost more than SQLite's update of the row."""
    if conn.dialect.name != "sqlite":
        return (await conn.execute(statement, rows)).rowcount
    sql, names = _positional(statement, conn.dialect)
    params = [tuple(row[name] for name in names) for row in rows]
    return (await conn.exec_driver_sql(sql, params)).rowcount


@functools.cache
def _positional(statement: Update, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    compiled = statement.compile(dialect=dialect)
    assert compiled.positiontup is not None, "a positional dialect"
    return compiled.string, tuple(compiled.positiontup)


async def _stale_ids(conn: AsyncConnection, items: Iterable[FlushItem]) -> set[str]:
    """Ids whose stored epoch differs from the item's (or that no longer exist).

    Exact even after the writes above: epochs only grow, and a row this transaction
    updated stays locked until commit.
    """
    wanted = {i.message_id: i.epoch for i in items}
    query = select(_m.id, _m.epoch).where(_m.id.in_(list(wanted)))
    stored = {row.id: row.epoch for row in await conn.execute(query)}
    return {mid for mid, epoch in wanted.items() if stored.get(mid) != epoch}


# parameters and rows


def _check_turn(turn: NewTurn) -> None:
    new = turn.conversation
    if new is not None and (new.id != turn.conversation_id or new.user_id != turn.user_id):
        raise ValueError("NewTurn.conversation does not match the turn's ids")
    for message in (turn.user_message, turn.assistant_message):
        if message is not None and message.conversation_id != turn.conversation_id:
            raise ValueError(f"message {message.id} belongs to another conversation")


def _check_import(imported: ImportedConversation) -> None:
    ids = {m.id for m in imported.messages}
    for message in imported.messages:
        if message.conversation_id != imported.id or message.status is Status.STREAMING:
            raise ValueError(f"imported message {message.id} is streaming or misplaced")
        if message.parent_id is not None and message.parent_id not in ids:
            raise ValueError(f"imported message {message.id} has no parent in the import")
    if imported.current_leaf_id is not None and imported.current_leaf_id not in ids:
        raise ValueError("the imported current leaf is not one of its messages")


def _new_conversation(new: NewConversation, reply_id: str, now: str) -> dict[str, Any]:
    return {
        **dataclasses.asdict(new),
        "pinned": False,
        "archived": False,
        "current_leaf_id": reply_id,
        "active_message_id": reply_id,
        "created_at": now,
        "updated_at": now,
    }


def _storable(text: str) -> str:
    """NUL as U+FFFD: PostgreSQL's TEXT cannot hold NUL, and SQLite's `substr` ends
    a string at one. One character for one, so every base stays true."""
    return text.replace("\x00", "\ufffd")


def _flush_params(item: FlushItem, now: str) -> dict[str, Any]:
    params: dict[str, Any] = {
        "p_id": item.message_id,
        "p_epoch": item.epoch,
        "p_base": item.base,
        "p_base_seq": item.base_seq,
        "p_delta": _storable(item.delta),
        "p_seq": item.seq,
        "p_reasoning_base": item.reasoning_base,
        "p_reasoning_delta": _storable(item.reasoning_delta),
        "p_reasoning_seq": item.reasoning_seq,
        "p_now": now,
    }
    if item.final is not None:
        usage, error = item.final.usage, item.final.error
        params["p_status"] = item.final.status.value
        params["p_input_tokens"] = usage.input_tokens if usage else None
        params["p_output_tokens"] = usage.output_tokens if usage else None
        params["p_error_code"] = error.code if error else None
        params["p_error_message"] = error.message if error else None
    return params


def _message_values(message: Message, user_id: str) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "user_id": user_id,
        "parent_id": message.parent_id,
        "role": message.role.value,
        "content": message.content,
        "reasoning": message.reasoning,
        "reasoning_seq": message.reasoning_seq,
        "status": message.status.value,
        "seq": message.seq,
        "epoch": message.epoch,
        "model": message.model,
        "provider": message.provider,
        "error_code": message.error.code if message.error else None,
        "error_message": message.error.message if message.error else None,
        "input_tokens": message.usage.input_tokens if message.usage else None,
        "output_tokens": message.usage.output_tokens if message.usage else None,
        "client_message_id": message.client_message_id,
        "created_at": message.created_at,
        "updated_at": message.updated_at,
        "attachments": _attachments_json(message.attachments),
    }


def _attachments_json(attachments: tuple[Attachment, ...]) -> str | None:
    if not attachments:
        return None
    text: str = orjson.dumps([a.to_wire() for a in attachments]).decode()
    return text


def _attachments(raw: str | None) -> tuple[Attachment, ...]:
    if not raw:
        return ()
    return tuple(
        Attachment(
            a["id"], a["name"], a["kind"], a["mediaType"], a["size"], a["width"], a["height"]
        )
        for a in orjson.loads(raw)
    )


def _parse_cursor(cursor: str) -> tuple[str, str]:
    updated_at, sep, conversation_id = cursor.partition("|")
    if not sep or not updated_at or not conversation_id:
        raise BadRequest("invalid cursor")
    return updated_at, conversation_id


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        username=row.username,
        is_admin=bool(row.is_admin),
        disabled=bool(row.disabled),
        created_at=row.created_at,
    )


def _conversation(row: Row[Any]) -> Conversation:
    return Conversation(
        id=row.id,
        user_id=row.user_id,
        title=row.title,
        model=row.model,
        provider=row.provider,
        system_prompt=row.system_prompt,
        pinned=bool(row.pinned),
        archived=bool(row.archived),
        current_leaf_id=row.current_leaf_id,
        active_message_id=row.active_message_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


_MESSAGE_COLUMNS = (
    "id",
    "conversation_id",
    "user_id",
    "parent_id",
    "role",
    "content",
    "reasoning",
    "reasoning_seq",
    "status",
    "seq",
    "epoch",
    "model",
    "provider",
    "error_code",
    "error_message",
    "input_tokens",
    "output_tokens",
    "client_message_id",
    "created_at",
    "updated_at",
    "attachments",
)
assert tuple(c.name for c in messages.c) == _MESSAGE_COLUMNS, "_message unpacks in this order"
_ROLES = {role.value: role for role in Role}
_STATUSES = {status.value: status for status in Status}


def _message(row: Sequence[Any]) -> Message:
    """A whole `messages` row as a Message: by position, as a catch-up of 1,000
    messages makes 1,000 of these (by name it cost twice as much)."""
    (
        id_,
        conversation_id,
        _user_id,
        parent_id,
        role,
        content,
        reasoning,
        reasoning_seq,
        status,
        seq,
        epoch,
        model,
        provider,
        error_code,
        error_message,
        input_tokens,
        output_tokens,
        client_message_id,
        created_at,
        updated_at,
        attachments,
    ) = row
    has_usage = input_tokens is not None or output_tokens is not None
    return Message(
        id_,
        conversation_id,
        parent_id,
        _ROLES[role],
        content,
        _STATUSES[status],
        seq,
        model,
        provider,
        ErrorInfo(error_code, error_message or "") if error_code else None,
        Usage(input_tokens, output_tokens) if has_usage else None,
        reasoning,
        reasoning_seq,
        epoch,
        client_message_id,
        created_at,
        updated_at,
        _attachments(attachments),
    )


__all__ = ["SqlStore", "open_store"]
