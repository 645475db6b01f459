"""Client commands: what a `clientMessageId` did, for idempotent resends.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "client_commands",
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("client_message_id", sa.String(), nullable=False),
        sa.Column("conversation_id", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("user_message_id", sa.String(), nullable=True),
        sa.Column("created_conversation", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_client_commands_user_id_users"),
        sa.PrimaryKeyConstraint("user_id", "client_message_id", name="pk_client_commands"),
    )


def downgrade() -> None:
    op.drop_table("client_commands")
