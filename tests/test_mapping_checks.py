"""`edigw mapping check` catches what would fail on every file, each problem on one located line.

Each case starts from a mapping that passes and breaks one thing; the check must report
exactly that, with its line, its key and the candidates (the nearest first).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from textwrap import dedent

import pytest
from click.testing import CliRunner

from edigw.cli import main
from edigw.mapping.sample import check_mappings

ROOT = Path(__file__).resolve().parent.parent

CUSTOMERS = """\
source: {format: csv, delimiter: ";", columns: [code, name, street, zip, city, terms, since]}
documents: {per: record}
target: customers.upsert
key: code
fields:
  code: {from: code, case: upper}
  name: {expr: "record.name | upper"}
  payment_terms: {from: terms, map: {"30": NET30}, on_miss: default, default: IMMEDIATE}
  billing_address:
    fields:
      line1: street
      postal_code: zip
      city: city
      country: {value: FR}
"""

ORDERS = """\
source: {format: csv, delimiter: ";", decimal: ","}
documents: {per: group, by: order}
target: orders.create
key: order
fields:
  customer_code: customer
  external_reference: order
  order_date: {from: date, type: date, format: "%d/%m/%Y"}
  lines:
    each: records
    fields:
      article_code: sku
      quantity: {from: qty, type: decimal}
  payment:
    fields:
      method: {from: paid_by, map: {CB: CARD}}
      amount: {from: total, type: decimal}
      transaction_id: tx
      paid_at: {from: paid_at, type: datetime, format: "%d/%m/%Y %H:%M"}
