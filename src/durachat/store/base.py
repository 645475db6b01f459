"""The `Store` protocol: everything DuraChat keeps durably, and nothing else.

One implementation (`store/sql.py`) serves SQLite and PostgreSQL through SQLAlchemy
Core; the contract suite in `tests/contract/test_store.py` holds both to this
protocol. Rules every implementation keeps:

- every method that reads or changes user data takes the user id and filters by it
  in SQL; another user's id answers `NotFound` (DESIGN.md invariant 7);
- a streaming reply's writes (`apply_flush`) append text, never re-send the whole
  reply, and are fenced on the reply's epoch (DESIGN.md invariant 1);
- they are idempotent: each item says where its text starts (`FlushItem.base`), so
  a retry of a flush that did commit (its acknowledgement lost) duplicates nothing;
- content and seq move together, and a final write commits content, seq, status,
  usage and the end of the stream in one transaction (invariant 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from durachat.domain import Conversation, ErrorInfo, Message, Role, Status, Upload, Usage, User


@dataclass(frozen=True, slots=True)
class FinalState:
    """How a reply ended: written with its last text in one transaction."""

    status: Status
    usage: Usage | None = None
    error: ErrorInfo | None = None


@dataclass(slots=True)
class FlushItem:
    """One reply's pending write: text to put at a stated place, and the seq it
    brings the reply to.

    `base` is the length (in characters) of the stored content that `delta` follows,
    `reasoning_base` the same for `reasoning_delta`: the write keeps that many
    characters and puts the delta after them. So writing an item again, or a retry
    that carries an older item's base and its delta followed by newer text, gives the
    same stored text whether or not an earlier attempt committed.

    `base_seq`, when known, is the stored seq the item follows (the seq the reply's
    previous write set). A store that finds it there, with `seq` different, knows
    no attempt of this item has landed and may simply append; None never appends
    blindly.
    """

    message_id: str
    epoch: int
    delta: str = ""
    seq: int = 0
    reasoning_delta: str = ""
    reasoning_seq: int = 0
    final: FinalState | None = None
    base: int = field(kw_only=True)
    reasoning_base: int = field(kw_only=True)
    base_seq: int | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class NewConversation:
    """A conversation created together with its first turn."""

    id: str
    user_id: str
    title: str
    model: str
    provider: str
    system_prompt: str = ""


@dataclass(frozen=True, slots=True)
class NewTurn:
    """What starting a reply writes in one transaction.

    `conversation` is set when the turn creates its conversation. `user_message` is
    None for a regenerate. The assistant message is inserted with status
    `streaming`; the conversation's `current_leaf_id` moves to it and its
    `active_message_id` is set, refused with `Conflict` if another reply streams.
    """

    user_id: str
    conversation_id: str
    assistant_message: Message
    user_message: Message | None = None
    conversation: NewConversation | None = None
    client_message_id: str | None = None
    """Recorded with the turn; a second turn with the same key is a `Conflict`."""


@dataclass(frozen=True, slots=True)
class ImportedConversation:
    """A conversation read from an export file, inserted whole in one transaction.

    Ids are new (`id`, and each message's); `source_id` says where it came from
    (`durachat:<id>`, `chatgpt:<id>`): a user holds at most one conversation per
    source, so importing the same file twice adds nothing. `original_id` is the id
    in our own export: a user who still has that conversation already has it.
    No message may be `streaming` (the reader makes such ones `interrupted`).
    """

    id: str
    source_id: str
    title: str
    model: str
    provider: str
    messages: tuple[Message, ...]
    current_leaf_id: str | None
    created_at: str
    updated_at: str
    system_prompt: str = ""
    pinned: bool = False
    archived: bool = False
    original_id: str | None = None


@dataclass(frozen=True, slots=True)
class Share:
    """A share link: a snapshot of one branch, readable by whoever has the token
    (any signed-in user of this server, or anyone when `public`)."""

    id: str
    user_id: str
    conversation_id: str
    token: str
    public: bool
    title: str
    messages: tuple[dict[str, Any], ...]
    """The branch as it was shared: `role`, `content`, `model`, `createdAt` each."""
    created_at: str


@dataclass(frozen=True, slots=True)
class ClientCommand:
    """What an earlier generating command with a `clientMessageId` did."""

    conversation_id: str
    message_id: str
    user_message_id: str | None
    created_conversation: bool


@dataclass(frozen=True, slots=True)
class ConversationPatch:
    """A partial update of a conversation; None leaves a field as it is."""

    title: str | None = None
    pinned: bool | None = None
    archived: bool | None = None
    model: str | None = None
    provider: str | None = None
    system_prompt: str | None = None
    current_leaf_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConversationPage:
    conversations: list[Conversation]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class SnippetPart:
    """A piece of a search result's snippet: plain text, marked when it matched.

    Never HTML: a client shows `text` as text and marks the parts that matched."""

    text: str
    match: bool


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result: a message that matched, or a conversation whose title did."""

    conversation_id: str
    title: str
    message_id: str | None
    """None when the conversation's title matched rather than a message."""
    role: Role | None
    snippet: tuple[SnippetPart, ...]
    created_at: str


@dataclass(frozen=True, slots=True)
class ApiTokenInfo:
    """An API token as its owner sees it listed: never the token itself."""

    id: str
    name: str
    created_at: str


@dataclass(slots=True)
class StoreStats:
    """Counters read by `/metrics` and by the tests that measure the write path."""

    write_transactions: int = 0
    flush_transactions: int = 0
    flushed_items: int = 0
    flush_seconds_total: float = 0.0
    extra: dict[str, int] = field(default_factory=dict)


class Store(Protocol):
    """Durable state of DuraChat. See the module docstring for the rules."""

    stats: StoreStats

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        ...

    async def migrate(self) -> None:
        """Create or upgrade the schema (Alembic); safe to call on every start."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the database does not answer."""
        ...

    # users and tokens
    async def create_user(self, username: str, password_hash: str, is_admin: bool) -> User:
        """Raise `Conflict` if the username is taken."""
        ...

    async def get_user(self, user_id: str) -> User | None: ...

    async def find_user(self, username: str) -> tuple[User, str] | None:
        """The user and their password hash, by username."""
        ...

    async def create_api_token(self, user_id: str, name: str, token_hash: str) -> str:
        """Store a token's hash; return the token record's id."""
        ...

    async def user_for_token(self, token_hash: str) -> User | None:
        """The enabled user owning the token with this hash, or None."""
        ...

    async def list_api_tokens(self, user_id: str) -> list[ApiTokenInfo]:
        """The user's tokens, oldest first."""
        ...

    async def revoke_api_token(self, user_id: str, token_id: str) -> str:
        """Delete the user's token and return its hash; `NotFound` if it is not theirs."""
        ...

    async def list_users(self) -> list[User]:
        """Every account, by username (administration)."""
        ...

    async def set_password(self, user_id: str, password_hash: str) -> None:
        """Store a new hash and end the user's sessions; `NotFound` for no such user."""
        ...

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        """Disable (ending the user's sessions) or enable; `Conflict` for the last admin."""
        ...

    async def delete_user(self, user_id: str) -> None:
        """Delete the user and all they own; `Conflict` for the last admin."""
        ...

    # sessions
    async def create_session(self, user_id: str, id_hash: str, expires_at: str) -> None:
        """Record a login session by the hash of its secret."""
        ...

    async def user_for_session(self, id_hash: str) -> User | None:
        """The enabled user of an unexpired, unrevoked session, or None."""
        ...

    async def revoke_session(self, id_hash: str) -> None: ...

    async def delete_old_sessions(self) -> int:
        """Delete expired and revoked session records; return how many."""
        ...

    # conversations and messages
    async def create_turn(self, turn: NewTurn) -> Conversation:
        """Insert the turn's rows in one transaction; return the conversation after it."""
        ...

    async def find_command(self, user_id: str, client_message_id: str) -> ClientCommand | None:
        """The turn an earlier command with this key started, if any."""
        ...

    async def continue_reply(
        self, user_id: str, message_id: str, client_message_id: str | None
    ) -> tuple[Conversation, Message]:
        """Take an `interrupted` reply up again, in one transaction.

        The message goes back to `streaming` with its epoch incremented (its text and
        seq kept), becomes the conversation's active reply and current leaf, and the
        command's key is recorded. `NotFound` for another user's message; `Conflict`
        if the message is not an interrupted assistant reply or another reply streams.
        """
        ...

    async def get_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        """Raise `NotFound` unless the conversation exists and belongs to the user."""
        ...

    async def list_conversations(
        self, user_id: str, *, limit: int, cursor: str | None = None, archived: bool = False
    ) -> ConversationPage:
        """Newest activity first (`updated_at`, then id), keyset-paginated by `cursor`."""
        ...

    async def update_conversation(
        self, user_id: str, conversation_id: str, patch: ConversationPatch
    ) -> Conversation:
        """Apply the patch; `current_leaf_id` must be a message of the conversation.

        `updated_at` is left alone: the list is ordered by message activity, and a
        rename, a pin or a generated title does not move a conversation up.
        """
        ...

    async def retitle(
        self, user_id: str, conversation_id: str, expected: str, title: str
    ) -> Conversation | None:
        """Set the title if it still is `expected` (a generated title never replaces
        a rename made meanwhile); the conversation, or None if it was not changed
        (renamed, deleted, another user's). `updated_at` is left alone."""
        ...

    async def delete_conversation(self, user_id: str, conversation_id: str) -> None:
        """Delete the conversation and all its messages."""
        ...

    async def import_conversation(
        self, user_id: str, imported: ImportedConversation
    ) -> Conversation | None:
        """Insert the conversation and its messages; None (nothing written) when the
        user already has it (same `source_id`, or owns `original_id`)."""
        ...

    async def create_share(self, share: Share) -> None:
        """Store a share; `NotFound` unless its conversation is the user's."""
        ...

    async def list_shares(self, user_id: str) -> list[Share]:
        """The user's shares, newest first."""
        ...

    async def delete_share(self, user_id: str, share_id: str) -> None:
        """Revoke (delete) the user's share; `NotFound` if it is not theirs."""
        ...

    async def share_by_token(self, token: str) -> Share | None:
        """The share with this token, whoever owns it (the token is the capability)."""
        ...

    async def create_upload(self, upload: Upload) -> None:
        """Record an uploaded file's metadata (its bytes are already on disk)."""
        ...

    async def get_uploads(self, user_id: str, upload_ids: Sequence[str]) -> list[Upload]:
        """The user's uploads with these ids, in that order; `NotFound` if one is
        missing or another user's."""
        ...

    async def delete_message(self, user_id: str, message_id: str) -> Conversation:
        """Delete the message and every message below it; return the conversation.

        When the current leaf was among them it moves to the newest leaf under the
        nearest remaining sibling (the older first), else to the parent, else to
        None. `NotFound` for another user's message; `Conflict` while a reply in
        the subtree streams.
        """
        ...

    async def list_messages(self, user_id: str, conversation_id: str) -> list[Message]:
        """Every message of every branch, oldest first (`created_at`, then id)."""
        ...

    async def get_message(self, user_id: str, message_id: str) -> Message: ...

    async def apply_flush(self, items: Sequence[FlushItem]) -> set[str]:
        """Write pending text of many replies in one transaction (group commit).

        Each item writes `content` as its first `base` characters followed by
        `delta` and sets `seq` (and the same for reasoning) where `id` and `epoch`
        match, so an item written twice leaves the same text; one with `final` also sets
        status, usage and error and clears the conversation's `active_message_id`.
        Returns the ids whose epoch no longer matched (their writes were skipped).
        """
        ...

    async def search(self, user_id: str, query: str, *, limit: int) -> list[SearchHit]:
        """The user's messages and conversation titles that contain every word of
        `query` (the last word also as a prefix), best first, at most `limit`.

        Conversations whose title matches come first (at most a few), then messages
        ranked by the database's full-text ranking (SQLite FTS5 bm25, PostgreSQL
        `ts_rank_cd`), each with a snippet. Messages still streaming are not indexed
        until they end. The query is words, never the database's query syntax: any
        text is safe, and a query without a word answers no results.
        """
        ...

    async def recover_streaming(self) -> list[Message]:
        """Mark every `streaming` message `interrupted` (text kept) and clear the
        conversations' active reply. Returns the messages as they are now."""
        ...

    async def streaming_replies(self) -> list[tuple[str, int]]:
        """`(message id, epoch)` of every `streaming` reply, of every user (for the
        sweeper of many nodes, which checks each against its lease)."""
        ...

    async def interrupt_replies(
        self, replies: Sequence[tuple[str, int]]
    ) -> list[tuple[Message, Conversation]]:
        """Mark these replies `interrupted` where they still stream at that epoch,
        moving the epoch on (their writer can write them no more) and clearing their
        conversations' active reply; the messages that were marked, each with its
        conversation as it is now (whose `user_id` says whom to tell)."""
        ...


def conversation_cursor(conversation: Conversation) -> str:
    """The keyset cursor that continues a listing after `conversation`."""
    return f"{conversation.updated_at}|{conversation.id}"


__all__ = [
    "ApiTokenInfo",
    "ClientCommand",
    "ConversationPage",
    "ConversationPatch",
    "FinalState",
    "FlushItem",
    "ImportedConversation",
    "NewConversation",
    "NewTurn",
    "SearchHit",
    "Share",
    "SnippetPart",
    "Store",
    "StoreStats",
    "conversation_cursor",
]
