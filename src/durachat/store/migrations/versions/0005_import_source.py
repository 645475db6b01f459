"""Imported conversations remember where they came from, so an import is idempotent.

Revision ID: 0005
Revises: 0004

`conversations.source_id` is `durachat:<id>` or `chatgpt:<id>` for an imported
conversation and NULL otherwise; one user cannot hold two conversations from the
same source (a unique index; NULLs do not collide).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch table copy: on SQLite that would drop and
    # recreate `conversations`, which the messages reference).
    op.add_column("conversations", sa.Column("source_id", sa.String(), nullable=True))
    op.create_index(
        "ix_conversations_user_id_source_id",
        "conversations",
        ["user_id", "source_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_user_id_source_id", table_name="conversations")
    # Native DROP COLUMN (SQLite 3.35+), again without a table copy.
    op.execute("ALTER TABLE conversations DROP COLUMN source_id")
