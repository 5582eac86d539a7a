"""An Ecolix problem document reads as one line that says each reason once."""

from __future__ import annotations

import pytest

from edigw.errors import FieldError, Problem

UNKNOWN = FieldError("/customer_code", "unknown customer 'CUS-9'")


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        pytest.param(
            Problem(
                422,
                title="Unknown customer",
                detail="/customer_code: unknown customer 'CUS-9'",
                errors=[UNKNOWN],
            ),
            "422 Unknown customer: /customer_code: unknown customer 'CUS-9'",
            id="detail-repeats-the-field-error",
        ),
        pytest.param(
            Problem(422, title="Business rule violated", detail="2 problems", errors=[UNKNOWN]),
            "422 Business rule violated: 2 problems; /customer_code: unknown customer 'CUS-9'",
            id="detail-is-a-summary",
        ),
        pytest.param(
            Problem(422, title="Business rule violated", errors=[UNKNOWN]),
            "422 Business rule violated; /customer_code: unknown customer 'CUS-9'",
            id="no-detail",
        ),
        pytest.param(Problem(404, type="about:blank"), "404 about:blank", id="bare"),
    ],
)
def test_a_problem_says_each_reason_once(problem: Problem, text: str) -> None:
    assert str(problem) == text
