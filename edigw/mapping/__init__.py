"""Declarative mapping files: load and validate, compile once, apply to records."""
