"""alert states (firing, acknowledged, resolved) and what they are about; the local path a
file knowledge source was added from

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 06:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("alert") as batch:
        batch.add_column(
            sa.Column("state", S(length=16), nullable=False, server_default="firing")
        )
        batch.add_column(sa.Column("subject", S(length=200), nullable=True))
        batch.add_column(sa.Column("acknowledged_at", T(), nullable=True))
        batch.add_column(sa.Column("acknowledged_by", S(length=128), nullable=True))
        batch.add_column(sa.Column("resolved_by", S(length=128), nullable=True))
        batch.add_column(sa.Column("resolution", S(length=500), nullable=True))
        batch.create_index("ix_alert_state", ["state"])
        batch.create_index("ix_alert_subject", ["subject"])
    op.execute("UPDATE alert SET state = 'resolved' WHERE resolved_at IS NOT NULL")
    with op.batch_alter_table("knowledgesource") as batch:
        batch.add_column(sa.Column("origin_path", S(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("knowledgesource") as batch:
        batch.drop_column("origin_path")
    with op.batch_alter_table("alert") as batch:
        batch.drop_index("ix_alert_subject")
        batch.drop_index("ix_alert_state")
        for name in (
            "resolution",
            "resolved_by",
            "acknowledged_by",
            "acknowledged_at",
            "subject",
            "state",
        ):
            batch.drop_column(name)
