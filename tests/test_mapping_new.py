"""`edigw mapping new`: a starter mapping from a sample and a target, that passes `mapping check`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from edigw.cli import main
from edigw.mapping.sample import check_mappings, run_samples
from edigw.mapping.scaffold_text import scaffold

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"

#: Shipped samples whose scaffold, untouched, already maps every document to a payload the
#: contract accepts. The others need a consultant: a carrier code that is no column (GEODIS,
#: DB Schenker, Kuehne+Nagel send none: the shipped mappings use a constant), an OASIS example
#: without quantities, prices or dates, the OASIS invoice and credit note examples' VAT
#: categories from before EN 16931 (``AA``), PEPPOL line status codes (``3``, ``7``) and
#: payment means (``Credit Transfer``) that need a value map, a Factur-X MINIMUM without lines,
#: customers without a company name, shop exports whose order columns are only on the first
#: row, a CSV mixing header, line and VAT rows.
VALID_AS_SCAFFOLDED = {
    "crm-customers-xlsx/export_comptes_crm_20261128.xlsx",
    "ecommerce-orders-csv/commandes_20261128.csv",
    "ecommerce-orders-xml/order-feed-20261128-1600.xml",
    "ecommerceplus-quote-validations-csv/validations-devis-20261128.csv",
    "flat-supplier-confirmations-ent-lig/AR_20261127.txt",
    "flat-webshop-orders-csv/webshop-orders-20261128.csv",
    "supplier-confirmations-ubl/OrderResponse_sc4.xml",
    "supplier-confirmations-ubl/UBL-OrderResponse-2.1-Example.xml",
    "supplier-confirmations-xlsx/AR_commandes_visserie_du_rhone.xlsx",
    "supplier-credit-notes-ubl/AV-2026-0051_visserie-du-rhone.xml",
    "supplier-einvoices/Facture_FR_EN16931.pdf",
    "supplier-einvoices/cii-credit-note-381.xml",
    "supplier-einvoices/facture_cii.xml",
    "supplier-einvoices/ubl-21-en16931.xml",
    "supplier-einvoices/ubl-usd-prepaid-allowances.xml",
    "supplier-invoices-ubl/FV-2026-0588_visserie-du-rhone.xml",
}


def shipped_samples() -> list[tuple[Path, Path]]:
    return [
        (mapping, sample)
        for mapping in sorted((ROOT / "mappings").glob("*.yaml"))
        for sample in sorted(SAMPLES.glob(f"*/{mapping.stem}/*"))
        if sample.is_file() and sample.relative_to(SAMPLES).parts[0] != "bad"
    ]


CASES = [pytest.param(m, s, id=f"{s.parent.name}/{s.name}") for m, s in shipped_samples()]


def scaffold_for(mapping: Path, sample: Path, folder: Path) -> Path:
    """The scaffold of ``sample`` for the shipped mapping's target (and layout), in ``folder``."""
    data = yaml.safe_load(mapping.read_text(encoding="utf-8"))
    layout = data["source"].get("layout")
    if isinstance(layout, dict):  # an inline layout: as a file of its own
        (folder / "layout.yaml").write_text(yaml.safe_dump(layout), encoding="utf-8")
        layout = folder / "layout.yaml"
    elif layout is not None:
        layout = (mapping.parent / layout).resolve()
    out = folder / "new.yaml"
    text, _ = scaffold(sample, data["target"], out=out, layout=layout)
    out.write_text(text, encoding="utf-8")
    return out


@pytest.mark.parametrize(("mapping", "sample"), CASES)
def test_the_scaffold_of_every_shipped_sample_passes_mapping_check(
    tmp_path: Path, mapping: Path, sample: Path
) -> None:
    new = scaffold_for(mapping, sample, tmp_path)

    [result] = check_mappings([new], samples=[sample])

    assert result.problems == []


def test_these_shipped_samples_give_valid_documents_as_scaffolded(tmp_path: Path) -> None:
    valid = set()
    for index, (mapping, sample) in enumerate(shipped_samples()):
        folder = tmp_path / str(index)
        folder.mkdir()
        [result] = check_mappings([scaffold_for(mapping, sample, folder)])
        assert result.mapping is not None
        run = run_samples(result.mapping, sample)
        if run.documents and run.ok:
            valid.add(f"{sample.parent.name}/{sample.name}")
    assert valid >= VALID_AS_SCAFFOLDED
    assert len(shipped_samples()) == 37


ORDERS = (
    "N° commande;Date commande;Client;Réf article;Qté;Prix unitaire;Mode de paiement;"
    "Montant payé;Transaction;Payé le\n"
    "W-1;03/11/2026;C0001;ART-1;2;12,50;CB;30,00;TX-1;03/11/2026 10:15\n"
    "W-1;03/11/2026;C0001;ART-2;1;5,00;CB;30,00;TX-1;03/11/2026 10:15\n"
    "W-2;04/11/2026;C0002;ART-3;1;9,90;Chèque cadeau;9,90;TX-2;04/11/2026 08:00\n"
)


@pytest.fixture
def orders(tmp_path: Path) -> Path:
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS, encoding="utf-8")
    return path


