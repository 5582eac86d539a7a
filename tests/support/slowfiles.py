"""Order files that take seconds to read, for tests that must catch a reading in the act."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from tests.support.orderfiles import HEADER, ROOT, OrderFactory

MAPPINGS = ROOT / "mappings"
ORDERS = MAPPINGS / "ecommerce-orders-csv.yaml"


def slow_mapping(folder: Path) -> Path:
    """The web-shop orders mapping, skipping padding rows: a file slow to read, one order."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(MAPPINGS / "lookups", folder / "lookups", dirs_exist_ok=True)
    text = ORDERS.read_text(encoding="utf-8").replace(
        "target: orders.create", "skip: \"record.num_commande == 'PAD'\"\ntarget: orders.create"
    )
    mapping = folder / "orders-slow.yaml"
    mapping.write_text(text, encoding="utf-8")
    return mapping


def write_slow_file(path: Path, number: str, *, padding: int = 150_000) -> Path:
    """One valid order, then ``padding`` rows the mapping skips (a few seconds of reading)."""
    rows = OrderFactory.from_seed().order_rows(number, random.Random(1))
    pad = ";".join(["PAD"] + ["x"] * 15)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\r\n" + "\r\n".join(rows) + "\r\n")
        out.write((pad + "\r\n") * padding)
    return path
