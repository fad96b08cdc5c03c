"""agent platform settings: the VAPI-only assistant columns become one per-platform document

``agent.vapi_assistant_id`` / ``agent.vapi_assistant`` move into
``agent.platform_settings = {"vapi": {"assistant_id": ..., "assistant": {...}}}``; agents without
either get ``{}``. The downgrade restores the two columns from the document (other platforms'
settings are dropped: the old schema had nowhere to keep them).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

agent = sa.table(
    "agent",
    sa.column("id", sa.String()),
    sa.column("vapi_assistant_id", sa.String()),
    sa.column("vapi_assistant", sa.JSON()),
    sa.column("platform_settings", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("agent") as batch:
        batch.add_column(
            sa.Column("platform_settings", sa.JSON(), nullable=True, server_default=sa.text("'{}'"))
        )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(agent.c.id, agent.c.vapi_assistant_id, agent.c.vapi_assistant)
    ).all()
    for agent_id, assistant_id, assistant in rows:
        vapi: dict[str, Any] = {}
        if assistant_id is not None:
            vapi["assistant_id"] = assistant_id
        if assistant is not None:
            vapi["assistant"] = assistant
        bind.execute(
            agent.update()
            .where(agent.c.id == agent_id)
            .values(platform_settings={"vapi": vapi} if vapi else {})
        )
    with op.batch_alter_table("agent") as batch:
        batch.alter_column(
            "platform_settings",
            existing_type=sa.JSON(),
            nullable=False,
            existing_server_default=sa.text("'{}'"),
        )
        batch.drop_column("vapi_assistant")
        batch.drop_column("vapi_assistant_id")


def downgrade() -> None:
    with op.batch_alter_table("agent") as batch:
        batch.add_column(sa.Column("vapi_assistant_id", sa.String(), nullable=True))
        batch.add_column(sa.Column("vapi_assistant", sa.JSON(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(agent.c.id, agent.c.platform_settings)).all()
    for agent_id, settings in rows:
        vapi = (settings or {}).get("vapi") or {}
        if vapi:
            bind.execute(
                agent.update()
                .where(agent.c.id == agent_id)
                .values(
                    vapi_assistant_id=vapi.get("assistant_id"),
                    # SQL NULL, not a JSON null, for an agent that had only an id
                    vapi_assistant=vapi.get("assistant", sa.null()),
                )
            )
    with op.batch_alter_table("agent") as batch:
        batch.drop_column("platform_settings")