"""


def problems_of(tmp_path: Path, text: str, *, samples: list[Path] | None = None) -> list[str]:
    path = tmp_path / "m.yaml"
    path.write_text(dedent(text), encoding="utf-8")
    [result] = check_mappings([path], samples=samples or [])
    return result.problems


def test_the_starting_mappings_pass(tmp_path: Path) -> None:
    assert problems_of(tmp_path, CUSTOMERS) == []
    assert problems_of(tmp_path, ORDERS) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            CUSTOMERS.replace('"record.name | upper"', '"rnage(3) ~ record.name"'),
            "m.yaml:7 fields.name.expr: unknown function 'rnage' in expression "
            "'rnage(3) ~ record.name'; did you mean 'range'? (functions: 'range', 'cycler', "
            "'dict', 'joiner', 'lookup', 'namespace', 'round_half_even', 'round_half_up')",
            id="unknown-function",
        ),
        pytest.param(
            CUSTOMERS.replace("| upper", "| uper"),
            "m.yaml:7 fields.name.expr: unknown filter 'uper' in expression 'record.name | uper'"
            "; did you mean 'upper'? (filters: 'upper', 'abs', 'attr', 'batch', 'capitalize', "
            "'center', 'count', 'd', 'decimal', 'default', 'dictsort', 'e', 'escape', "
            "'filesizeformat', 'fingerprint', 'first', 'float', 'forceescape', 'format', "
            "'groupby', 'indent', 'int', 'items', 'join', 'last' and 31 more)",
            id="unknown-filter",
        ),
        pytest.param(
            CUSTOMERS.replace('"record.name | upper"', "\"'x' if record.name is strnig\""),
            "m.yaml:7 fields.name.expr: unknown test 'strnig' in expression "
            "\"'x' if record.name is strnig\"; did you mean 'string'? (tests: 'string', '!=', "
            "'<', '<=', '==', '>', '>=', 'boolean', 'callable', 'defined', 'divisibleby', 'eq', "
            "'equalto', 'escaped', 'even', 'false', 'filter', 'float', 'ge', 'greaterthan', "
            "'gt', 'in', 'integer', 'iterable', 'le' and 14 more)",
            id="unknown-test",
        ),
        pytest.param(
            CUSTOMERS.replace('"record.name | upper"', '"recrod.name"'),
            "m.yaml:7 fields.name.expr: unknown name 'recrod' in expression 'recrod.name'; "
            "did you mean 'record'? (names here: 'record', 'records', 'value')",
            id="unknown-name",
        ),
        pytest.param(
            CUSTOMERS.replace("line1: street", "line1: stret"),
            "m.yaml:11 fields.billing_address.fields.line1.from: column 'stret' is not in the "
            "columns given in source.columns; did you mean 'street'? (columns: 'street', "
            "'code', 'name', 'zip', 'city', 'terms', 'since')",
            id="unknown-column-given-in-columns",
        ),
        pytest.param(
            CUSTOMERS.replace("record.name", "record['nmae']"),
            "m.yaml:7 fields.name.expr: column 'nmae' is not in the columns given in "
            "source.columns; did you mean 'name'? (columns: 'name', 'code', 'street', 'zip', "
            "'city', 'terms', 'since')",
            id="unknown-column-in-expression",
        ),
        pytest.param(
            CUSTOMERS.replace("postal_code: zip", "postal_code: {from: zip, type: decimall}"),
            'm.yaml:12 fields.billing_address.fields.postal_code.type: "decimall" is not one '
            'of "decimal", "string", "int", "date", "datetime" or "bool"; did you mean '
            '"decimal"?',
            id="misspelt-type",
        ),
        pytest.param(
            CUSTOMERS.replace("{from: code, case: upper}", "{from: code, cas: upper}"),
            "m.yaml:6 fields.code.cas: unknown key 'cas'; did you mean 'case'? (known keys: "
            "'case', 'description', 'from', 'value', 'answer', 'original', 'expr', 'type', "
            "'format', 'decimal', "
            "'thousands', 'scale', 'true_values', 'false_values', 'required', 'default', "
            "'trim', 'map', 'lookup', 'on_miss', 'when', 'fields', 'each')",
            id="misspelt-key",
        ),
        pytest.param(
            CUSTOMERS.replace("      country: {value: FR}\n", ""),
            "m.yaml:10 fields.billing_address.fields: 'country' is required by "
            "customers.upsert /billing_address but not mapped: every document would be refused",
            id="required-target-field-unmapped",
        ),
        pytest.param(
            CUSTOMERS + "  emial: {value: a@b.example}\n",
            "m.yaml:15 fields.emial: 'emial' is not a field of customers.upsert; did you mean "
            "'email'? (fields: 'email', 'code', 'name', 'siret', 'vat_number', 'phone', "
            "'billing_address', 'delivery_addresses', 'payment_terms', 'if_exists')",
            id="unknown-target-field",
        ),
        pytest.param(
            CUSTOMERS.replace("postal_code: zip", "postal_code: {from: zip, type: int}"),
            "m.yaml:12 fields.billing_address.fields.postal_code.type: customers.upsert "
            "/billing_address/postal_code wants text, but type int gives a whole number: use "
            "type: string",
            id="type-gives-a-number-where-text-is-wanted",
        ),
        pytest.param(
            CUSTOMERS.replace("{value: FR}", "{value: FRA}"),
            "m.yaml:14 fields.billing_address.fields.country.value: 'FRA' would be refused by "
            'Ecolix at customers.upsert /billing_address/country: "FRA" does not match '
            '"^[A-Z]{2}$"',
            id="constant-refused-by-ecolix",
        ),
        pytest.param(
            CUSTOMERS.replace('"30": NET30', '"45": NET45'),
            "m.yaml:8 fields.payment_terms.map.45: 'NET45' would be refused by Ecolix at "
            "customers.upsert /payment_terms: not one of 'NET45EOM', 'NET15', 'NET30', 'NET60', "
            "'IMMEDIATE' or 'NET30EOM'; did you mean 'NET45EOM'?",
            id="value-map-result-refused-by-ecolix",
        ),
        pytest.param(
            CUSTOMERS.replace("default: IMMEDIATE", "default: NOW"),
            "m.yaml:8 fields.payment_terms.default: 'NOW' would be refused by Ecolix at "
            "customers.upsert /payment_terms: not one of 'IMMEDIATE', 'NET15', 'NET30', "
            "'NET30EOM', 'NET45EOM' or 'NET60'",
            id="default-refused-by-ecolix",
        ),
        pytest.param(
            CUSTOMERS.replace(
                "      line1: street\n", "      line1: street\n      line2: {fields: {a: b}}\n"
            ),
            "m.yaml:12 fields.billing_address.fields.line2: customers.upsert "
            "/billing_address/line2 is one text value, not an object",
            id="object-where-ecolix-wants-a-value",
        ),
    ],
)
def test_a_customers_mapping_problem_is_reported_on_its_line(
    tmp_path: Path, body: str, expected: str
) -> None:
    assert problems_of(tmp_path, body) == [expected]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            ORDERS.replace(
                "quantity: {from: qty, type: decimal}", "quantity: {from: qty, type: int}"
            ),
            "m.yaml:13 fields.lines.fields.quantity.type: orders.create /lines/*/quantity wants "
            "text, but type int gives a whole number: use type: decimal",
            id="int-where-a-decimal-text-is-wanted",
        ),
        pytest.param(
            ORDERS.replace("type: date, format", "type: datetime, format"),
            "m.yaml:8 fields.order_date.type: orders.create /order_date wants a date "
            "(YYYY-MM-DD), but type datetime gives a date-time as text: use type: date",
            id="datetime-where-a-date-is-wanted",
        ),
        pytest.param(
            ORDERS.replace(
                '{from: date, type: date, format: "%d/%m/%Y"}',
                '{from: date, type: date, expr: "value | round(2)"}',
            ),
            "m.yaml:8 fields.order_date.expr: expression 'value | round(2)' gives a number, but "
            "the field's type is date (a number is read as an Excel day number)",
            id="decimal-function-on-a-date-field",
        ),
        pytest.param(
            ORDERS.replace(
                "amount: {from: total, type: decimal}",
                "amount: {expr: \"record.total > '0'\", type: decimal}",
            ),
            "m.yaml:17 fields.payment.fields.amount.expr: expression \"record.total > '0'\" gives "
            "true/false, which type decimal cannot convert",
            id="comparison-into-a-decimal-field",
        ),
        pytest.param(
            ORDERS.replace("each: records", "each: lines"),
            "m.yaml:10 fields.lines.each: CSV rows have no nested records, so this list would "
            "always be empty: a list of the document's rows is `each: records`",
            id="csv-list-of-nested-records",
        ),
        pytest.param(
            ORDERS.replace(
                "method: {from: paid_by, map: {CB: CARD}}",
                "method: {from: paid_by, map: {CB: CART}}",
            ),
            "m.yaml:16 fields.payment.fields.method.map.CB: 'CART' would be refused by Ecolix "
            "at orders.create /payment/method: not one of 'CARD', 'PAYPAL', 'TRANSFER', 'CHEQUE' "
            "or 'GIFT_CARD'; did you mean 'CARD'?",
            id="value-map-to-an-unknown-enum-value",
        ),
    ],
)
def test_an_orders_mapping_problem_is_reported_on_its_line(
    tmp_path: Path, body: str, expected: str
) -> None:
    assert problems_of(tmp_path, body) == [expected]


def test_an_unknown_target_key_and_the_required_one_it_misses_are_both_reported(
    tmp_path: Path,
) -> None:
    # (payment is optional since a buyer's order may be on account: lines are misspelt here)
    assert problems_of(tmp_path, ORDERS.replace("  lines:\n", "  lignes:\n")) == [
        "m.yaml:5 fields: 'lines' is required by orders.create but not mapped: every "
        "document would be refused",
        "m.yaml:9 fields.lignes: 'lignes' is not a field of orders.create; did you mean "
        "'lines'? (fields: 'lines', 'customer_code', 'external_reference', 'order_date', "
        "'currency', 'prices_include_vat', 'delivery_address', 'payment', 'discount', "
        "'shipping', 'billing_address', 'customer_note')",
    ]


def test_an_unknown_filter_is_reported_once_with_its_candidates(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, CUSTOMERS.replace("| upper", "| uper"))
    assert len(problems) == 1
    assert "No filter named" not in problems[0]


# -- what the source declares: flat-file layouts and e-invoice terms ----------------------

FLAT = """\
source: {format: flat-delimited, layout: LAYOUT, decimal: ","}
target: purchase_orders.confirm
documents: {per: record}
key: our_order
fields:
  number: our_order
  supplier_reference: supplier_ack
  lines:
    each: LIG
    fields:
      line_number: {from: line_number, type: int}
      confirmed_quantity: {from: quantity, type: decimal}
      unit_price: {from: unit_price, type: decimal}
      delivery_date: {from: delivery_date, type: date, format: "%Y%m%d"}
      status: {from: status, map: {ACC: accepted, MOD: changed, REF: rejected}}
