"""Words partners and Ecolix use for the same things, as data: how a scaffold matches names.

``edigw mapping new`` matches each Ecolix field to the sample's column (XPath, layout field,
business term) whose name means the same: ``qte``, ``Qté``, ``quantity`` and ``Menge`` are one
*concept*; ``N° commande`` and ``order_number`` share two. Names are cut into words (``snake_``
and ``camelCase``, XML prefixes dropped, accents folded), each word becomes its concept, and the
score is the share of the Ecolix field's concepts found in the column's name.

The tables are small on purpose: a consultant adds a word here when a partner's vocabulary is
missed, and the scaffold's tests show what it changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from edigw.suggest import closeness, fold

_CONCEPTS: dict[str, tuple[str, ...]] = {
    "ident": ("id", "ids", "identifiant", "identifier", "code", "cd", "num", "numero", "number",
              "no", "nr", "nro", "n", "ref", "reference", "referenz", "key", "nummer"),
    "customer": ("client", "customer", "cust", "acheteur", "buyer", "kunde", "account", "compte"),
    "supplier": ("fournisseur", "supplier", "fourn", "frs", "vendor", "seller", "vendeur",
                 "lieferant", "sellersupplierparty"),
    "article": ("article", "art", "sku", "item", "produit", "product", "prod", "ean", "gtin",
                "material", "artikel", "materiel"),
    "quantity": ("qte", "qty", "quantite", "quantity", "menge", "qt", "nb", "nombre"),
    "price": ("prix", "price", "pu", "tarif", "unitprice", "priceamount"),
    "unit": ("unit", "unitaire", "unitary", "u"),
    "amount": ("montant", "amount", "mt", "mnt", "somme", "total", "totals", "tot", "sum"),
    "order": ("commande", "cde", "cmd", "order", "bestellung", "po", "bc", "purchase"),
    "date": ("date", "dt", "le", "at", "jour", "day", "datum", "on"),
    "line": ("ligne", "lig", "line", "position", "pos", "detail"),
    "name": ("nom", "name", "raison", "sociale", "societe", "company", "denomination", "firma",
             "entreprise", "registrationname"),
    "description": ("description", "desc", "libelle", "designation", "label", "intitule"),
    "street": ("adresse", "address", "addr", "rue", "street", "voie", "strasse", "streetname"),
    "complement": ("complement", "adresse2", "suite", "additional", "additionalstreetname"),
    "postal": ("cp", "codepostal", "postal", "postcode", "zip", "zipcode", "plz", "postalzone"),
    "city": ("ville", "city", "town", "localite", "commune", "ort", "cityname"),
    "country": ("pays", "country", "land", "identificationcode"),
    "email": ("email", "mail", "courriel", "electronicmail"),
    "phone": ("telephone", "tel", "phone", "mobile", "portable", "telefon"),
    "vat": ("tva", "vat", "tax", "taxe", "ust", "intracom", "intracommunautaire", "mwst"),
    "siret": ("siret",),
    "payment": ("paiement", "payment", "pay", "reglement", "regl", "paye", "paid", "payer"),
    "method": ("mode", "method", "moyen", "means"),
    "transaction": ("transaction", "tx", "txn", "trans", "autorisation", "authorisation"),
    "terms": ("conditions", "condition", "terms", "term"),
    "carrier": ("transporteur", "carrier", "transport", "spediteur"),
    "appointment": ("rdv", "rendezvous", "rendez", "appointment", "booking", "reservation"),
    "slot": ("creneau", "slot", "window", "fenetre", "plage"),
    "start": ("debut", "start", "from", "begin"),
    "end": ("fin", "end", "to", "until"),
    "units": ("palettes", "pallets", "palette", "colis", "parcels", "handling", "units", "um",
              "handlingunits"),
    "confirmed": ("confirme", "confirmee", "confirmed", "conf", "accepte"),
    "ack": ("ar", "ack", "acknowledgement", "accuse", "confirmation", "response"),
    "delivery": ("livraison", "delivery", "liv", "livr", "lieferung", "shipto", "ship",
                 "promised"),
    "status": ("statut", "status", "etat", "state", "linestatuscode"),
    "type": ("type", "typ", "nature", "kind", "typecode"),
    "document": ("piece", "document", "doc"),
    "invoice": ("facture", "invoice", "fact", "fac", "rechnung", "billing"),
    "credit": ("avoir", "credit", "credited", "creditnote", "preceding", "origine", "origin",
               "original"),
    "issue": ("emission", "issue", "issued"),
    "due": ("echeance", "due", "exigibilite", "faelligkeit", "duedate"),
    "currency": ("devise", "currency", "monnaie", "waehrung", "cur", "ccy"),
    "net": ("ht", "net", "hors", "taxexclusive", "lineextension", "taxable"),
    "gross": ("ttc", "gross", "brut", "taxinclusive"),
    "rate": ("taux", "rate", "pct", "percent", "pourcentage"),
    "base": ("base", "assiette"),
    "validated": ("valide", "validation", "validated", "accepted", "signe", "signed"),
    "quote": ("devis", "quote", "offre", "angebot", "quotation"),
    "external": ("externe", "external", "ext"),
}  # fmt: skip

#: Stop words, dropped from names.
_STOP = frozenset({"de", "du", "des", "la", "les", "the", "of", "a", "en", "par", "pour", "d",
                   "l", "et", "and", "au", "aux", "by", "cac", "cbc", "per"})  # fmt: skip

CONCEPT_OF: Mapping[str, str] = MappingProxyType(
    {word: concept for concept, words in _CONCEPTS.items() for word in words}
)

#: Ecolix field names whose own words mislead (``line1`` is a street, not an order line), and
#: the words to match them by.
TARGET_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "line1": "street",
        "line2": "complement",
        "postal_code": "postal",
        "transaction_id": "transaction",
        "external_reference": "order ident",
        "booking_reference": "appointment ident",
        "order_number": "order ident",
        "customer_reference": "customer ident",
        "supplier_reference": "supplier ident ack",
        "paid_at": "payment date",
        "handling_units": "units",
        "confirmed_quantity": "quantity confirmed",
        "document_type": "type document",
        "credited_invoice": "credit invoice ident",
        "net_amount": "amount net",
        "validated_at": "validated date",
        "article_code": "article",
        "vat_number": "vat ident",
        "line_number": "line ident",
        "description": "description|name",
        "number": "ident document",
    }
)

#: Partner values and the Ecolix value they mean, for value maps (folded keys).
VALUE_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "cb": "CARD", "carte": "CARD", "carte bancaire": "CARD", "card": "CARD", "visa": "CARD",
        "mastercard": "CARD", "paypal": "PAYPAL", "virement": "TRANSFER", "vir": "TRANSFER",
        "transfer": "TRANSFER", "cheque": "CHEQUE", "chq": "CHEQUE", "carte cadeau": "GIFT_CARD",
        "cheque cadeau": "GIFT_CARD", "bon d'achat": "GIFT_CARD",
        "gift-card": "GIFT_CARD", "gift card": "GIFT_CARD", "giftcard": "GIFT_CARD",
        "acc": "accepted", "accepte": "accepted", "ok": "accepted", "nostatus": "accepted",
        "accepted": "accepted", "mod": "changed", "modifie": "changed", "revised": "changed",
        "ref": "rejected", "refuse": "rejected", "disputed": "rejected", "cancelled": "rejected",
        "annule": "rejected", "380": "invoice", "facture": "invoice", "fac": "invoice",
        "fa": "invoice", "inv": "invoice", "381": "credit_note", "avoir": "credit_note",
        "av": "credit_note", "cn": "credit_note", "credit": "credit_note",
        "comptant": "IMMEDIATE", "immediat": "IMMEDIATE", "a reception": "IMMEDIATE",
        "15 jours": "NET15", "30 jours": "NET30", "30 j": "NET30", "60 jours": "NET60",
        "30 jours fin de mois": "NET30EOM", "30 j fin de mois": "NET30EOM",
        "45 jours fin de mois": "NET45EOM", "45 j fin de mois": "NET45EOM",
        "france": "FR", "belgique": "BE", "belgium": "BE", "allemagne": "DE", "germany": "DE",
        "espagne": "ES", "spain": "ES", "italie": "IT", "italy": "IT", "suisse": "CH",
        "switzerland": "CH", "luxembourg": "LU", "pays-bas": "NL", "netherlands": "NL",
        "royaume-uni": "GB", "united kingdom": "GB", "portugal": "PT",
    }
)  # fmt: skip

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[a-z0-9]+")

Words = list[tuple[str, float]]  # (concept, weight)
CONTEXT = 0.4  # the weight of a parent's concept in a field's words


def words(name: str, *, context: float = 0.6) -> Words:
    """A name's concepts with weights: its last step's 1, earlier steps' ``context``.

    ``cac:Item/cbc:Name`` gives ``[(article, 0.6), (name, 1.0)]``; ``N° commande`` gives
    ``[(ident, 1.0), (order, 1.0)]``; ``seller.vat_id`` gives ``[(supplier, 0.6), (vat, 1),
    (ident, 1)]``.
    """
    steps = [s for s in re.split(r"[/.]", name) if s]
    out: Words = []
    for position, step in enumerate(steps):
        weight = 1.0 if position == len(steps) - 1 else context
        step = re.sub(r"^@", "", step.split(":", 1)[-1])
        for word in _WORD.findall(fold(_CAMEL.sub(" ", step))):
            if word in _STOP:
                continue
            if word.isdigit():
                continue
            concept = (
                CONCEPT_OF.get(word)
                or CONCEPT_OF.get(word.rstrip("s"))
                or CONCEPT_OF.get(word.rstrip("0123456789"))
                or word
            )
            out.append((concept, weight))
    merged: dict[str, float] = {}
    for concept, weight in out:
        merged[concept] = max(merged.get(concept, 0.0), weight)
    return list(merged.items())


def target_words(name: str, context: Sequence[str] = ()) -> Words:
    """An Ecolix field's concepts: its own (or ``TARGET_WORDS``') at 1 (``ident``, which says
    little, at 0.5), then its parents' at 0.4 (context: a bonus when found, no loss when not).

    A field that is only an identifier (``supplier.code``) identifies its parent: the parent's
    concepts are then its own. ``a|b`` in ``TARGET_WORDS`` matches either word.
    """
    text = TARGET_WORDS.get(name, name)
    own: Words = []
    for part in text.split():
        if "|" in part:
            alternatives = [c for alt in part.split("|") for c, _ in words(alt)]
            own.append(("|".join(dict.fromkeys(alternatives)), 1.0))
            continue
        own.extend((c, 0.5 if c == "ident" else 1.0) for c, _ in words(part))
    bare = all(c == "ident" for c, _ in own)
    seen = {c for c, _ in own}
    for parent in context:
        for concept, _ in words(TARGET_WORDS.get(parent, parent)):
            if concept not in seen:
                own.append((concept, 1.0 if bare else CONTEXT))
                seen.add(concept)
    return own


def name_score(target: Words, source: Words) -> float:
    """0..1: how much of ``target``'s meaning ``source``'s name carries (and nothing else).

    The field's own concepts make the score; its context (the parent object: ``delivery`` of
    ``delivery_address.city``) adds up to 15 %; a word of the column that means nothing to the
    field costs up to 25 %.
    """
    if not target or not source:
        return 0.0
    used: set[str] = set()

    def found(concepts: Words) -> float:
        total = 0.0
        for concept, weight in concepts:
            best = 0.0
            for other, other_weight in source:
                if other == concept or other in concept.split("|"):
                    hit = other_weight
                elif len(concept) > 3 and len(other) > 3 and closeness(concept, other) >= 0.85:
                    hit = 0.8 * other_weight
                else:
                    continue
                if hit > best:
                    best = hit
                    used.add(other)
            total += weight * best
        return total

    main = [(c, w) for c, w in target if w > CONTEXT]
    context = [(c, w) for c, w in target if w == CONTEXT]
    main_found = found(main) / sum(w for _, w in main) if main else 0.0
    if not main_found:
        return 0.0
    context_found = found(context) / sum(w for _, w in context) if context else 0.0
    own = sum(w for c, w in source if w == 1.0)
    extra = sum(w for c, w in source if w == 1.0 and c not in used)
    penalty = 0.75 + 0.25 * (1 - extra / own if own else 1)
    return min(1.0, main_found * penalty * (0.85 + 0.15 * context_found))
