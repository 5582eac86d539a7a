"""The Ecolix client against the real sandbox, over HTTP on loopback.

Each test makes its own objects (codes with a random prefix), so the shared session sandbox
needs no cleaning; tests that need a special server (rate limit, faults, stopped) ask
``sandbox_factory`` for their own.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from edigw.ecolix.client import EcolixClient
from edigw.ecolix.limiter import RollingWindowLimiter
from edigw.ecolix.retries import RetryPolicy
from edigw.errors import (
    EcolixAuthError,
    EcolixCallCancelled,
    EcolixConflictError,
    EcolixError,
    EcolixFinalError,
    EcolixNotFoundError,
    EcolixNotSentError,
    EcolixRetriableError,
)

FAST_RETRIES = RetryPolicy(attempts=4, first_delay=0.01, max_delay=0.05, jitter=0.01)


class RecordingSleep:
    """Really sleeps (the server's clock runs), and remembers what it was asked to sleep."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def client(sandbox: Any) -> Iterator[EcolixClient]:
    with EcolixClient(sandbox.base_url, sandbox.token, retry=FAST_RETRIES) as ecolix:
        yield ecolix


@pytest.fixture
def prefix() -> str:
    return f"T{uuid.uuid4().hex[:8].upper()}"


def customer(code: str, *, name: str = "Boulangerie Martin", city: str = "Lyon") -> dict[str, Any]:
    return {
        "code": code,
        "name": name,
        "email": "contact@boulangerie-martin.fr",
        "billing_address": {
            "line1": "12 rue de la République",
            "postal_code": "69002",
            "city": city,
            "country": "FR",
        },
        "payment_terms": "NET30",
    }


# -- writes and idempotency -------------------------------------------------------------------


def test_a_write_returns_the_object_id_named_by_the_contract(
    client: EcolixClient, prefix: str
) -> None:
    response = client.upsert_customer(customer(f"{prefix}-1"), idempotency_key=f"{prefix}-k1")
    assert response.status in (200, 201)
    assert response.object_id == f"{prefix}-1"
    assert response.replayed is False
    assert client.get_customer(f"{prefix}-1")["name"] == "Boulangerie Martin"


def test_the_same_key_and_body_replays_the_stored_answer(client: EcolixClient, prefix: str) -> None:
    body = customer(f"{prefix}-1")
    first = client.upsert_customer(body, idempotency_key=f"{prefix}-k1")
    again = client.upsert_customer(body, idempotency_key=f"{prefix}-k1")
    assert again.replayed is True
    assert (again.status, again.body, again.object_id) == (
        first.status,
        first.body,
        first.object_id,
    )


def test_the_same_key_with_another_body_is_a_conflict(client: EcolixClient, prefix: str) -> None:
    client.upsert_customer(customer(f"{prefix}-1"), idempotency_key=f"{prefix}-k1")
    with pytest.raises(EcolixConflictError) as caught:
        client.upsert_customer(
            customer(f"{prefix}-1", city="Paris"), idempotency_key=f"{prefix}-k1"
        )
    assert caught.value.status == 409
    assert caught.value.problem is not None
    assert "idempotency" in caught.value.problem.type


def test_a_refused_body_reports_the_json_pointers_of_the_bad_fields(
    client: EcolixClient, prefix: str
) -> None:
    body = customer(f"{prefix}-1")
    body["billing_address"]["country"] = "France"
    with pytest.raises(EcolixFinalError) as caught:
        client.upsert_customer(body, idempotency_key=f"{prefix}-k1")
    assert type(caught.value) is EcolixFinalError
    assert caught.value.status == 422
    assert caught.value.problem is not None
    pointers = [err.pointer for err in caught.value.problem.errors]
    assert "/billing_address/country" in pointers
    assert "/billing_address/country" in str(caught.value)


def test_a_refused_body_is_not_retried(client: EcolixClient, prefix: str) -> None:
    body = customer(f"{prefix}-1")
    del body["name"]
    with pytest.raises(EcolixFinalError):
        client.upsert_customer(body, idempotency_key=f"{prefix}-k1")
    usage = client.usage
    assert usage.by_operation["customers.upsert"] == 1
    assert usage.retries == 0


def test_a_corrected_body_goes_through_under_the_same_key(
    client: EcolixClient, prefix: str
) -> None:
    bad = customer(f"{prefix}-1")
    bad["billing_address"]["country"] = "France"
    with pytest.raises(EcolixFinalError):
        client.upsert_customer(bad, idempotency_key=f"{prefix}-k1")
    good = client.upsert_customer(customer(f"{prefix}-1"), idempotency_key=f"{prefix}-k1")
    assert good.replayed is False
    assert good.object_id == f"{prefix}-1"


# -- typed errors ----------------------------------------------------------------------------


def test_a_wrong_token_is_an_auth_error(sandbox: Any) -> None:
    with (
        EcolixClient(sandbox.base_url, "not-the-token") as ecolix,
        pytest.raises(EcolixAuthError) as caught,
    ):
        ecolix.get("articles.list")
    assert caught.value.status == 401
    assert caught.value.operation == "articles.list"


def test_an_unknown_object_is_not_found(client: EcolixClient, prefix: str) -> None:
    with pytest.raises(EcolixNotFoundError) as caught:
        client.get_customer(f"{prefix}-NOPE")
    assert caught.value.status == 404


# -- temporary failures ----------------------------------------------------------------------


def test_a_503_is_retried_until_ecolix_answers(sandbox_factory: Callable[..., Any]) -> None:
    server = sandbox_factory()
    server.inject_faults(503, 2)
    with EcolixClient(server.base_url, server.token, retry=FAST_RETRIES) as ecolix:
        listing = ecolix.iter_list("articles.list", page_size=5)
        assert len([next(listing) for _ in range(5)]) == 5
        usage = ecolix.usage
    assert usage.by_status[503] == 2
    assert usage.retries == 2
    assert listing.calls == 3


def test_a_503_that_lasts_becomes_a_retriable_error(sandbox_factory: Callable[..., Any]) -> None:
    server = sandbox_factory()
    server.inject_faults(503, 10)
    policy = RetryPolicy(attempts=3, first_delay=0.01, max_delay=0.02, jitter=0.0)
    with (
        EcolixClient(server.base_url, server.token, retry=policy) as ecolix,
        pytest.raises(EcolixRetriableError) as caught,
    ):
        ecolix.get("articles.list")
    assert caught.value.status == 503
    assert "gave up after 3 attempts" in str(caught.value)


def test_a_429_is_waited_out_for_retry_after_then_succeeds(
    sandbox_factory: Callable[..., Any],
) -> None:
    server = sandbox_factory(rate_limit="2/second")
    sleep = RecordingSleep()
    policy = RetryPolicy(attempts=3, first_delay=0.01, max_delay=0.05, max_total_wait=90)
    with EcolixClient(server.base_url, server.token, retry=policy, sleep=sleep) as ecolix:
        with server.client() as other_node:  # another gateway sharing the token fills the window
            for _ in range(2):
                other_node.get("/articles").raise_for_status()
        assert ecolix.get("articles.list")["items"]  # 429, wait Retry-After, then served
        usage = ecolix.usage
    assert usage.throttled == 1
    assert usage.by_operation["articles.list"] == 2
    assert max(sleep.sleeps) >= 1.0  # the sandbox's Retry-After: 1


def test_an_exhausted_server_window_holds_the_next_call_instead_of_earning_a_429(
    sandbox_factory: Callable[..., Any],
) -> None:
    server = sandbox_factory(rate_limit="2/second")
    with EcolixClient(server.base_url, server.token, retry=FAST_RETRIES) as ecolix:
        for _ in range(3):  # the 2nd answer says Remaining: 0, Reset: 1
            ecolix.get("articles.list")
        usage = ecolix.usage
    assert usage.throttled == 0
    assert usage.waited_seconds > 0


def test_a_long_retry_after_is_handed_back_to_the_pipeline_at_once(
    sandbox_factory: Callable[..., Any],
) -> None:
    server = sandbox_factory(rate_limit="1/hour")
    with EcolixClient(server.base_url, server.token, retry=FAST_RETRIES) as ecolix:
        with server.client() as other_node:
            other_node.get("/articles").raise_for_status()
        with pytest.raises(EcolixRetriableError) as caught:
            ecolix.get("articles.list")
        with pytest.raises(EcolixRetriableError) as paused:  # not even sent: Ecolix said wait
            ecolix.get("articles.list")
        usage = ecolix.usage
    assert caught.value.status == 429
    assert not isinstance(caught.value, EcolixNotSentError)  # this one was sent: it counts
    assert isinstance(paused.value, EcolixNotSentError)
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 3000
    assert paused.value.retry_after is not None
    assert paused.value.retry_after > FAST_RETRIES.max_total_wait
    assert usage.calls == 1


def test_ecolix_down_is_retriable_not_sent_and_no_httpx_error_leaks(
    sandbox_factory: Callable[..., Any],
) -> None:
    server = sandbox_factory()
    with EcolixClient(server.base_url, server.token, retry=FAST_RETRIES) as ecolix:
        ecolix.get("articles.list")
        server.stop()
        with pytest.raises(EcolixError) as caught:
            ecolix.get("articles.list")
        server.start()
        assert ecolix.get("articles.list")["items"]
    assert type(caught.value) is EcolixNotSentError  # refused: no request left
    assert not isinstance(caught.value, httpx.HTTPError)
    assert isinstance(caught.value.__cause__, httpx.TransportError)


# -- lists -------------------------------------------------------------------------------------


def test_a_listing_follows_cursors_across_pages(client: EcolixClient, prefix: str) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    for n in range(12):
        client.upsert_customer(customer(f"{prefix}-{n:02d}"), idempotency_key=f"{prefix}-c{n}")
    listing = client.iter_list("customers.list", updated_since=since, page_size=5)
    ours = [c["code"] for c in listing if c["code"].startswith(prefix)]
    assert sorted(ours) == [f"{prefix}-{n:02d}" for n in range(12)]
    assert listing.pages >= 3
    assert listing.calls == listing.pages


def test_pagination_under_concurrent_updates_loses_and_duplicates_nothing(
    client: EcolixClient, prefix: str
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    codes = [f"{prefix}-{n:02d}" for n in range(30)]
    for n, code in enumerate(codes):
        client.upsert_customer(customer(code), idempotency_key=f"{prefix}-c{n}")

    seen: list[dict[str, Any]] = []
    updated: list[str] = []
    created: list[str] = []
    listing = client.iter_list("customers.list", updated_since=since, page_size=4)
    for item in listing:
        seen.append(item)
        if len(seen) % 4 == 0 and len(updated) < 5:  # between pages: change the data
            # update one object already seen and one not yet seen, and add a new one
            for code in (codes[len(updated)], codes[-1 - len(updated)]):
                client.upsert_customer(
                    customer(code, name=f"Renamed {len(updated)}"),
                    idempotency_key=f"{prefix}-u{code}",
                )
                updated.append(code)
            new_code = f"{prefix}-N{len(created)}"
            client.upsert_customer(customer(new_code), idempotency_key=f"{prefix}-n{new_code}")
            created.append(new_code)

    ours = [item for item in seen if item["code"].startswith(prefix)]
    counts = Counter(item["code"] for item in ours)
    untouched = [code for code in codes if code not in updated]
    assert listing.pages > 5
    assert set(counts) == set(codes) | set(created), "every object is seen"
    assert all(counts[code] == 1 for code in untouched + created), "no untouched object twice"
    last_seen = {item["code"]: item["name"] for item in ours}
    for code in updated:
        assert last_seen[code].startswith("Renamed"), f"{code}: its latest version is seen last"


# -- usage -------------------------------------------------------------------------------------


def test_usage_counts_every_call_per_operation(client: EcolixClient, prefix: str) -> None:
    client.upsert_customer(customer(f"{prefix}-1"), idempotency_key=f"{prefix}-k1")
    client.upsert_customer(customer(f"{prefix}-1"), idempotency_key=f"{prefix}-k1")
    client.get_customer(f"{prefix}-1")
    with pytest.raises(EcolixNotFoundError):
        client.get_customer(f"{prefix}-2")
    usage = client.usage
    assert dict(usage.by_operation) == {"customers.upsert": 2, "customers.get": 2}
    assert usage.calls == 4
    assert usage.last_minute == 4
    assert usage.by_status[404] == 1


def test_a_client_within_the_agreement_never_sees_a_429(
    sandbox_factory: Callable[..., Any],
) -> None:
    server = sandbox_factory(rate_limit="5/minute")
    sleep = RecordingSleep()
    with EcolixClient(server.base_url, server.token, calls_per_minute=5, sleep=sleep) as ecolix:
        for _ in range(5):
            ecolix.get("articles.list")
        assert sleep.sleeps == []
        usage = ecolix.usage
    assert usage.throttled == 0
    assert usage.limit_per_minute == 5
    assert usage.headroom == 0


def test_threads_sharing_a_client_at_the_agreed_rate_never_see_a_429(
    sandbox_factory: Callable[..., Any],
) -> None:
    # The agreement scaled down to 10 calls per rolling second, so the test lasts seconds.
    server = sandbox_factory(rate_limit="10/second")
    limiter = RollingWindowLimiter(10, period=1.0)
    no_retries = RetryPolicy(attempts=1)
    with EcolixClient(server.base_url, server.token, limiter=limiter, retry=no_retries) as ecolix:

        def worker() -> None:
            for _ in range(10):
                ecolix.get("articles.list")

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        usage = ecolix.usage
    assert usage.calls == 40
    assert dict(usage.by_status) == {200: 40}


def test_stop_waiting_ends_a_wait_for_the_budget_without_making_the_call(
    sandbox_factory: Callable[..., Any],
) -> None:
    server = sandbox_factory()
    with EcolixClient(server.base_url, server.token, calls_per_minute=1) as ecolix:
        ecolix.get("articles.list")  # the minute's one call: the next one waits ~60 s
        outcome: list[BaseException] = []

        def next_call() -> None:
            try:
                ecolix.get("articles.list")
            except EcolixError as exc:
                outcome.append(exc)

        waiter = threading.Thread(target=next_call)
        waiter.start()
        deadline = time.monotonic() + 5
        while ecolix.usage.waited_seconds == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ecolix.usage.waited_seconds > 0, "the second call never waited"
        ecolix.stop_waiting()
        waiter.join(timeout=5)
        assert not waiter.is_alive()
        assert [type(e) for e in outcome] == [EcolixCallCancelled]
        assert ecolix.usage.calls == 1
