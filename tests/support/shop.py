"""A web shop's gateway (customers and orders) and the files that make Ecolix refuse an order."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.fixtures.gateway import ROOT, Workspace, inbound_flow, write_workspace
from tests.support.cli import edigw

SAMPLES = ROOT / "samples" / "ecommerce"
CUSTOMERS = SAMPLES / "ecommerce-customers-csv" / "clients_export_20261128.csv"
ORDERS = SAMPLES / "ecommerce-orders-csv" / "commandes_20261128.csv"
BAD_CUSTOMERS = ROOT / "samples" / "bad" / "ecommerce-customers-csv" / "clients_incomplets.csv"


def shop_workspace(
    root: Path, sandbox: Any, *, flows: tuple[str, ...] = ("customers", "orders")
) -> Workspace:
    """Flows webshop/customers and webshop/orders (or those of ``flows``) against ``sandbox``."""
    return write_workspace(
        root,
        base_url=sandbox.base_url,
        token=sandbox.token,
        flows={
            "webshop": {
                name: inbound_flow(f"ecommerce-{name}-csv.yaml", "webshop", name) for name in flows
            }
        },
    )


def offline_orders_workspace(root: Path) -> Workspace:
    """Flow webshop/orders against a closed port (commands that need no Ecolix), with its
    data folder made."""
    ws = write_workspace(
        root,
        base_url="http://127.0.0.1:9/api/v1",
        token="T",
        flows={
            "webshop": {"orders": inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders")}
        },
    )
    (root / "data").mkdir()
    return ws


def customers_workspace(root: Path, sandbox: Any) -> Workspace:
    """Flow webshop/customers alone against ``sandbox``."""
    return shop_workspace(root, sandbox, flows=("customers",))


def good_and_bad_customers(folder: Path, sandbox: Any) -> Workspace:
    """``customers_workspace`` in ``folder``/gw after the shipped customers file (F-1, done,
    D-1..D-4) and the bad one (F-2, failed, D-5 and D-6) went through ``edigw process``."""
    ws = customers_workspace(folder / "gw", sandbox)
    for sample in (CUSTOMERS, BAD_CUSTOMERS):
        copy = folder / sample.name
        shutil.copyfile(sample, copy)
        edigw(ws, "process", str(copy), "--flow", "webshop/customers")
    return ws


def unknown_customer_order(folder: Path, customer: str, number: str) -> Path:
    """Order ``number`` for a customer Ecolix does not know (yet): refused with a 422."""
    header, *order = ORDERS.read_text(encoding="utf-8-sig").splitlines()[:3]  # WEB-6101's lines
    lines = [line.replace("WEB-6101", number).replace("CUS-0005", customer) for line in order]
    path = folder / f"order_{number}.csv"
    path.write_text("\n".join([header, *lines, ""]), encoding="utf-8-sig")
    return path


def new_customer(folder: Path, code: str) -> Path:
    """A customers file creating ``code`` in Ecolix (cp1252, like the shipped sample)."""
    header, _, second = CUSTOMERS.read_bytes().splitlines()[:3]
    path = folder / f"customer_{code}.csv"
    path.write_bytes(header + b"\n" + second.replace(b"WEB-10231", code.encode()) + b"\n")
    return path
