"""The hostile corpus: broken and malicious partner files, generated, never committed.

Every case of issue 17 and the classics (empty and truncated files, bombs, deep nesting,
huge lines, odd names, formula injection, mixed line endings) as a :class:`Case`: the flow it
is dropped into, its file name and a function that writes it. The files are made from the
shipped samples and :mod:`tests.support.orderfiles`, so that a case differs from a good file
by its one defect; each case's order numbers or customer codes start with its own ``prefix``,
so what reached Ecolix can be told case by case.

Three flows take the corpus, on the shipped mappings:

- ``orders-csv``: ``ecommerce-orders-csv.yaml`` (web-shop orders, CSV ``;``);
- ``orders-xml``: ``ecommerce-orders-xml.yaml`` (the order feed, one ``<Order>`` per order);
- ``customers-xlsx``: ``crm-customers-xlsx.yaml`` (the CRM's accounts, Excel, sheet Comptes).

Used by ``tests/test_hostile_corpus.py`` (through a running gateway) and by
``benchmarks/hostile.py --corpus`` (peak memory and seconds of each case).
"""

from __future__ import annotations

import random
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openpyxl

from tests.support import hostile
from tests.support.orderfiles import HEADER, OrderFactory

ROOT = Path(__file__).resolve().parents[2]
XML_SAMPLE = ROOT / "samples/ecommerce/ecommerce-orders-xml/order-feed-20261128-1600.xml"
XLSX_SAMPLE = ROOT / "samples/crm/crm-customers-xlsx/export_comptes_crm_20261128.xlsx"

FLOWS = {
    "orders-csv": "ecommerce-orders-csv.yaml",
    "orders-xml": "ecommerce-orders-xml.yaml",
    "customers-xlsx": "crm-customers-xlsx.yaml",
}

#: The flows' ``max_size`` in the corpus: small, so that the over-size case stays cheap.
MAX_SIZE = 8 * 1024 * 1024
FORMULA = "=cmd|' /C calc'!A0"
ENTITY_DTD = '<!DOCTYPE OrderFeed [<!ENTITY xxe "injected">]>\n'


@dataclass(frozen=True, slots=True)
class Case:
    """One file of the corpus: where it is dropped and how it is written."""

    id: str
    flow: str
    name: str
    make: Callable[[Path], None]
    prefix: str

    def write(self, inbox: Path) -> Path:
        path = inbox / self.name
        self.make(path)
        return path


# ---------------------------------------------------------------------------- CSV orders


def order_lines(prefix: str, orders: int, *, seed: int = 11) -> list[str]:
    """``orders`` valid orders (``PREFIX-1``...), each of one to three lines."""
    factory = OrderFactory.from_seed()
    rng = random.Random(seed)
    lines: list[str] = []
    for n in range(1, orders + 1):
        lines += factory.order_rows(f"{prefix}-{n}", rng)
    return lines


def csv_text(prefix: str, orders: int = 2, *, end: str = "\r\n") -> str:
    return end.join([HEADER, *order_lines(prefix, orders)]) + end


def write_csv(text: str, encoding: str = "utf-8") -> Callable[[Path], None]:
    return lambda path: path.write_bytes(text.encode(encoding))


def good_csv(prefix: str, orders: int = 2) -> Callable[[Path], None]:
    return write_csv(csv_text(prefix, orders), "utf-8-sig")


def truncated_csv(prefix: str) -> Callable[[Path], None]:
    """Cut in the middle of the last line: the last order has lost its last columns."""
    text = csv_text(prefix, 3)
    last = text.rstrip("\r\n").rfind("\n")
    return write_csv(text[: last + 40])


def unclosed_quote_csv(prefix: str, *, mapped: bool) -> Callable[[Path], None]:
    """The issue's case: five orders, a quote opened on line 3 and never closed.

    ``mapped``: in the delivery name (a mapped column); else in a trailing ``note`` column
    that the mapping does not read."""
    lines = order_lines(prefix, 5)
    if mapped:
        lines[1] = lines[1].replace(";Jeanne Martin;", ';"Jeanne Martin;', 1)
        header = HEADER
    else:
        header = HEADER + ";note"
        lines = [line + ";" for line in lines]
        lines[1] = lines[1] + '"voir le devis'
    return write_csv("\r\n".join([header, *lines]) + "\r\n")