def test_a_scaffold_matches_french_columns_with_their_formats(orders: Path) -> None:
    text, _ = scaffold(orders, "orders.create")
    lines = text.splitlines()

    for expected in [
        '  decimal: ","',
        "documents: {per: group, by: N° commande}  # consecutive rows sharing N° commande",
        "key: N° commande",
        "  external_reference: {from: N° commande, required: true}",
        '  order_date: {from: Date commande, type: date, format: "%d/%m/%Y", required: true}',
        "    each: records",
        "      quantity: {from: Qté, type: decimal, required: true}",
        "        map: {CB: CARD, Chèque cadeau: GIFT_CARD}",
        '      paid_at: {from: Payé le, type: datetime, format: "%d/%m/%Y %H:%M", required: true}',
        "  # delivery_address:  # TODO (optional): no column of the sample fits",
        "#   Qté               int                2, 1",
    ]:
        assert expected in lines


def test_a_required_field_no_column_fits_is_a_todo_that_fails_each_document(
    tmp_path: Path,
) -> None:
    sample = tmp_path / "rdv.csv"
    sample.write_text(
        "reference_rdv;commande;date_rdv;creneau\nR-1;CMD-1;02/12/2026;08:00-12:00\n",
        encoding="utf-8",
    )
    out = tmp_path / "rdv.yaml"
    text, _ = scaffold(sample, "delivery_notes.create", out=out)
    out.write_text(text, encoding="utf-8")

    assert (
        '  carrier_code: {expr: "none", required: true}  # TODO: no column of the sample fits; '
        "say where it comes from (from, value, expr)"
    ) in text.splitlines()
    assert "    expr: \"value.split('-')[1] | trim\"" in text.splitlines()  # slot_end
    [result] = check_mappings([out], samples=[sample])
    assert result.problems == []
    assert result.mapping is not None
    [document] = run_samples(result.mapping, sample).documents
    assert document["problems"] == [
        {
            "location": "rdv.csv:2",
            "pointer": "/carrier_code",
            "message": "required value missing (expression 'none' is empty)",
        }
    ]


# -- the command ---------------------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_mapping_new_writes_checks_and_tries_the_scaffold(tmp_path: Path, orders: Path) -> None:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "edigw-mapping.schema.json").write_text("{}", encoding="utf-8")
    out = tmp_path / "mappings" / "acme.yaml"

    code, stdout, stderr = invoke(
        "mapping", "new", "--sample", str(orders), "--target", "orders.create", "--out", str(out)
    )

    assert code == 0, stderr
    assert stdout == ""
    assert stderr.splitlines() == [
        f"Wrote {out}",
        "check: ok (acme.yaml -> orders.create)",
        "test: 2 document(s) from orders.csv: 2 valid, 0 with problems",
    ]
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=edigw-mapping.schema.json\n")
    assert f"#   edigw mapping check {out} --sample {orders}" in text


def test_mapping_new_without_out_prints_the_mapping(orders: Path) -> None:
    code, stdout, stderr = invoke(
        "mapping", "new", "--sample", str(orders), "--target", "orders.create"
    )

    assert code == 0, stderr
    assert yaml.safe_load(stdout)["target"] == "orders.create"
    assert "check: ok" in stderr


def test_mapping_new_lists_the_operations_when_the_target_is_wrong(orders: Path) -> None:
    code, _, stderr = invoke("mapping", "new", "--sample", str(orders), "--target", "order.create")

    assert code == 1
    assert stderr == (
        "Error: 'order.create' is not an Ecolix write operation a mapping can target; did you "
        "mean 'orders.create'? (operations: 'orders.create', 'delivery_notes.create', "
        "'customers.upsert', 'quotes.validate', 'purchase_orders.confirm', "
        "'supplier_invoices.create', 'supplier_invoices.attach', 'supplier_invoices.set_status')\n"
    )


def test_mapping_new_does_not_overwrite_a_mapping(tmp_path: Path, orders: Path) -> None:
    out = tmp_path / "acme.yaml"
    out.write_text("# mine\n", encoding="utf-8")

    code, _, stderr = invoke(
        "mapping", "new", "--sample", str(orders), "--target", "orders.create", "--out", str(out)
    )

    assert code == 1
    assert stderr == f"Error: {out} already exists (use --force to overwrite it)\n"
    assert out.read_text(encoding="utf-8") == "# mine\n"


def test_mapping_new_on_a_flat_file_asks_for_its_layout() -> None:
    sample = SAMPLES / "flat" / "flat-webshop-orders-csv" / "webshop-orders-20261128.csv"

    code, _, stderr = invoke("mapping", "new", "--sample", str(sample), "--target", "orders.create")

    assert code == 1
    assert "pass it with --layout" in stderr


def test_mapping_new_reads_an_einvoice_by_business_terms(tmp_path: Path) -> None:
    sample = SAMPLES / "supplier" / "supplier-invoices-ubl" / "FV-2026-0588_visserie-du-rhone.xml"
    out = tmp_path / "invoices.yaml"

    code, _, stderr = invoke(
        "mapping", "new", "--sample", str(sample), "--target", "supplier_invoices.create",
        "--out", str(out),
    )  # fmt: skip

    assert code == 0, stderr
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert data["source"] == {"format": "einvoice"}
    assert data["fields"]["totals"]["fields"]["gross"]["from"] == "totals.gross"
    assert data["fields"]["lines"]["each"] == "lines"
    assert "1 valid, 0 with problems" in stderr
