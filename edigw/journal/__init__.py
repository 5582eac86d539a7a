"""The exchange journal (SQLAlchemy Core) and the content-addressed archive."""
