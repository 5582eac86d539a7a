"""Readers: bytes to records, streaming, each record with its source Location."""
