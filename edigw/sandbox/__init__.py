"""The Ecolix sandbox: a faithful implementation of the contract over SQLite."""
