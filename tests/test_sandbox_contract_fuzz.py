"""Property-based run of the contract against the running sandbox (schemathesis).

schemathesis generates requests from ``openapi.yaml`` — valid and invalid ones — sends them to
a sandbox on loopback and checks every answer against the contract: status codes declared,
bodies matching the response schemas, headers (rate limit, Retry-After) present, invalid
input refused with a 4xx, no 5xx. A bounded number of examples keeps it well under a minute.

One built-in check is left out: ``positive_data_acceptance`` demands a 2xx for every
schema-valid request, but Ecolix refuses schema-valid requests that break a business rule
(an unknown customer, a forged cursor) with the 400/422 the contract declares for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from edigw.ecolix.contract import load_contract
from tests.fixtures.sandbox import SandboxProcess, own_sandbox

EXAMPLES_PER_OPERATION = 25

schema = schemathesis.openapi.from_dict(load_contract().document)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """A sandbox of its own: generated writes must not litter the shared session sandbox."""
    with own_sandbox(tmp_path_factory, "fuzz") as server:
        yield server


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure here is never a fluke
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_sandbox_answers_as_the_contract_says(case: Any, fuzzed: SandboxProcess) -> None:
    case.call_and_validate(
        base_url=fuzzed.base_url,
        headers=fuzzed.auth,
        excluded_checks=[positive_data_acceptance],
        timeout=10,
    )
