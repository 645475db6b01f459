"""Full-text search over messages: SQLite FTS5, PostgreSQL tsvector with a GIN index.

Revision ID: 0004
Revises: 0003

The index holds every message that is not `streaming`, kept in sync by triggers on
`messages`: a message is indexed when it is inserted finished (a prompt, an import)
and when its status changes (a reply's final write, recovery to `interrupted`); a
`continue` (back to `streaming`) takes it out until it ends again. The triggers
fire on `UPDATE OF status` only, so the per-flush appends of a streaming reply
(which never set `status`) cost nothing here.

Every object created here is named `search_...` (`store/search.py`,
`SEARCH_OBJECT_PREFIX`): they are not in `store/tables.py`, whose schema comparison
leaves them out.

SQLite: FTS5 rowids must be stable, and the implicit rowid of `messages` is not
(VACUUM may renumber it), so `search_message_keys` gives each indexed message an
INTEGER PRIMARY KEY that is the FTS row's rowid. The FTS table keeps its own copy of
the text (`body`) and the owner's id as a second column (`owner`, weight 0 in the
ranking), so a query is narrowed to one user inside the index.

PostgreSQL: `search_messages` holds one tsvector per message (the `simple`
configuration: no stemming, any language) of its first 200,000 characters (a
tsvector is limited to 1 MB), deleted with its message by the foreign key.
"""

from __future__ import annotations

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_SQLITE_UP = (
    "CREATE TABLE search_message_keys ( key INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE)",
    "CREATE VIRTUAL TABLE search_messages USING fts5("
    " body, owner, tokenize = 'unicode61 remove_diacritics 2')",
    "INSERT INTO search_messages(search_messages, rank) VALUES ('rank', 'bm25(1.0, 0.0)')",
    """CREATE TRIGGER search_messages_insert AFTER INSERT ON messages
    WHEN new.status <> 'streaming' BEGIN
      INSERT INTO search_message_keys(message_id) VALUES (new.id);
      INSERT INTO search_messages(rowid, body, owner)
        SELECT key, new.content, new.user_id FROM search_message_keys
        WHERE message_id = new.id;
    END""",
    """CREATE TRIGGER search_messages_status AFTER UPDATE OF status ON messages BEGIN
      DELETE FROM search_messages
        WHERE rowid = (SELECT key FROM search_message_keys WHERE message_id = old.id);
      DELETE FROM search_message_keys WHERE message_id = old.id;
      INSERT INTO search_message_keys(message_id)
        SELECT new.id WHERE new.status <> 'streaming';
      INSERT INTO search_messages(rowid, body, owner)
        SELECT key, new.content, new.user_id FROM search_message_keys
        WHERE message_id = new.id;
    END""",
    """CREATE TRIGGER search_messages_delete AFTER DELETE ON messages BEGIN
      DELETE FROM search_messages
        WHERE rowid = (SELECT key FROM search_message_keys WHERE message_id = old.id);
      DELETE FROM search_message_keys WHERE message_id = old.id;
    END""",
    # what earlier versions stored
    "INSERT INTO search_message_keys(message_id)"
    " SELECT id FROM messages WHERE status <> 'streaming'",
    "INSERT INTO search_messages(rowid, body, owner)"
    " SELECT k.key, m.content, m.user_id FROM search_message_keys AS k"
    " JOIN messages AS m ON m.id = k.message_id",
)
_SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS search_messages_delete",
    "DROP TRIGGER IF EXISTS search_messages_status",
    "DROP TRIGGER IF EXISTS search_messages_insert",
    "DROP TABLE IF EXISTS search_messages",
    "DROP TABLE IF EXISTS search_message_keys",
)

_POSTGRES_UP = (
    "CREATE TABLE search_messages ("
    " message_id TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,"
    " user_id TEXT NOT NULL,"
    " document tsvector NOT NULL)",
    "CREATE INDEX search_messages_document ON search_messages USING gin (document)",
    """CREATE FUNCTION search_messages_sync() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
      IF NEW.status = 'streaming' THEN
        DELETE FROM search_messages WHERE message_id = NEW.id;
      ELSE
        INSERT INTO search_messages (message_id, user_id, document)
        VALUES (NEW.id, NEW.user_id, to_tsvector('simple', left(NEW.content, 200000)))
        ON CONFLICT (message_id) DO UPDATE SET document = EXCLUDED.document;
      END IF;
      RETURN NULL;
    END
    $body$""",
    "CREATE TRIGGER search_messages_sync AFTER INSERT OR UPDATE OF status ON messages"
    " FOR EACH ROW EXECUTE FUNCTION search_messages_sync()",
    "INSERT INTO search_messages (message_id, user_id, document)"
    " SELECT id, user_id, to_tsvector('simple', left(content, 200000)) FROM messages"
    " WHERE status <> 'streaming'",
)
_POSTGRES_DOWN = (
    "DROP TRIGGER IF EXISTS search_messages_sync ON messages",
    "DROP FUNCTION IF EXISTS search_messages_sync()",
    "DROP TABLE IF EXISTS search_messages",
)


def _run(statements: tuple[str, ...]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _run(_SQLITE_UP if sqlite else _POSTGRES_UP)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _run(_SQLITE_DOWN if sqlite else _POSTGRES_DOWN)