"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            FLAT.replace("supplier_reference: supplier_ack", "supplier_reference: quantity"),
            "m.yaml:7 fields.supplier_reference.from: field 'quantity' is not in record ENT of "
            "layout supplier-ent-lig.yaml: it is a field of LIG; read it inside a list "
            "`each: LIG`",
            id="a-line-field-read-from-the-header",
        ),
        pytest.param(
            FLAT.replace("supplier_reference: supplier_ack", "supplier_reference: supplier_akc"),
            "m.yaml:7 fields.supplier_reference.from: field 'supplier_akc' is not in record ENT of "
            "layout supplier-ent-lig.yaml; did you mean 'supplier_ack'? (fields: 'supplier_ack', "
            "'supplier_code', 'type', 'our_order', 'ack_date')",
            id="misspelt-layout-field",
        ),
        pytest.param(
            FLAT.replace("each: LIG", "each: FIN"),
            "m.yaml:9 fields.lines.each: 'FIN' is no record type nested in ENT (layout "
            "supplier-ent-lig.yaml) (nested record types: 'LIG', 'lines')",
            id="each-on-a-record-type-that-is-not-nested",
        ),
    ],
)
def test_a_flat_file_mapping_reads_what_its_layout_declares(
    tmp_path: Path, body: str, expected: str
) -> None:
    layout = ROOT / "layouts" / "supplier-ent-lig.yaml"
    problems = problems_of(tmp_path, body.replace("LAYOUT", str(layout)))
    assert problems == [expected]


