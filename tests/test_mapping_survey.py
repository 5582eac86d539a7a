"""What a sample holds: types and formats guessed from values, reader options detected."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from edigw.mapping.guess import guess
from edigw.mapping.survey import SurveyError, survey_csv, survey_sample, survey_xlsx
from edigw.mapping.survey_xml import survey_xml
from edigw.mapping.vocabulary import name_score, target_words, words
from tests.support import hostile

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


@pytest.mark.parametrize(
    ("values", "kind", "fmt", "decimal"),
    [
        pytest.param(["03/11/2026", "28/02/2027"], "date", "%d/%m/%Y", None, id="french-date"),
        pytest.param(["2026-11-03"], "date", None, None, id="iso-date"),
        pytest.param(["20261103", "20261222"], "date", "%Y%m%d", None, id="compact-date"),
        pytest.param(["28/11/2026 10:42"], "datetime", "%d/%m/%Y %H:%M", None, id="datetime"),
        pytest.param(["2026-11-28T15:12:44+01:00"], "datetime", None, None, id="iso-datetime"),
        pytest.param(["12,50", "3", "1 234,50"], "decimal", None, ",", id="decimal-comma"),
        pytest.param(["1273", "-3.96"], "decimal", None, ".", id="decimal-point"),
        pytest.param(["2", "10"], "int", None, None, id="int"),
        pytest.param(["01000", "75011"], "code", None, None, id="leading-zero-is-a-code"),
        pytest.param(["50540066300090"], "code", None, None, id="long-digits-are-a-code"),
        pytest.param(["a@b.example"], "email", None, None, id="email"),
        pytest.param(["oui", "non"], "bool", None, None, id="bool-words"),
        pytest.param(["W-1", "03/11/2026"], "text", None, None, id="mixed-is-text"),
        pytest.param([None, ""], "empty", None, None, id="empty"),
        pytest.param([date(2026, 11, 3)], "date", None, None, id="excel-date"),
        pytest.param([datetime(2026, 11, 3, 10, 0)], "datetime", None, None, id="excel-datetime"),
        pytest.param([3017620422003.0], "code", None, None, id="excel-ean"),
        pytest.param([2.0, 5.0], "int", None, None, id="excel-whole-numbers"),
    ],
)
def test_a_column_kind_is_guessed_from_its_values(
    values: list[Any], kind: str, fmt: str | None, decimal: str | None
) -> None:
    column = guess("c", values)
    assert (column.kind, column.fmt, column.decimal) == (kind, fmt, decimal)


def test_a_csv_sample_gives_its_encoding_delimiter_and_header(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes("Réf;Qté;Prix\nA;2;12,50\nB;3;1,00\n".encode("cp1252"))

    survey = survey_csv(path)

    assert survey.source == {"format": "csv", "delimiter": ";", "encoding": "cp1252"}
    assert list(survey.top.columns) == ["Réf", "Qté", "Prix"]
    assert survey.top.columns["Prix"].decimal == ","
    assert survey.notes == ["encoding cp1252 (detected)", "delimiter ';' (detected)"]


def test_title_lines_before_the_header_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Export du 28/11/2026\n\ncode;name\nC1;Acme\n", encoding="utf-8")

    survey = survey_csv(path)

    assert survey.source["skip_lines"] == 2
    assert list(survey.top.columns) == ["code", "name"]


def test_a_file_without_header_has_numbered_columns(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("W-1;03/11/2026;2\nW-2;04/11/2026;3\n", encoding="utf-8")

    survey = survey_csv(path)

    assert survey.source["header"] is False
    assert list(survey.top.columns) == ["1", "2", "3"]


def test_an_excel_header_row_below_a_title_is_found() -> None:
    survey = survey_xlsx(
        SAMPLES / "crm" / "crm-customers-xlsx" / "export_comptes_crm_20261128.xlsx"
    )

    assert survey.source == {"format": "xlsx", "header_row": 3}
    assert list(survey.top.columns)[:3] == ["Code client", "Raison sociale", "SIRET"]
    assert survey.top.columns["SIRET"].kind == "code"


def test_an_xml_feed_gives_its_repeated_element_and_namespaces() -> None:
    survey = survey_xml(
        SAMPLES / "ecommerce" / "ecommerce-orders-xml" / "order-feed-20261128-1600.xml"
    )

    assert survey.source == {
        "format": "xml",
        "document_path": "/o:OrderFeed/o:Order",
        "namespaces": {"o": "urn:example:webshop:order-feed:1"},
    }
    assert list(survey.top.lists) == ["o:Lines/o:Line"]
    assert survey.top.columns["o:Customer/@code"].examples == ["CUS-0020", "CUS-0030"]
    assert survey.top.columns["o:Lines/o:Line/o:Sku"].nested


def test_a_single_document_xml_file_is_read_at_its_root() -> None:
    sample = (
        SAMPLES / "supplier" / "supplier-confirmations-ubl" / "UBL-OrderResponse-2.1-Example.xml"
    )

    survey = survey_xml(sample)

    assert survey.source["document_path"] == "/o:OrderResponse"
    assert survey.source["namespaces"]["cbc"].endswith("CommonBasicComponents-2")
    assert "cac:OrderLine" in survey.top.lists


def test_an_invoice_is_surveyed_by_business_terms() -> None:
    survey = survey_sample(
        SAMPLES / "supplier" / "supplier-invoices-ubl" / "FV-2026-0588_visserie-du-rhone.xml"
    )

    assert survey.source == {"format": "einvoice"}
    assert survey.top.columns["totals.payable"].kind == "decimal"
    assert "lines" in survey.top.lists


def test_a_record_typed_file_asks_for_its_layout() -> None:
    sample = SAMPLES / "flat" / "flat-webshop-orders-csv" / "webshop-orders-20261128.csv"

    with pytest.raises(SurveyError) as caught:
        survey_sample(sample)

    assert str(caught.value) == (
        "webshop-orders-20261128.csv holds records of several types (HEADER, LINE in the first "
        "column): a flat file. Describe them in a layout file (docs/mappings.md, flat files) "
        "and pass it with --layout"
    )


@pytest.mark.parametrize(
    ("target", "context", "better", "worse"),
    [
        pytest.param("quantity", ("lines",), "Qté", "Prix", id="qte-is-quantity"),
        pytest.param("unit_price", ("lines",), "prix_unitaire_ht", "montant_ttc", id="prix"),
        pytest.param("order_date", (), "date_commande", "date_paiement", id="date-commande"),
        pytest.param("article_code", ("lines",), "ref_article", "ref_client", id="ref-article"),
        pytest.param("article_code", ("lines",), "SKU", "Label", id="sku"),
        pytest.param("line1", ("delivery_address",), "livraison_adresse", "adresse", id="delivery"),
        pytest.param("line1", ("billing_address",), "adresse", "livraison_adresse", id="billing"),
        pytest.param("postal_code", ("billing_address",), "CP", "Ville", id="cp"),
        pytest.param("external_reference", (), "num_commande", "code_client", id="order-ref"),
    ],
)
def test_names_are_matched_across_french_and_english(
    target: str, context: tuple[str, ...], better: str, worse: str
) -> None:
    wanted = target_words(target, context)
    assert name_score(wanted, words(better)) > name_score(wanted, words(worse))


def test_an_empty_sample_is_refused_with_what_to_give(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("\n\n", encoding="utf-8")

    with pytest.raises(SurveyError) as caught:
        survey_sample(path)

    assert str(caught.value) == "empty.csv: the sample is empty; give a file holding a few records"


@pytest.mark.parametrize("sheet", [None, "Comptes"], ids=["fullest-sheet", "named-sheet"])
def test_a_hostile_workbook_sample_is_refused_not_read(tmp_path: Path, sheet: str | None) -> None:
    """Before: the survey let calamine read a sheet with a cell at XFD1048576, which asks
    for 512 GiB and aborts the process. Under a 1 GB address-space limit it now refuses it."""
    path = hostile.far_cell(tmp_path / "sample.xlsx", "XFD1048576")
    script = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from pathlib import Path
        from edigw.mapping.survey import SurveyError, survey_xlsx
        try:
            survey_xlsx(Path({str(path)!r}), sheet={sheet!r})
        except SurveyError as exc:
            print("refused:", exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.startswith("refused: sample.xlsx Comptes!XFD1048576: the sheet's cells")
    assert "(limits.max_cells)" in done.stdout
