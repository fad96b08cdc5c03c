"""eval runs: token usage, cost, cost cap and why a run stopped early

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("evalrun", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cost_cap_usd", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("prompt_tokens", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("completion_tokens", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("cost_usd", sa.Float(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("cost_unknown", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("stop_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evalrun", schema=None) as batch_op:
        for name in (
            "stop_reason",
            "cost_unknown",
            "cost_usd",
            "completion_tokens",
            "prompt_tokens",
            "cost_cap_usd",
        ):
            batch_op.drop_column(name)
