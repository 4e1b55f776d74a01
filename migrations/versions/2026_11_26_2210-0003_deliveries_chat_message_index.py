"""Index the outbox by (chat, message): alert buttons and edits look rows up by Telegram's message id.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 22:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_deliveries_chat_message", "deliveries", ["chat_id", "message_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_deliveries_chat_message", table_name="deliveries")
