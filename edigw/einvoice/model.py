"""The term table (``edigw.einvoice.terms``) indexed for lookups, and the few derived terms.

``resolve(selector, group)`` turns what a mapping writes (``BT-115``, ``totals.payable``,
``BG-25``, ``lines``) into the Term or Group it means, and says clearly when a term is asked
for at the wrong level (a line term outside ``each: lines``). The derived terms live here:
they are the only semantics the table cannot state as an XPath.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from edigw.einvoice.terms import GROUPS, TERMS, Group, Kind, Term


@dataclass(frozen=True, slots=True)
class Index:
    """Terms and groups by alias and, within their group, by id."""

    terms_by_alias: Mapping[str, Term]
    terms_by_id: Mapping[tuple[str | None, str], Term]  # (group id, BT id)
    groups: Mapping[str, Group]  # by id and by alias

    def group_name(self, group: str | None) -> str:
        if group is None:
            return "the invoice"
        found = self.groups[group]
        return f"{found.id} {found.alias}"


def _build() -> Index:
    by_alias: dict[str, Term] = {}
    by_id: dict[tuple[str | None, str], Term] = {}
    for term in TERMS:
        if term.alias in by_alias:
            msg = f"duplicate alias {term.alias!r} in the term table"
            raise ValueError(msg)
        by_alias[term.alias] = term
        if term.id is not None:
            by_id.setdefault((term.group, term.id), term)
    groups: dict[str, Group] = {}
    for group in GROUPS:
        groups[group.id] = group
        groups[group.alias] = group
    return Index(MappingProxyType(by_alias), MappingProxyType(by_id), MappingProxyType(groups))


INDEX = _build()


class SelectorError(ValueError):
    """A selector names no term or group, or one of another level."""


def resolve_term(selector: str, group: str | None) -> Term:
    """The term ``selector`` names, for a record of ``group`` (None: the invoice)."""
    term = INDEX.terms_by_alias.get(selector) or INDEX.terms_by_id.get((group, selector))
    if term is None:
        others = [t for (g, i), t in INDEX.terms_by_id.items() if i == selector]
        if not others:
            raise SelectorError(unknown(selector))
        term = others[0]
    if term.group != group:
        msg = (
            f"{term.label} belongs to {INDEX.group_name(term.group)}, but is read from "
            f"{INDEX.group_name(group)}: "
            + (
                f"read it inside a list `each: {INDEX.groups[term.group].alias}`"
                if term.group is not None
                else "read it at the top of the mapping, outside any list"
            )
        )
        raise SelectorError(msg)
    return term


def resolve_group(selector: str, group: str | None) -> Group:
    """The repeating group ``selector`` names, as a child of ``group``."""
    found = INDEX.groups.get(selector)
    if found is None:
        raise SelectorError(unknown(selector))
    if found.parent != group:
        msg = (
            f"{found.id} {found.alias} is a list of {INDEX.group_name(found.parent)}, but is "
            f"read from {INDEX.group_name(group)}"
        )
        raise SelectorError(msg)
    return found


def check(selector: str) -> str | None:
    """None when ``selector`` names a term or group at any level, else the problem."""
    if (
        selector in INDEX.terms_by_alias
        or selector in INDEX.groups
        or any(i == selector for _, i in INDEX.terms_by_id)
    ):
        return None
    return unknown(selector)


def unknown(selector: str) -> str:
    names = [*INDEX.terms_by_alias, *(g.alias for g in GROUPS)]
    close = difflib.get_close_matches(selector, names, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return (
        f"{selector!r} is no EN 16931 business term or group of the e-invoice reader{hint}; "
        "use a BT-/BG- id or its alias, listed in docs/einvoices.md"
    )


# -- derived terms ---------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")
_FR_VAT = re.compile(r"FR[0-9A-Z]{2}(\d{9})")
SIREN_SCHEME = "0002"
SIRET_SCHEME = "0009"
FR_ADDRESS_SCHEME = "0225"  # French electronic address (SIREN, optionally suffixed)


@dataclass(frozen=True, slots=True)
class Identifier:
    """One identifier of a party as the document gives it, with the node that holds it."""

    alias: str  # the term it was read as (seller.legal_id, ...)
    value: str
    scheme: str | None
    node: object


def _compact(value: str) -> str:
    return "".join(value.split())


def siret_of(identifiers: list[Identifier], country: str | None) -> Identifier | None:
    """The SIRET among a party's identifiers: scheme 0009 and 14 digits, or (French party) a
    14-digit legal registration identifier without scheme."""
    for ident in identifiers:
        digits = _compact(ident.value)
        if len(digits) == 14 and digits.isdigit():
            if ident.scheme == SIRET_SCHEME:
                return ident
            if ident.scheme is None and country == "FR" and ident.alias.endswith(".legal_id"):
                return ident
    return None


def siren_of(
    identifiers: list[Identifier], vat_id: Identifier | None, country: str | None
) -> tuple[str, Identifier] | None:
    """The SIREN of a party (9 digits) and the identifier it comes from.

    In order: an identifier with scheme 0002; a French legal registration identifier of 9
    digits without scheme; the first 9 digits of its SIRET; an electronic address with
    scheme 0225 (SIREN-based); the SIREN inside a French VAT number (FRkk + SIREN).
    """
    for ident in identifiers:
        digits = _compact(ident.value)
        if ident.scheme == SIREN_SCHEME and len(digits) == 9 and digits.isdigit():
            return digits, ident
    for ident in identifiers:
        digits = _compact(ident.value)
        if (
            ident.scheme is None
            and country == "FR"
            and ident.alias.endswith(".legal_id")
            and len(digits) == 9
            and digits.isdigit()
        ):
            return digits, ident
    siret = siret_of(identifiers, country)
    if siret is not None:
        return _compact(siret.value)[:9], siret
    for ident in identifiers:
        if ident.scheme == FR_ADDRESS_SCHEME:
            match = _DIGITS.match(_compact(ident.value))
            if match and len(match.group()) >= 9:
                return match.group()[:9], ident
    if vat_id is not None:
        match = _FR_VAT.fullmatch(_compact(vat_id.value).upper())
        if match:
            return match.group(1), vat_id
    return None


def date_text(text: str, fmt: str | None) -> str:
    """A CII date (format 102, YYYYMMDD) as ISO YYYY-MM-DD; anything else unchanged."""
    if (fmt in (None, "102")) and len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


__all__ = [
    "INDEX",
    "Group",
    "Identifier",
    "Kind",
    "SelectorError",
    "Term",
    "check",
    "date_text",
    "resolve_group",
    "resolve_term",
    "siren_of",
    "siret_of",
]
