"""Conditional list reads: each page carries an ETag; sent back in If-None-Match it is
answered 304 without a body while the page is unchanged, and the client reuses the page it
kept. A 304 is still a call. Against the real sandbox.
"""

from __future__ import annotations

from collections.abc import Callable

from edigw.ecolix.client import EcolixClient
from edigw.ecolix.pages import PageCache, page_key
from tests.fixtures.sandbox import SandboxProcess


def test_a_list_page_read_again_with_its_etag_is_a_304_without_a_body(
    sandbox: SandboxProcess,
) -> None:
    with sandbox.client() as http:
        first = http.get("/suppliers", params={"limit": 5})
        tag = first.headers["ETag"]
        again = http.get("/suppliers", params={"limit": 5}, headers={"If-None-Match": tag})

    assert first.status_code == 200 and tag.startswith('"') and tag.endswith('"')
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == tag
    # a call like another: it takes its place in the rate limit
    assert int(again.headers["X-RateLimit-Remaining"]) < int(first.headers["X-RateLimit-Remaining"])


def test_a_changed_list_answers_200_with_a_new_etag(
    sandbox_factory: Callable[..., SandboxProcess],
) -> None:
    ecolix = sandbox_factory()
    with ecolix.client() as http:
        first = http.get("/articles", params={"limit": 1000})
        ecolix.touch("articles", count=1)
        changed = http.get(
            "/articles", params={"limit": 1000}, headers={"If-None-Match": first.headers["ETag"]}
        )

    assert changed.status_code == 200
    assert changed.headers["ETag"] != first.headers["ETag"]
    assert changed.json()["items"] != first.json()["items"]


def test_the_client_reuses_the_kept_page_on_304_and_counts_the_call(
    sandbox_factory: Callable[..., SandboxProcess],
) -> None:
    ecolix = sandbox_factory()
    with EcolixClient(ecolix.base_url, ecolix.token) as client:
        first = client.iter_list("articles.list", page_size=7)
        items = list(first)
        again = client.iter_list("articles.list", page_size=7)
        reread = list(again)

    assert reread == items
    assert first.not_modified == 0
    assert again.not_modified == again.pages == first.pages > 1
    assert again.calls == again.pages  # a 304 is a call
    answered = ecolix.calls()["articles.list"]
    assert answered == {"200": first.pages, "304": again.pages}


def test_the_client_reads_the_new_page_when_the_list_changed(
    sandbox_factory: Callable[..., SandboxProcess],
) -> None:
    ecolix = sandbox_factory()
    with EcolixClient(ecolix.base_url, ecolix.token) as client:
        before = {a["code"]: a["updated_at"] for a in client.iter_list("articles.list")}
        [touched] = ecolix.touch("articles", count=1)
        listing = client.iter_list("articles.list")
        after = {a["code"]: a["updated_at"] for a in listing}

    assert listing.not_modified == 0
    assert after[touched] > before[touched]


def test_kept_pages_are_bounded_by_count_and_bytes_oldest_out() -> None:
    pages = PageCache(max_pages=2, max_bytes=10)
    pages.put("a", '"1"', b"aaaa")
    pages.put("b", '"2"', b"bbbb")
    assert pages.get("a") is not None  # a is now the most recently used
    pages.put("c", '"3"', b"cc")
    assert pages.get("b") is None  # the least recently used went
    assert pages.get("a") is not None
    pages.put("d", '"4"', b"dddddddd")  # 8 bytes: only d fits beside nothing else
    assert (len(pages), pages.bytes) == (1, 8)
    pages.put("huge", '"5"', b"x" * 11)  # larger than the budget: never kept
    assert pages.get("huge") is None


def test_a_page_is_kept_per_url_query_order_aside() -> None:
    assert page_key("/articles", {"limit": "5", "cursor": "x"}) == page_key(
        "/articles", {"cursor": "x", "limit": "5"}
    )
