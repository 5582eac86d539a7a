"""Shared fixtures: real parts, started once per session where they are expensive.

Fixture modules live in ``tests/fixtures/`` (one per real part) and are registered here.
"""

from __future__ import annotations

import os

from hypothesis import settings

# Property tests draw the same examples at every run, in CI too: a failure then means a change
# of the code, never the luck of a draw. ``HYPOTHESIS_PROFILE=explore pytest ...`` draws anew.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

pytest_plugins: list[str] = [
    "tests.fixtures.sshd",
    "tests.fixtures.databases",
    "tests.fixtures.sandbox",
    "tests.fixtures.isolation",
    "tests.fixtures.receivers",
]
