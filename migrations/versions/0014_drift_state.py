"""drift monitor state per agent and prompt version

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 17:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "driftstate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", S(length=64), nullable=False),
        sa.Column("agent_id", S(length=64), nullable=False),
        sa.Column("prompt_version", S(length=32), nullable=False),
        sa.Column("state", sa.JSON(), nullable=True),
        sa.Column("calls_seen", sa.Integer(), nullable=False),
        sa.Column("last_call_score_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", T(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "prompt_version"),
    )
    op.create_index("ix_driftstate_org_id", "driftstate", ["org_id"])
    op.create_index("ix_driftstate_agent_id", "driftstate", ["agent_id"])


def downgrade() -> None:
    op.drop_index("ix_driftstate_agent_id", table_name="driftstate")
    op.drop_index("ix_driftstate_org_id", table_name="driftstate")
    op.drop_table("driftstate")
