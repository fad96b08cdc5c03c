"""inbox per agent: unique on (agent, platform, event, call id, payload hash); dispatch retries

The inbox was unique on (platform, event, call id, payload hash), so the same report sent to two
organizations' agents was stored once and the second call lost. Agent ids are global, so adding
the agent scopes the organization. Workflow ids become unique (they embed the agent from now on;
older rows keep their ``post-call-{platform}-{call id}`` ids, which were already unique), and the
dispatcher gets the columns it needs to back off and give up on a row that cannot start.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
T = sqlmodel.sql.sqltypes.UTCDateTime
NEW_KEY = ["agent_id", "platform", "event_type", "call_id", "payload_hash"]
OLD_KEY = ["platform", "event_type", "call_id", "payload_hash"]


def upgrade() -> None:
    # Batch mode: SQLite rebuilds the table; Postgres alters it in place.
    with op.batch_alter_table("webhookinbox", schema=None) as batch_op:
        batch_op.drop_constraint("uq_inbox_event", type_="unique")
        batch_op.create_unique_constraint("uq_inbox_agent_event", NEW_KEY)
        batch_op.create_unique_constraint("uq_inbox_workflow", ["workflow_id"])
        batch_op.add_column(
            sa.Column("dispatch_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("next_dispatch_at", T(), nullable=True))
        batch_op.add_column(sa.Column("dispatch_failed_at", T(), nullable=True))
        batch_op.add_column(sa.Column("dispatch_error", S(length=500), nullable=True))


def downgrade() -> None:
    # Fails if two agents now hold the same (platform, event, call id, payload hash): the old
    # key cannot represent them.
    with op.batch_alter_table("webhookinbox", schema=None) as batch_op:
        batch_op.drop_column("dispatch_error")
        batch_op.drop_column("dispatch_failed_at")
        batch_op.drop_column("next_dispatch_at")
        batch_op.drop_column("dispatch_attempts")
        batch_op.drop_constraint("uq_inbox_workflow", type_="unique")
        batch_op.drop_constraint("uq_inbox_agent_event", type_="unique")
        batch_op.create_unique_constraint("uq_inbox_event", OLD_KEY)
