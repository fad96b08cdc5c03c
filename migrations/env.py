"""Alembic environment: one metadata for SQLite and Postgres (batch mode for SQLite ALTERs)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import core.audit.models
import core.calls.models
import core.evals.models
import core.knowledge.models
import core.memory.models
import core.monitoring.models
import core.prompts.models
import core.tenancy.models
import core.tools.models  # noqa: F401  (register every table)
from core.db import make_engine
from core.settings import Settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings().resolved_database_url
target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
