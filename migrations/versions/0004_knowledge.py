"""knowledge: bases, sources, fetched content, chunks and the ingestion docstore

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-24 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "knowledgebase",
        sa.Column("id", S(length=40), nullable=False),
        sa.Column("org_id", S(length=64), nullable=False),
        sa.Column("agent_id", S(length=64), nullable=False),
        sa.Column("name", S(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("vocabulary", sa.JSON(), nullable=True),
        sa.Column("created_at", T(), nullable=False),
        sa.Column("updated_at", T(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "name", name="uq_knowledgebase_agent_name"),
    )
    op.create_index("ix_knowledgebase_agent_id", "knowledgebase", ["agent_id"])
    op.create_index("ix_knowledgebase_org_id", "knowledgebase", ["org_id"])

    op.create_table(
        "knowledgesource",
        sa.Column("id", S(length=40), nullable=False),
        sa.Column("org_id", S(length=64), nullable=False),
        sa.Column("agent_id", S(length=64), nullable=False),
        sa.Column("kb_id", S(length=40), nullable=False),
        sa.Column("kind", S(length=8), nullable=False),
        sa.Column("name", S(length=200), nullable=False),
        sa.Column("url", S(length=2000), nullable=True),
        sa.Column("filename", S(length=255), nullable=True),
        sa.Column("content_type", S(length=100), nullable=True),
        sa.Column("refresh_interval_s", sa.Integer(), nullable=True),
        sa.Column("max_staleness_s", sa.Integer(), nullable=True),
        sa.Column("status", S(length=16), nullable=False),
        sa.Column("desired_hash", S(length=64), nullable=True),
        sa.Column("content_hash", S(length=64), nullable=True),
        sa.Column("etag", S(length=300), nullable=True),
        sa.Column("last_modified", S(length=100), nullable=True),
        sa.Column("fetched_at", T(), nullable=True),
        sa.Column("verified_at", T(), nullable=True),
        sa.Column("last_attempt_at", T(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("document_count", sa.Integer(), nullable=False),
        sa.Column("schedule_synced", sa.Boolean(), nullable=False),
        sa.Column("index_outbox", sa.JSON(), nullable=True),
        sa.Column("created_by", S(length=128), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.Column("updated_at", T(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kb_id", "name", name="uq_knowledgesource_kb_name"),
    )
    op.create_index("ix_knowledgesource_org_id", "knowledgesource", ["org_id"])
    op.create_index("ix_knowledgesource_agent_id", "knowledgesource", ["agent_id"])
    op.create_index("ix_knowledgesource_kb_id", "knowledgesource", ["kb_id"])
    op.create_index("ix_knowledgesource_status", "knowledgesource", ["status"])

    op.create_table(
        "knowledgeblob",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", S(length=40), nullable=False),
        sa.Column("content_hash", S(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("content_type", S(length=100), nullable=True),
        sa.Column("filename", S(length=255), nullable=True),
        sa.Column("etag", S(length=300), nullable=True),
        sa.Column("last_modified", S(length=100), nullable=True),
        sa.Column("fetched_at", T(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_id", "content_hash", name="uq_knowledgeblob_source_hash"),
    )
    op.create_index("ix_knowledgeblob_source_id", "knowledgeblob", ["source_id"])

    op.create_table(
        "knowledgechunk",
        sa.Column("id", S(length=40), nullable=False),
        sa.Column("org_id", S(length=64), nullable=False),
        sa.Column("agent_id", S(length=64), nullable=False),
        sa.Column("kb_id", S(length=40), nullable=False),
        sa.Column("source_id", S(length=40), nullable=False),
        sa.Column("doc_key", S(length=200), nullable=False),
        sa.Column("section_order", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", S(length=300), nullable=False),
        sa.Column("section", S(length=500), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("content_hash", S(length=64), nullable=False),
        sa.Column("fetched_at", T(), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.Column("updated_at", T(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_knowledgechunk_org_id", "knowledgechunk", ["org_id"])
    op.create_index("ix_knowledgechunk_kb_id", "knowledgechunk", ["kb_id"])
    op.create_index("ix_knowledgechunk_source_doc", "knowledgechunk", ["source_id", "doc_key"])

    op.create_table(
        "knowledgekv",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("namespace", S(length=80), nullable=False),
        sa.Column("collection", S(length=120), nullable=False),
        sa.Column("key", S(length=300), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("namespace", "collection", "key", name="uq_knowledgekv_key"),
    )


def downgrade() -> None:
    op.drop_table("knowledgekv")
    op.drop_index("ix_knowledgechunk_source_doc", table_name="knowledgechunk")
    op.drop_index("ix_knowledgechunk_kb_id", table_name="knowledgechunk")
    op.drop_index("ix_knowledgechunk_org_id", table_name="knowledgechunk")
    op.drop_table("knowledgechunk")
    op.drop_index("ix_knowledgeblob_source_id", table_name="knowledgeblob")
    op.drop_table("knowledgeblob")
    for name in ("status", "kb_id", "agent_id", "org_id"):
        op.drop_index(f"ix_knowledgesource_{name}", table_name="knowledgesource")
    op.drop_table("knowledgesource")
    op.drop_index("ix_knowledgebase_org_id", table_name="knowledgebase")
    op.drop_index("ix_knowledgebase_agent_id", table_name="knowledgebase")
    op.drop_table("knowledgebase")