def test_an_einvoice_line_term_read_at_the_top_is_reported(tmp_path: Path) -> None:
    text = (ROOT / "tests" / "data" / "mapping" / "einvoices-supplier-invoices.yaml").read_text()
    text = text.replace("number: {from: BT-1, required: true}", "number: {from: line.id}")
    assert problems_of(tmp_path, text) == [
        "m.yaml:15 fields.number.from: BT-126 line.id belongs to BG-25 lines, but is read from "
        "the invoice: read it inside a list `each: lines`"
    ]


def test_a_lookup_table_without_the_key_column_names_the_close_one(tmp_path: Path) -> None:
    (tmp_path / "articles.csv").write_text("partner_sku;ecolix_code\nA;ART-1\n")
    body = ORDERS.replace(
        "article_code: sku",
        "article_code: {from: sku, lookup: {table: articles.csv, key: sku, value: ecolix_code}}",
    )
    assert problems_of(tmp_path, body) == [
        f"m.yaml:12 fields.lines.fields.article_code.lookup.table: {tmp_path / 'articles.csv'}"
        ":1: key column 'sku' not found in the table's header; did you mean 'partner_sku'? "
        "(columns: 'partner_sku', 'ecolix_code')"
    ]


# -- what a sample says: CSV and Excel headers, XML elements -------------------------------


def test_a_column_missing_from_the_sample_header_is_reported_with_the_close_one(
    tmp_path: Path,
) -> None:
    sample = tmp_path / "orders.csv"
    sample.write_text(
        "order;date;customer;sku;quantité;paid_by;total;tx;paid_at\n"
        "W-1;03/11/2026;C1;A;2;CB;10,00;T1;03/11/2026 10:00\n",
        encoding="utf-8",
    )
    assert problems_of(tmp_path, ORDERS, samples=[sample]) == [
        "m.yaml:13 fields.lines.fields.quantity.from: column 'qty' is not in the header of "
        "sample orders.csv (columns: 'order', 'date', 'customer', 'sku', 'quantité', 'paid_by', "
        "'total', 'tx', 'paid_at')"
    ]


def test_a_sample_separated_otherwise_says_which_delimiter(tmp_path: Path) -> None:
    sample = tmp_path / "orders.csv"
    sample.write_text("order,date,customer\nW-1,03/11/2026,C1\n", encoding="utf-8")
    problems = problems_of(tmp_path, ORDERS, samples=[sample])
    assert problems[0] == (
        "m.yaml:1 source.delimiter: sample orders.csv is separated by ',', not ';': set "
        "delimiter: ','"
    )


