"""The four-layer scorecard: a call score's prompt version, layers and metrics; a prompt
version's compliance checks.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("callscore") as batch:
        batch.add_column(sa.Column("prompt_version", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("layers", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("metrics", sa.JSON(), nullable=True))
        batch.create_index("ix_callscore_agent_version", ["agent_id", "prompt_version"])
    with op.batch_alter_table("promptversion") as batch:
        batch.add_column(sa.Column("compliance", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("promptversion") as batch:
        batch.drop_column("compliance")
    with op.batch_alter_table("callscore") as batch:
        batch.drop_index("ix_callscore_agent_version")
        batch.drop_column("metrics")
        batch.drop_column("layers")
        batch.drop_column("prompt_version")
