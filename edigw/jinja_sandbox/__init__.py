"""The Jinja2 sandbox that partner-facing text runs in: mapping expressions and outbound templates.

What comes from a partner or a consultant is data, never code (ARCHITECTURE.md, invariant 6):
expressions and templates run in :class:`BoundedEnvironment`, which keeps them away from the
process (no attribute of a function, class or module, no ``__`` name, no file but those the
template loader hands out) and bounds what they build and do (:class:`Limits`). Going over a
limit raises :class:`LimitExceeded`; reaching for something forbidden raises Jinja2's
``SecurityError``. Both fail one document (expressions) or one export run (templates).
"""

from edigw.jinja_sandbox.budget import (
    EXPRESSION_LIMITS,
    TEMPLATE_LIMITS,
    Budget,
    LimitExceeded,
    Limits,
    Metered,
    Waits,
)
from edigw.jinja_sandbox.environment import BoundedEnvironment

__all__ = [
    "EXPRESSION_LIMITS",
    "TEMPLATE_LIMITS",
    "BoundedEnvironment",
    "Budget",
    "LimitExceeded",
    "Limits",
    "Metered",
    "Waits",
]
