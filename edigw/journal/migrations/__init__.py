"""Alembic migrations of the journal, shipped inside the package and run by ``Journal.migrate``."""
