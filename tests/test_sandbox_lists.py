"""Lists: (updated_at, id) order, opaque cursors stable under concurrent writes, updated_since,
filters, the order-states feed; and the per-token rate limit."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx

from tests.fixtures.sandbox import SandboxProcess
from tests.fixtures.sandbox_data import key, order_body

Factory = Callable[..., SandboxProcess]


def _all_pages(
    http: httpx.Client,
    path: str,
    params: dict[str, Any],
    between_pages: Callable[[], None] = lambda: None,
) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    pages = 0
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = http.get(path, params=query).raise_for_status().json()
        items += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages
        between_pages()


def test_a_list_pages_through_every_object_once_in_update_order(sandbox: SandboxProcess) -> None:
    with sandbox.client() as http:
        items, pages = _all_pages(http, "/articles", {"limit": 70})
    codes = [a["code"] for a in items]
    assert len(codes) == len(set(codes)) >= 300
    assert pages == -(-len(codes) // 70)
    stamps = [a["updated_at"] for a in items]
    assert stamps == sorted(stamps)


def test_pagination_misses_nothing_while_objects_are_updated_concurrently(
    sandbox_factory: Factory,
) -> None:
    server = sandbox_factory()
    stop = threading.Event()
    touched: list[str] = []

    def writer() -> None:
        while not stop.is_set():
            touched.extend(server.touch("articles", count=3))

    thread = threading.Thread(target=writer)
    with server.client() as http:
        before = {a["code"] for a in _all_pages(http, "/articles", {"limit": 1000})[0]}
        thread.start()
        try:
            seen, _ = _all_pages(http, "/articles", {"limit": 25})
        finally:
            stop.set()
            thread.join()
    codes = [a["code"] for a in seen]
    assert touched  # the writer really ran during the iteration
    assert set(codes) == before  # nothing skipped; updated objects may come round again
    stamps = [a["updated_at"] for a in seen]
    assert stamps == sorted(stamps)


def test_updated_since_returns_only_what_changed(sandbox_factory: Factory) -> None:
    server = sandbox_factory()
    with server.client() as http:
        newest = _all_pages(http, "/stock", {"limit": 1000})[0][-1]["updated_at"]
        touched = server.touch("stock", keys=["ART-0005@WH-LYON", "ART-0010@WH-LILLE"])
        changed = http.get("/stock", params={"updated_since": newest}).json()["items"]
    # the newest item before the touch is included (>=), then the two touched levels
    assert [(s["article_code"], s["warehouse"]) for s in changed[-2:]] == [
        ("ART-0005", "WH-LYON"),
        ("ART-0010", "WH-LILLE"),
    ]
    assert len(changed) == 3
    assert touched == ["ART-0005@WH-LYON", "ART-0010@WH-LILLE"]


def test_list_filters_narrow_the_items(sandbox: SandboxProcess) -> None:
    with sandbox.client() as http:
        open_quotes = http.get("/quotes", params={"status": "open", "limit": 1000}).json()["items"]
        lyon = http.get("/stock", params={"warehouse": "WH-LYON", "limit": 1000}).json()["items"]
        history = http.get("/orders", params={"customer": "CUS-0006", "limit": 1000}).json()
    assert open_quotes and {q["status"] for q in open_quotes} == {"open"}
    assert len(lyon) == 300 and {s["warehouse"] for s in lyon} == {"WH-LYON"}
    assert {o["customer_code"] for o in history["items"]} == {"CUS-0006"}


def test_a_tampered_cursor_is_400(sandbox: SandboxProcess) -> None:
    with sandbox.client() as http:
        cursor = http.get("/articles", params={"limit": 1}).json()["next_cursor"]
        wrong_list = http.get("/customers", params={"cursor": cursor})
        garbage = http.get("/articles", params={"cursor": "bm9wZQ"})
    assert wrong_list.status_code == garbage.status_code == 400
    assert garbage.json()["type"].endswith("/invalid-cursor")


def test_a_limit_above_1000_is_400(sandbox: SandboxProcess) -> None:
    with sandbox.client() as http:
        assert http.get("/articles", params={"limit": 1001}).status_code == 400


def test_the_order_states_feed_records_each_status_change(sandbox_factory: Factory) -> None:
    server = sandbox_factory()
    with server.client() as http:
        mark = http.get("/order-states", params={"limit": 1000}).json()["items"][-1]["updated_at"]
        number = http.post(
            "/orders", json=order_body(customer="CUS-0009"), headers={"Idempotency-Key": key()}
        ).json()["number"]
        server.set_order_status(number, "confirmed")
        server.set_order_status(number, "shipped")
        feed = http.get("/order-states", params={"updated_since": mark}).json()["items"]
        order = http.get(f"/orders/{number}").json()
    mine = [(s["status"], s["previous_status"]) for s in feed if s["order_number"] == number]
    assert mine == [("received", None), ("confirmed", "received"), ("shipped", "confirmed")]
    assert order["status"] == "shipped"


def test_over_the_rate_limit_is_429_with_retry_after(sandbox_factory: Factory) -> None:
    server = sandbox_factory(rate_limit="3/minute")
    with server.client() as http:
        answers = [http.get("/articles", params={"limit": 1}) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
    assert {r.headers["X-RateLimit-Limit"] for r in answers} == {"3"}
    throttled = answers[-1]
    assert throttled.headers["content-type"] == "application/problem+json"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert 0 < int(throttled.headers["X-RateLimit-Reset"]) <= 60


def test_the_rate_limit_counts_per_token(sandbox_factory: Factory) -> None:
    server = sandbox_factory(rate_limit="2/minute")
    with server.client() as http:
        for _ in range(3):
            http.get("/articles", params={"limit": 1})
    anonymous = httpx.get(f"{server.base_url}/articles")
    assert anonymous.status_code == 401  # its own window, not the exhausted one
    assert anonymous.headers["X-RateLimit-Remaining"] == "1"