def test_a_typo_in_a_column_among_56_lists_the_nearest_first(tmp_path: Path) -> None:
    names = [f"colonne_{i:02d}" for i in range(55)] + ["quantite"]
    sample = tmp_path / "wide.csv"
    sample.write_text(";".join(names) + "\n" + ";".join("1" for _ in names) + "\n")
    body = CUSTOMERS.replace(
        "columns: [code, name, street, zip, city, terms, since]", "encoding: utf-8"
    ).replace("line1: street", "line1: quantitee")
    problems = [p for p in problems_of(tmp_path, body, samples=[sample]) if "quantitee" in p]
    assert problems == [
        "m.yaml:11 fields.billing_address.fields.line1.from: column 'quantitee' is not in the header "
        "of sample wide.csv; did you mean 'quantite'? (columns: 'quantite', "
        + ", ".join(repr(n) for n in names[:24])
        + " and 31 more)"
    ]


XML = """\
source:
  format: xml
  document_path: /o:Orders/o:Order
  namespaces: {o: "urn:example:orders"}
documents: {per: element}
target: quotes.validate
key: o:Number
fields:
  number: o:Numbr
  customer_reference: {expr: "record['o:Ref'] or record['o:Reference']"}
"""


def test_an_element_missing_from_an_xml_sample_is_reported_unless_read_as_a_fallback(
    tmp_path: Path,
) -> None:
    sample = tmp_path / "orders.xml"
    sample.write_text(
        '<Orders xmlns="urn:example:orders"><Order><Number>Q-1</Number>'
        '<Customer code="C1"/></Order></Orders>'
    )
    assert problems_of(tmp_path, XML, samples=[sample]) == [
        "m.yaml:9 fields.number.from: 'o:Numbr' is no element or attribute of sample orders.xml at "
        "/o:Orders/o:Order; did you mean 'o:Number'? (paths: 'o:Number', 'o:Customer', "
        "'o:Customer/@code')"
    ]


def test_a_document_path_that_matches_nothing_in_the_sample_says_what_would(
    tmp_path: Path,
) -> None:
    sample = tmp_path / "orders.xml"
    sample.write_text(
        '<Orders xmlns="urn:example:orders"><Quote><Number>Q-1</Number></Quote>'
        "<Quote><Number>Q-2</Number></Quote></Orders>"
    )
    assert problems_of(tmp_path, XML, samples=[sample]) == [
        "m.yaml:3 source.document_path: matches no element of sample orders.xml; did you mean "
        "/o:Orders/o:Quote?"
    ]


def test_an_excel_column_is_checked_against_the_sample_header_row(tmp_path: Path) -> None:
    sample = ROOT / "samples" / "crm" / "crm-customers-xlsx" / "export_comptes_crm_20261128.xlsx"
    text = (ROOT / "mappings" / "crm-customers-xlsx.yaml").read_text(encoding="utf-8")
    shutil.copytree(ROOT / "mappings" / "lookups", tmp_path / "lookups")
    text = text.replace("from: Raison sociale", "from: Raison socaile")
    problems = problems_of(tmp_path, text, samples=[sample])
    assert len(problems) == 1
    assert problems[0].endswith(
        "fields.name.from: column 'Raison socaile' is not in the header row 3 of sample "
        "export_comptes_crm_20261128.xlsx; did you mean 'Raison sociale'? (columns: 'Raison "
        "sociale', 'Code client', 'SIRET', 'N° TVA intracom.', 'E-mail', 'Téléphone', "
        "'Adresse', 'Code postal', 'Ville', 'Pays', 'Conditions de paiement', 'Client depuis')"
    )


