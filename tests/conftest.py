"""Shared fixtures: real parts, started once per session where they are expensive.

Fixture modules live in ``tests/fixtures/`` (one per real part) and are registered here.
"""

from __future__ import annotations

pytest_plugins: list[str] = [
    "tests.fixtures.sshd",
    "tests.fixtures.databases",
    "tests.fixtures.sandbox",
    "tests.fixtures.isolation",
    "tests.fixtures.receivers",
]
