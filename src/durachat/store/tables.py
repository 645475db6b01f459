"""The SQL schema of DuraChat as SQLAlchemy Core tables, shared by SQLite and PostgreSQL.

This module only declares tables; it never opens a connection. The migrations in
`store/migrations/versions/` create exactly this schema, and a test compares the two.
Times are ISO 8601 text from `domain.now_iso()`, which sorts lexically.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

users = Table(
    "users",
    metadata,
    Column("id", String, primary_key=True),
    Column("username", String, nullable=False, unique=True),
    Column("password_hash", String, nullable=False),
    Column("is_admin", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", String, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String, nullable=False),
    Column("token_hash", String, nullable=False, unique=True),
    Column("created_at", String, nullable=False),
    Column("last_used_at", String, nullable=True),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, ForeignKey("users.id"), nullable=False),
    Column("title", Text, nullable=False),
    Column("model", String, nullable=False),
    Column("provider", String, nullable=False),
    Column("system_prompt", Text, nullable=False),
    Column("pinned", Boolean, nullable=False),
    Column("archived", Boolean, nullable=False),
    Column("current_leaf_id", String, nullable=True),
    Column("active_message_id", String, nullable=True),
    Column("created_at", String, nullable=False),
    Column("updated_at", String, nullable=False),
    # `durachat:<id>` or `chatgpt:<id>` for an imported conversation: importing the
    # same one again is recognised (one per user and source).
    Column("source_id", String, nullable=True),
    # Serves both "the user's conversations" and the keyset-paginated listing.
    Index(None, "user_id", "updated_at", "id"),
    Index(None, "user_id", "source_id", unique=True),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String, primary_key=True),
    Column(
        "conversation_id",
        String,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", String, ForeignKey("users.id"), nullable=False),
    Column("parent_id", String, nullable=True),
    Column("role", String, nullable=False),
    Column("content", Text, nullable=False, server_default=""),
    Column("reasoning", Text, nullable=False, server_default=""),
    Column("reasoning_seq", Integer, nullable=False, server_default=text("0")),
    Column("status", String, nullable=False),
    Column("seq", Integer, nullable=False, server_default=text("0")),
    Column("epoch", Integer, nullable=False, server_default=text("0")),
    Column("model", String, nullable=True),
    Column("provider", String, nullable=True),
    Column("error_code", String, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("input_tokens", Integer, nullable=True),
    Column("output_tokens", Integer, nullable=True),
    Column("client_message_id", String, nullable=True),
    Column("created_at", String, nullable=False),
    Column("updated_at", String, nullable=False),
    Column("attachments", Text, nullable=True),
    UniqueConstraint("user_id", "client_message_id"),
    Index(None, "conversation_id", "created_at", "id"),
    Index(None, "status"),
)

# Browser login sessions: only a hash of the cookie's secret is stored.
sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String, primary_key=True),
    Column("user_id", String, ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", String, nullable=False),
    Column("expires_at", String, nullable=False),
    Column("revoked", Boolean, nullable=False),
)

# What a generating command with a `clientMessageId` did, so that a repeat of it is
# answered as the first time (PROTOCOL.md section 3) instead of starting a second reply.
client_commands = Table(
    "client_commands",
    metadata,
    Column("user_id", String, ForeignKey("users.id"), primary_key=True),
    Column("client_message_id", String, primary_key=True),
    Column("conversation_id", String, nullable=False),
    Column("message_id", String, nullable=False),
    Column("user_message_id", String, nullable=True),
    Column("created_conversation", Boolean, nullable=False),
    Column("created_at", String, nullable=False),
)

# Share links: a snapshot (JSON) of a conversation's branch at the moment it was
# shared, read by anyone holding the token (signed in, or anyone when `public`).
shares = Table(
    "shares",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, ForeignKey("users.id"), nullable=False, index=True),
    Column(
        "conversation_id",
        String,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("token", String, nullable=False, unique=True),
    Column("public", Boolean, nullable=False),
    Column("title", Text, nullable=False),
    Column("snapshot", Text, nullable=False),
    Column("created_at", String, nullable=False),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("kind", String, nullable=False),
    Column("media_type", String, nullable=False),
    Column("size", Integer, nullable=False),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("chars", Integer, nullable=False),
    Column("created_at", String, nullable=False),
)

__all__ = [
    "api_tokens",
    "client_commands",
    "conversations",
    "messages",
    "metadata",
    "sessions",
    "shares",
    "uploads",
    "users",
]