def test_without_a_header_columns_are_numbered(tmp_path: Path) -> None:
    body = CUSTOMERS.replace(
        "columns: [code, name, street, zip, city, terms, since]", "header: false"
    )
    body = body.replace("{from: code, case: upper}", '{from: "1", case: upper}').replace(
        "key: code", 'key: "1"'
    )
    body = body.replace("record.name", "record['2']").replace("street", '"3"')
    body = (
        body.replace("zip", '"4"')
        .replace("city: city", 'city: "5"')
        .replace("from: terms", "from: terms_col")
    )
    assert problems_of(tmp_path, body) == [
        "m.yaml:8 fields.payment_terms.from: column 'terms_col': without a header (header: "
        'false) columns are numbered "1", "2", ...; or name them in source.columns'
    ]


# -- the command ---------------------------------------------------------------------------


def test_mapping_check_with_a_sample_fails_with_one_line_per_problem(tmp_path: Path) -> None:
    sample = tmp_path / "orders.csv"
    sample.write_text(
        "order;date;customer;sku;quantite;paid_by;total;tx;paid_at\n"
        "W-1;03/11/2026;C1;A;2;CB;10,00;T1;03/11/2026 10:00\n",
        encoding="utf-8",
    )
    mapping = tmp_path / "m.yaml"
    mapping.write_text(ORDERS, encoding="utf-8")

    result = CliRunner().invoke(main, ["mapping", "check", str(mapping), "--sample", str(sample)])

    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"FAIL {mapping}",
        "  m.yaml:13 fields.lines.fields.quantity.from: column 'qty' is not in the header of "
        "sample orders.csv (columns: 'order', 'date', 'customer', 'sku', 'quantite', "
        "'paid_by', 'total', 'tx', 'paid_at')",
    ]
    assert result.stderr == "Error: 1 of 1 mapping file(s) have problems\n"


def test_every_shipped_mapping_passes_the_checks_with_its_samples() -> None:
    for mapping in sorted((ROOT / "mappings").glob("*.yaml")):
        samples = sorted(
            p
            for p in (ROOT / "samples").glob(f"*/{mapping.stem}/*")
            if p.is_file() and p.relative_to(ROOT / "samples").parts[0] != "bad"
        )
        [result] = check_mappings([mapping], samples=samples)
        assert result.problems == [], mapping.name


def test_at_run_time_a_missing_csv_column_also_says_which_one_was_meant(tmp_path: Path) -> None:
    from edigw.mapping import load_mapping
    from edigw.mapping.sample import run_samples

    sample = tmp_path / "orders.csv"
    sample.write_text(
        "order;date;customer;sku;qte;paid_by;total;tx;paid_at\n"
        "W-1;03/11/2026;C1;A;2;CB;10,00;T1;03/11/2026 10:00\n",
        encoding="utf-8",
    )
    mapping = tmp_path / "m.yaml"
    mapping.write_text(ORDERS, encoding="utf-8")

    run = run_samples(load_mapping(mapping), sample)

    assert run.documents == [
        {
            "file": "orders.csv",
            "error": "orders.csv:1: column 'qty' not found in the header at line 1; did you mean "
            "'qte'? (columns: 'qte', 'order', 'date', 'customer', 'sku', 'paid_by', 'total', "
            "'tx', 'paid_at')",
        }
    ]


def test_a_sample_checks_one_mapping_at_a_time(tmp_path: Path) -> None:
    sample = tmp_path / "orders.csv"
    sample.write_text("order;date\nW-1;03/11/2026\n", encoding="utf-8")

    result = CliRunner().invoke(
        main, ["mapping", "check", str(ROOT / "mappings"), "--sample", str(sample)]
    )

    assert result.exit_code == 1
    assert result.stderr == "Error: --sample checks one mapping: name one mapping file\n"


def test_a_sample_the_mapping_cannot_read_is_reported_on_the_source(tmp_path: Path) -> None:
    body = CUSTOMERS.replace(
        'source: {format: csv, delimiter: ";", columns: [code, name, street, zip, city, terms, since]}',
        "source: {format: xlsx, sheet: Comptes}",
    )
    sample = (
        ROOT
        / "samples"
        / "supplier"
        / "supplier-confirmations-xlsx"
        / "AR_commandes_visserie_du_rhone.xlsx"
    )

    assert problems_of(tmp_path, body, samples=[sample]) == [
        "m.yaml:1 source: sample AR_commandes_visserie_du_rhone.xlsx: sheet 'Comptes' not found "
        "(sheets: 'Confirmations')"
    ]
