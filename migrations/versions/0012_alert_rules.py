"""alert rules per agent, alert channels per organization, and the alert delivery outbox

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 17:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "alertrule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", S(length=64), nullable=False),
        sa.Column("agent_id", S(length=64), nullable=False),
        sa.Column("name", S(length=100), nullable=False),
        sa.Column("kind", S(length=16), nullable=False),
        sa.Column("alert_kinds", sa.JSON(), nullable=True),
        sa.Column("min_severity", S(length=16), nullable=False),
        sa.Column("metric", S(length=32), nullable=True),
        sa.Column("op", S(length=2), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("window_calls", sa.Integer(), nullable=True),
        sa.Column("cooldown_minutes", sa.Integer(), nullable=False),
        sa.Column("channel_ids", sa.JSON(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.Column("created_by", S(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alertrule_org_id", "alertrule", ["org_id"])
    op.create_index("ix_alertrule_agent_id", "alertrule", ["agent_id"])
    op.create_table(
        "alertchannel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", S(length=64), nullable=False),
        sa.Column("name", S(length=100), nullable=False),
        sa.Column("kind", S(length=16), nullable=False),
        sa.Column("url_encrypted", S(), nullable=False),
        sa.Column("url_host", S(length=255), nullable=False),
        sa.Column("secret_encrypted", S(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.Column("created_by", S(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alertchannel_org_id", "alertchannel", ["org_id"])
    op.create_table(
        "alertdelivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", S(length=64), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("event", S(length=16), nullable=False),
        sa.Column("subject", S(length=200), nullable=False),
        sa.Column("idempotency_key", S(length=100), nullable=False),
        sa.Column("status", S(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", S(length=500), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("created_at", T(), nullable=False),
        sa.Column("dispatched_at", T(), nullable=True),
        sa.Column("sent_at", T(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id", "channel_id", "event"),
        sa.UniqueConstraint("idempotency_key"),
    )
    for column in ("org_id", "alert_id", "channel_id", "subject", "status", "created_at"):
        op.create_index(f"ix_alertdelivery_{column}", "alertdelivery", [column])


def downgrade() -> None:
    op.drop_table("alertdelivery")
    op.drop_table("alertchannel")
    op.drop_table("alertrule")
