"""The two bases of the models of ``edigw.yaml``: ``_Model``, which every model derives
from (unknown keys are errors, a loaded configuration is read-only), and ``_FlowBase``, what
an inbound and an outbound flow both have (their partner, name and ``partner/flow`` id, given
by ``GatewayConfig`` once the file is loaded).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, PrivateAttr


class _Model(BaseModel):
    """Base: unknown keys are errors, and a loaded configuration is read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _FlowBase(_Model):
    _partner: str = PrivateAttr(default="")
    _name: str = PrivateAttr(default="")

    @property
    def partner(self) -> str:
        """The partner this flow belongs to."""
        return self._partner

    @property
    def name(self) -> str:
        """The flow's own name under its partner."""
        return self._name

    @property
    def id(self) -> str:
        """``partner/flow``, as operators type it (``edigw process --flow``)."""
        return f"{self._partner}/{self._name}"