def mixed_encodings_csv(prefix: str) -> Callable[[Path], None]:
    """UTF-8, with one line written by a cp1252 tool: never read as mojibake."""
    lines = order_lines(prefix, 3)
    good = [line.replace("Jeanne Martin", "Zoé Müller").encode("utf-8") for line in lines]
    good[2] = lines[2].replace("Jeanne Martin", "Zoé Müller").encode("cp1252")
    return lambda path: path.write_bytes(b"\r\n".join([HEADER.encode(), *good]) + b"\r\n")


def nul_csv(prefix: str) -> Callable[[Path], None]:
    lines = order_lines(prefix, 2)
    lines[1] = lines[1].replace("Jeanne", "Jea\x00nne", 1)
    return write_csv("\r\n".join([HEADER, *lines]) + "\r\n")


def utf16_csv(prefix: str, encoding: str) -> Callable[[Path], None]:
    """UTF-16 (``utf-16`` writes a byte order mark, ``utf-16-le`` none)."""
    return write_csv(csv_text(prefix), encoding)


def mixed_line_ends_csv(prefix: str) -> Callable[[Path], None]:
    """CRLF, LF and a lone CR (old Mac) in one file."""
    lines = order_lines(prefix, 3)
    ends = ["\r\n", "\n", "\r"]
    text = HEADER + "\r\n" + "".join(line + ends[i % 3] for i, line in enumerate(lines))
    return write_csv(text)


def huge_line_csv(prefix: str, *, character: str) -> Callable[[Path], None]:
    """A good order, then one line of 1,100,000 ``character`` (over the 1,000,000 limit)."""
    lines = order_lines(prefix, 1)
    return write_csv("\r\n".join([HEADER, *lines, character * 1_100_000]) + "\r\n")


def huge_order_csv(prefix: str, lines: int = 10_001) -> Callable[[Path], None]:
    """One order of ``lines`` lines (over the 10,000 lines of a document) between two small."""

    def make(path: Path) -> None:
        rows = order_lines(prefix, 2)
        first = [r for r in rows if r.startswith(f"{prefix}-1;")]
        second = [r for r in rows if r.startswith(f"{prefix}-2;")]
        big = f"{prefix}-BIG;" + second[0].split(";", 1)[1] + "\r\n"
        with path.open("w", encoding="utf-8", newline="") as out:
            out.write("\r\n".join([HEADER, *first]) + "\r\n")
            out.write(big * lines)
            out.write("\r\n".join(second) + "\r\n")

    return make


