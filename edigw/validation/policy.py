"""What each validation layer does to a file, per flow: block it, warn, or stay off.

Kept free of lxml and Saxon so that ``edigw.config`` can import it at no cost.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class LayerMode(StrEnum):
    """What a layer's errors do to the file."""

    BLOCK = "block"  # errors fail the file; the layer's warnings are kept as warnings
    WARN = "warn"  # every finding is kept as a warning; the file goes on
    OFF = "off"  # the layer does not run


class ValidationPolicy(BaseModel):
    """Per flow: ``validation: {xsd: block, en16931: block, br_fr: warn}``.

    A finding blocks the file only when its layer is ``block`` *and* the rule set flags it
    fatal or error; a rule the official artefact flags ``warning`` never blocks.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    xsd: LayerMode = Field(
        default=LayerMode.BLOCK,
        description=(
            "The syntax's XML Schema (UBL 2.1 Invoice/CreditNote, the Factur-X profile's CII "
            "schema, CII D22B for EXTENDED-CTC-FR). block | warn | off."
        ),
    )
    en16931: LayerMode = Field(
        default=LayerMode.BLOCK,
        description=(
            "The EN 16931 business rules (BR-*, BR-CO-*, syntax rules) as the official "
            "schematron binds them to the syntax and profile. block | warn | off."
        ),
    )
    br_fr: LayerMode = Field(
        default=LayerMode.WARN,
        description="The French rules BR-FR (Flux 2) of the e-invoicing reform. block | warn | off.",
    )

    def mode(self, layer: str) -> LayerMode:
        """The mode of ``layer`` by its finding name (``xsd``, ``en16931``, ``br-fr``)."""
        mode: LayerMode = getattr(self, layer.replace("-", "_"))
        return mode


DEFAULT_POLICY = ValidationPolicy()
