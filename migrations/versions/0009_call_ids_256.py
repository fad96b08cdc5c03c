"""Call ids up to 256 characters: widen every column that holds a platform call id.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = [
    ("webhookinbox", "call_id", False),
    ("call", "platform_call_id", False),
    ("callevent", "platform_call_id", False),
    ("callscore", "platform_call_id", False),
    ("toolinvocation", "call_id", False),
    ("memory", "source_call_id", False),
    ("fact", "source_call_id", False),
    ("fact", "superseded_by_call_id", True),
]


def _alter(length_from: int, length_to: int) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # SQLite does not enforce VARCHAR lengths: nothing to widen
    for table, column, nullable in COLUMNS:
        op.alter_column(
            table,
            column,
            existing_type=sa.String(length_from),
            type_=sa.String(length_to),
            existing_nullable=nullable,
        )


def upgrade() -> None:
    _alter(128, 256)


def downgrade() -> None:
    _alter(256, 128)