def over_size_csv(prefix: str) -> Callable[[Path], None]:
    """Valid orders padded past the flow's ``max_size`` with more valid orders."""

    def make(path: Path) -> None:
        line = order_lines(prefix, 1)[0] + "\r\n"
        with path.open("w", encoding="utf-8", newline="") as out:
            out.write(HEADER + "\r\n")
            out.write(line * (MAX_SIZE // len(line) + 10))

    return make


def formula_csv(prefix: str) -> Callable[[Path], None]:
    """A spreadsheet formula in the delivery name: data, sent as the text it is."""
    lines = [line.replace("Jeanne Martin", FORMULA) for line in order_lines(prefix, 1)]
    return write_csv("\r\n".join([HEADER, *lines]) + "\r\n", "utf-8-sig")


def random_bytes(seed: int, size: int = 4096) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(random.Random(seed).randbytes(size))


# ---------------------------------------------------------------------------- XML orders


def xml_text(prefix: str) -> str:
    """The sample feed, its two orders renumbered ``PREFIX-1``, ``PREFIX-2``."""
    text = XML_SAMPLE.read_text(encoding="utf-8")
    numbers = iter(range(1, 100))
    return re.sub(
        r"<Number>[^<]*</Number>", lambda _: f"<Number>{prefix}-{next(numbers)}</Number>", text
    )


def good_xml(prefix: str) -> Callable[[Path], None]:
    return write_csv(xml_text(prefix))


def truncated_xml(prefix: str) -> Callable[[Path], None]:
    text = xml_text(prefix)
    return write_csv(text[: len(text) * 2 // 3])


def entity_xml(prefix: str, *, encoding: str = "utf-8", before: str = "") -> Callable[[Path], None]:
    """``<Number>PREFIX-1&xxe;</Number>`` under a DTD declaring ``xxe``; ``before`` the DTD
    (a long comment), in ``encoding`` (``utf-16`` with a BOM, ``utf-16-le`` without)."""
    text = xml_text(prefix).replace(f"<Number>{prefix}-1<", f"<Number>{prefix}-1&xxe;<", 1)
    declared = "UTF-16" if encoding.startswith("utf-16") else "UTF-8"
    text = text.replace('encoding="UTF-8"?>\n', f'encoding="{declared}"?>\n{before}{ENTITY_DTD}', 1)
    return write_csv(text, encoding)


def billion_laughs_xml(prefix: str) -> Callable[[Path], None]:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    text = xml_text(prefix).replace(
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE OrderFeed [{entities}]>\n',
        1,
    )
    return write_csv(text.replace("<Name>Nicolas Laurent", "<Name>&lol9;", 1))


def undefined_entity_xml(prefix: str) -> Callable[[Path], None]:
    return write_csv(xml_text(prefix).replace(f"<Number>{prefix}-1<", f"<Number>{prefix}-1&xxe;<"))


def deep_xml(prefix: str, depth: int = 300) -> Callable[[Path], None]:
    nest = "<x>" * depth + "</x>" * depth
    return write_csv(xml_text(prefix).replace("<Lines>", f"<Lines><Note>{nest}</Note>", 1))


def huge_text_xml(prefix: str) -> Callable[[Path], None]:
    """A 1,100,000-character street name (over the 1,000,000 of a value)."""
    return write_csv(xml_text(prefix).replace("23 rue Nationale", "x" * 1_100_000, 1))


def nul_xml(prefix: str) -> Callable[[Path], None]:
    return write_csv(
        xml_text(prefix).replace("Nicolas Laurent</Customer>", "Nico\x00las</Customer>")
    )


# ---------------------------------------------------------------------------- Excel customers


def good_xlsx(
    prefix: str, *, name: str | None = None, formula: bool = False
) -> Callable[[Path], None]:
    """The sample CRM export, its accounts renumbered ``PREFIX-1``..., optionally the first
    account's name replaced by ``name``: a text cell, or a formula (without a cached value,
    as openpyxl writes it) when ``formula``."""

    def make(path: Path) -> None:
        wb = openpyxl.load_workbook(XLSX_SAMPLE)
        ws = wb["Comptes"]
        for n, row in enumerate(range(4, 8), start=1):
            ws.cell(row=row, column=1).value = f"{prefix}-{n}"
        if name is not None:
            cell = ws.cell(row=4, column=2)
            cell.value = name
            if not formula:
                cell.data_type = "s"
        wb.save(path)

    return make


def then(*steps: Callable[[Path], object]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        for step in steps:
            step(path)

    return make


def far_cell_xlsx(prefix: str, ref: str) -> Callable[[Path], None]:
    """The issue's 5 KB workbook: one more cell, at ``ref`` (``XFD1048576``)."""
    row = "".join(c for c in ref if c.isdigit())
    cell = f'<row r="{row}"><c r="{ref}" t="inlineStr"><is><t>far</t></is></c></row>'
    return then(good_xlsx(prefix), lambda p: hostile.add_rows(p, cell))


def lying_dimension_xlsx(prefix: str) -> Callable[[Path], None]:
    """A dimension declaring ``A1:XFD1048576`` over the sample's few cells: harmless."""
    return then(
        good_xlsx(prefix),
        lambda p: hostile.rewrite_part(
            p, lambda t: re.sub(r'<dimension ref="[^"]*"', '<dimension ref="A1:XFD1048576"', t)
        ),
    )


def zip_bomb_xlsx(prefix: str, expanded: int = 120 * 1024 * 1024) -> Callable[[Path], None]:
    """A part of ``expanded`` bytes of spaces: a few hundred KB in the zip."""

    def bomb(path: Path) -> None:
        chunk = b" " * (1 << 20)
        with (
            zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive,
            archive.open("xl/media/padding.xml", "w", force_zip64=True) as part,
        ):
            for _ in range(expanded >> 20):
                part.write(chunk)

    return then(good_xlsx(prefix), bomb)


def lying_size_xlsx(prefix: str) -> Callable[[Path], None]:
    """The zip's directory declares 100 bytes for the sheet, which is larger."""
    return then(good_xlsx(prefix), lambda p: hostile.lie_about_size(p, hostile.SHEET, 100))


def shared_strings_bomb_xlsx(prefix: str) -> Callable[[Path], None]:
    """One 30,000-character shared string referred to by 40,000 cells (1.2 GB as cells)."""

    def make(path: Path) -> None:
        cells = [(f"{c}{r}", 0) for r in range(4, 4004) for c in "ABCDEFGHIJ"]
        hostile.shared_strings_workbook(path, ["z" * 30_000], cells)

    return make


def control_xlsx(prefix: str) -> Callable[[Path], None]:
    return then(
        good_xlsx(prefix),
        lambda p: hostile.rewrite_part(
            p, lambda t: t.replace("Services Simon", "Servi_x0000_ces", 1)
        ),
    )


def cut(fraction: float) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * fraction)])

    return make


# ---------------------------------------------------------------------------- the corpus

LONG_NAME = "commande-" + "x" * 236 + ".csv"  # 249 bytes: the longest most file systems take


def corpus() -> list[Case]:
    """Every hostile case, in the order it is dropped. ``prefix`` is unique to each case."""
    cases: list[tuple[str, str, str, Callable[[str], Callable[[Path], None]]]] = [
        # CSV orders: text
        ("csv-empty", "orders-csv", "empty.csv", lambda p: write_csv("")),
        ("csv-header-only", "orders-csv", "header-only.csv", lambda p: write_csv(HEADER + "\r\n")),
        ("csv-truncated", "orders-csv", "truncated.csv", truncated_csv),
        (
            "csv-unclosed-quote-unmapped",
            "orders-csv",
            "quote-unmapped.csv",
            lambda p: unclosed_quote_csv(p, mapped=False),
        ),
        (
            "csv-unclosed-quote-mapped",
            "orders-csv",
            "quote-mapped.csv",
            lambda p: unclosed_quote_csv(p, mapped=True),
        ),
        ("csv-mixed-encodings", "orders-csv", "mixed-encodings.csv", mixed_encodings_csv),
        ("csv-nul-byte", "orders-csv", "nul.csv", nul_csv),
        (
            "csv-utf16-without-bom",
            "orders-csv",
            "utf16-le.csv",
            lambda p: utf16_csv(p, "utf-16-le"),
        ),
        ("csv-utf16-with-bom", "orders-csv", "utf16-bom.csv", lambda p: utf16_csv(p, "utf-16")),
        ("csv-mixed-line-ends", "orders-csv", "line-ends.csv", mixed_line_ends_csv),
        ("csv-huge-line", "orders-csv", "huge-line.csv", lambda p: huge_line_csv(p, character="x")),
        (
            "csv-million-separators",
            "orders-csv",
            "separators.csv",
            lambda p: huge_line_csv(p, character=";"),
        ),
        ("csv-huge-order", "orders-csv", "huge-order.csv", huge_order_csv),
        ("csv-over-max-size", "orders-csv", "over-size.csv", over_size_csv),
        ("csv-formula-injection", "orders-csv", "formula.csv", formula_csv),
        ("csv-binary", "orders-csv", "binary.csv", lambda p: random_bytes(17)),
        # CSV orders: odd names
        ("name-spaces", "orders-csv", "commande du 28 11 2026.csv", good_csv),
        ("name-unicode", "orders-csv", "commandé-été-注文-🚚.csv", good_csv),
        ("name-leading-dash", "orders-csv", "-rf --all.csv", good_csv),
        ("name-very-long", "orders-csv", LONG_NAME, good_csv),
        ("name-very-long-failed", "orders-csv", "f" + LONG_NAME, lambda p: nul_csv(p)),
        # XML orders
        ("xml-empty", "orders-xml", "empty.xml", lambda p: write_csv("")),
        ("xml-truncated", "orders-xml", "truncated.xml", truncated_xml),
        ("xml-billion-laughs", "orders-xml", "laughs.xml", billion_laughs_xml),
        ("xml-entity-utf8", "orders-xml", "xxe-utf8.xml", entity_xml),
        (
            "xml-entity-utf16-bom",
            "orders-xml",
            "xxe-utf16-bom.xml",
            lambda p: entity_xml(p, encoding="utf-16"),
        ),
        (
            "xml-entity-utf16-le-no-bom",
            "orders-xml",
            "xxe-utf16-le.xml",
            lambda p: entity_xml(p, encoding="utf-16-le"),
        ),
        (
            "xml-entity-after-long-comment",
            "orders-xml",
            "xxe-comment.xml",
            lambda p: entity_xml(p, before="<!--" + "c" * 70_000 + "-->\n"),
        ),
        ("xml-undefined-entity", "orders-xml", "undefined-entity.xml", undefined_entity_xml),
        ("xml-deep-nesting", "orders-xml", "deep.xml", deep_xml),
        ("xml-huge-text", "orders-xml", "huge-text.xml", huge_text_xml),
        ("xml-nul-byte", "orders-xml", "nul.xml", nul_xml),
        ("xml-binary", "orders-xml", "binary.xml", lambda p: random_bytes(19)),
        # Excel customers
        ("xlsx-empty", "customers-xlsx", "empty.xlsx", lambda p: write_csv("")),
        (
            "xlsx-truncated-zip",
            "customers-xlsx",
            "truncated.xlsx",
            lambda p: then(good_xlsx(p), cut(0.6)),
        ),
        (
            "xlsx-far-cell-XFD1048576",
            "customers-xlsx",
            "far-cell.xlsx",
            lambda p: far_cell_xlsx(p, "XFD1048576"),
        ),
        ("xlsx-lying-dimension", "customers-xlsx", "dimension.xlsx", lying_dimension_xlsx),
        ("xlsx-zip-bomb", "customers-xlsx", "bomb.xlsx", zip_bomb_xlsx),
        ("xlsx-lying-zip-size", "customers-xlsx", "lying-size.xlsx", lying_size_xlsx),
        ("xlsx-shared-strings-bomb", "customers-xlsx", "strings.xlsx", shared_strings_bomb_xlsx),
        ("xlsx-control-character", "customers-xlsx", "control.xlsx", control_xlsx),
        (
            "xlsx-formula-as-text",
            "customers-xlsx",
            "formula-text.xlsx",
            lambda p: good_xlsx(p, name=FORMULA),
        ),
        (
            "xlsx-formula-cell",
            "customers-xlsx",
            "formula-cell.xlsx",
            lambda p: good_xlsx(p, name=FORMULA, formula=True),
        ),
        ("xlsx-not-a-zip", "customers-xlsx", "not-a-zip.xlsx", lambda p: random_bytes(23)),
    ]
    return [
        Case(id_, flow, name, make(f"HC{n:02d}"), f"HC{n:02d}")
        for n, (id_, flow, name, make) in enumerate(cases, start=1)
    ]


def good_files(tag: str) -> list[Case]:
    """One good file per flow, named and numbered ``GOOD-<tag>``."""
    prefix = f"G{tag}"
    return [
        Case(f"good-{tag}-csv", "orders-csv", f"good-{tag}.csv", good_csv(prefix), prefix),
        Case(f"good-{tag}-xml", "orders-xml", f"good-{tag}.xml", good_xml(prefix), prefix),
        Case(f"good-{tag}-xlsx", "customers-xlsx", f"good-{tag}.xlsx", good_xlsx(prefix), prefix),
    ]
