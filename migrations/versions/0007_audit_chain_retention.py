"""audit: a hash chain per organization (seq, prev_hash, hash + chain heads), backfilled;
retention windows per organization

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from core.audit.chain import GENESIS, chain_key, link_hash

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("auditevent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("prev_hash", S(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("hash", S(length=64), nullable=False, server_default=""))
        batch_op.create_index("ix_auditevent_chain", ["org_id", "seq"], unique=False)
    op.create_table(
        "auditchainhead",
        sa.Column("chain", S(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", S(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain"),
    )
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw_payload_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("transcript_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("memory_days", sa.Integer(), nullable=True))
    _backfill()


def _backfill() -> None:
    """Link the rows written before the chain existed, per organization in id order."""
    events = sa.table(
        "auditevent",
        sa.column("id", sa.Integer()),
        sa.column("org_id", S()),
        sa.column("actor", S()),
        sa.column("action", S()),
        sa.column("target", S()),
        sa.column("detail", sa.JSON()),
        sa.column("at", T()),
        sa.column("seq", sa.Integer()),
        sa.column("prev_hash", S()),
        sa.column("hash", S()),
    )
    heads = sa.table(
        "auditchainhead",
        sa.column("chain", S()),
        sa.column("seq", sa.Integer()),
        sa.column("hash", S()),
    )
    bind = op.get_bind()
    tips: dict[str, tuple[int, str]] = {}
    rows = bind.execute(
        sa.select(
            events.c.id,
            events.c.org_id,
            events.c.actor,
            events.c.action,
            events.c.target,
            events.c.detail,
            events.c.at,
        ).order_by(events.c.id)
    ).all()
    for r in rows:
        chain = chain_key(r.org_id)
        seq, prev = tips.get(chain, (0, GENESIS))
        digest = link_hash(
            org_id=r.org_id,
            actor=r.actor,
            action=r.action,
            target=r.target,
            detail=r.detail,
            at=r.at,
            prev_hash=prev,
        )
        bind.execute(
            events.update()
            .where(events.c.id == r.id)
            .values(seq=seq + 1, prev_hash=prev, hash=digest)
        )
        tips[chain] = (seq + 1, digest)
    if tips:
        bind.execute(
            heads.insert(),
            [{"chain": c, "seq": s, "hash": h} for c, (s, h) in sorted(tips.items())],
        )


def downgrade() -> None:
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.drop_column("memory_days")
        batch_op.drop_column("transcript_days")
        batch_op.drop_column("raw_payload_days")
    op.drop_table("auditchainhead")
    with op.batch_alter_table("auditevent", schema=None) as batch_op:
        batch_op.drop_index("ix_auditevent_chain")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
