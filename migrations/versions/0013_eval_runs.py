"""eval runs: registered eval suites, runs and their per-case results

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evalrun",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("org_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("agent_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("suite_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("target_label", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("target_version", sa.Integer(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=True),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("verdict", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("scenarios", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("baseline_run_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("evalrun", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evalrun_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_evalrun_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_evalrun_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_evalrun_status"), ["status"], unique=False)

    op.create_table(
        "evalsuite",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("agent_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "name"),
    )
    with op.batch_alter_table("evalsuite", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evalsuite_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_evalsuite_org_id"), ["org_id"], unique=False)

    op.create_table(
        "evalcaseresult",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("case_index", sa.Integer(), nullable=False),
        sa.Column("scenario", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("persona", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("transcript", sa.JSON(), nullable=False),
        sa.Column("trace", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["evalrun.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "case_index"),
    )
    with op.batch_alter_table("evalcaseresult", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evalcaseresult_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("evalcaseresult", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evalcaseresult_run_id"))

    op.drop_table("evalcaseresult")
    with op.batch_alter_table("evalsuite", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evalsuite_org_id"))
        batch_op.drop_index(batch_op.f("ix_evalsuite_agent_id"))

    op.drop_table("evalsuite")
    with op.batch_alter_table("evalrun", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evalrun_status"))
        batch_op.drop_index(batch_op.f("ix_evalrun_org_id"))
        batch_op.drop_index(batch_op.f("ix_evalrun_created_at"))
        batch_op.drop_index(batch_op.f("ix_evalrun_agent_id"))

    op.drop_table("evalrun")
