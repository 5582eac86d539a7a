"""Who sent a supplier invoice: French company numbers checked, the supplier found from any
identifier the invoice gives.

An e-invoice names its seller by SIREN or SIRET, VAT number or electronic address (BT-34
with its scheme), rarely by the buyer's own supplier code; Ecolix finds the supplier from
whichever it holds, without a lookup table. Identifiers it does not hold for the supplier are
no reason to refuse (a SIRET of another establishment, an address never recorded), but
identifiers that point at different suppliers are, and so is an invoice none of whose
identifiers Ecolix knows: that refusal names every identifier tried, so the buyer can
register the supplier with one of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edigw.sandbox.rules import BusinessRuleError, Pointed, rule_broken

#: La Poste's SIREN: its establishments' SIRETs do not follow Luhn (INSEE's exception);
#: theirs is valid when the sum of its digits is a multiple of 5.
LA_POSTE_SIREN = "356000000"

#: The identifiers a request may give, in the order they are reported.
IDENTIFIERS = ("code", "siren", "siret", "vat_number", "electronic_address")
_LABELS = {
    "code": "code",
    "siren": "SIREN",
    "siret": "SIRET",
    "vat_number": "VAT number",
    "electronic_address": "electronic address",
}


def luhn_valid(digits: str) -> bool:
    """The Luhn check (ISO/IEC 7812) SIREN and SIRET numbers carry in their last digit."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def siren_problem(value: str) -> str | None:
    """Why ``value`` is no SIREN (9 digits, Luhn), or None."""
    if len(value) != 9 or not value.isdigit():
        return f"{value!r} is no SIREN: 9 digits expected"
    if not luhn_valid(value):
        return f"SIREN {value} has a wrong check digit (Luhn): a typing error?"
    return None


def siret_problem(value: str) -> str | None:
    """Why ``value`` is no SIRET (14 digits, Luhn; La Poste: digit sum a multiple of 5)."""
    if len(value) != 14 or not value.isdigit():
        return f"{value!r} is no SIRET: 14 digits expected"
    if value.startswith(LA_POSTE_SIREN):
        if sum(int(c) for c in value) % 5 == 0:
            return None
        return (
            f"SIRET {value} (La Poste) has a wrong check digit: the sum of its digits must be "
            "a multiple of 5"
        )
    if not luhn_valid(value):
        return f"SIRET {value} has a wrong check digit (Luhn): a typing error?"
    return None


def identifier_problems(given: Mapping[str, Any], pointer: str) -> list[Pointed]:
    """Check digits of the SIREN and SIRET a party is given with."""
    problems = []
    if "siren" in given and (why := siren_problem(str(given["siren"]))):
        problems.append(Pointed(f"{pointer}/siren", why))
    if "siret" in given and (why := siret_problem(str(given["siret"]))):
        problems.append(Pointed(f"{pointer}/siret", why))
    return problems


def compact_vat(value: str) -> str:
    """A VAT number as compared: upper case, without spaces, dots or dashes."""
    return "".join(c for c in value.upper() if c.isalnum())


def describe(key: str, value: Any) -> str:
    """An identifier for people: ``SIRET 12345678200077``, ``electronic address 0225:...``."""
    if key == "electronic_address":
        return f"electronic address {value['scheme']}:{value['id']}"
    return f"{_LABELS[key]} {value}"


def _matches(key: str, value: Any, supplier: Mapping[str, Any]) -> bool:
    if key == "code":
        return bool(supplier.get("code") == value)
    if key == "siret":
        return bool(supplier.get("siret") == value)
    if key == "siren":
        own = supplier.get("siren") or (supplier.get("siret") or "")[:9]
        return bool(own == value)
    if key == "vat_number":
        own = supplier.get("vat_number")
        return own is not None and compact_vat(own) == compact_vat(str(value))
    scheme, ident = str(value["scheme"]), str(value["id"]).strip().lower()
    return any(
        a.get("scheme") == scheme and str(a.get("id", "")).strip().lower() == ident
        for a in supplier.get("electronic_addresses") or []
    )


def resolve_supplier(
    given: Mapping[str, Any], suppliers: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any]:
    """The one supplier the request's identifiers designate (``given``: the ``supplier``
    object of the request; ``suppliers``: every supplier Ecolix holds).

    Each identifier designates the suppliers it matches; those that match none are set
    aside (kept on the invoice, not held against it), except Ecolix's own ``code``. The
    supplier is the one every matching identifier agrees on.
    """
    problems = identifier_problems(given, "/supplier")
    if problems:
        raise rule_broken(problems, "Invalid supplier identifier")
    tried = [key for key in IDENTIFIERS if key in given]
    found = {key: [s for s in suppliers if _matches(key, given[key], s)] for key in tried}
    if "code" in given and not found["code"]:
        raise rule_broken(
            [Pointed("/supplier/code", f"no supplier with code {given['code']!r}")],
            "Unknown supplier",
        )
    matching = {key: hits for key, hits in found.items() if hits}
    if not matching:
        names = ", ".join(describe(key, given[key]) for key in tried)
        who = f" ({given['name']})" if given.get("name") else ""
        raise BusinessRuleError(
            422,
            "business-rule",
            "Unknown supplier",
            [
                Pointed(f"/supplier/{key}", f"no supplier has {describe(key, given[key])}")
                for key in tried
            ],
            detail=(
                f"no Ecolix supplier has any of the identifiers of this invoice's seller{who}: "
                f"{names}; register the supplier with one of them"
            ),
        )
    common = None
    for hits in matching.values():
        codes = {str(s["code"]) for s in hits}
        common = codes if common is None else common & codes
    assert common is not None
    if not common:
        said = "; ".join(
            f"{describe(key, given[key])} is {', '.join(sorted(str(s['code']) for s in hits))}"
            for key, hits in matching.items()
        )
        raise rule_broken(
            [Pointed("/supplier", f"the identifiers designate different suppliers: {said}")],
            "Ambiguous supplier",
        )
    if len(common) > 1:
        keys = ", ".join(describe(key, given[key]) for key in matching)
        raise rule_broken(
            [
                Pointed(
                    "/supplier",
                    f"{keys} designates several suppliers ({', '.join(sorted(common))}): "
                    "give the SIRET or the supplier code",
                )
            ],
            "Ambiguous supplier",
        )
    (code,) = common
    return next(s for s in suppliers if s["code"] == code)
