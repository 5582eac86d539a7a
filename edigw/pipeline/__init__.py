"""Inbound orchestration: file to documents to Ecolix, with durable retries."""
