"""Alembic environment for the journal: always online, on the connection the caller passes.

``Journal.migrate`` puts an open connection (inside its transaction) in
``config.attributes["connection"]``; there is no ``alembic.ini`` and no URL here, so the
migrations run exactly where and how the journal runs, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from alembic import context

from edigw.journal.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only Journal.migrate runs these migrations
    msg = "the journal migrations run through Journal.migrate(), not the alembic command"
    raise RuntimeError(msg)

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
