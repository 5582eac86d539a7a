"""Edge cases of the Ecolix client that a real server cannot easily produce on demand.

These use ``httpx.MockTransport``; the behaviour proofs against the real sandbox live in
``test_ecolix_client.py``. Sleeps go to a fake clock, so retries cost no time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from edigw.ecolix.client import EcolixClient
from edigw.ecolix.retries import RetryPolicy
from edigw.errors import (
    EcolixAuthError,
    EcolixConflictError,
    EcolixError,
    EcolixFinalError,
    EcolixNotFoundError,
    EcolixNotSentError,
    EcolixRetriableError,
)

BASE_URL = "https://ecolix.invalid/api/v1"
CUSTOMER = {"code": "C001", "name": "Boulangerie Martin"}

Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Recorder:
    """Plays a script of answers (the last one repeats) and remembers every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(fake_time: FakeTime) -> Iterator[Callable[..., EcolixClient]]:
    clients: list[EcolixClient] = []

    def make(handler: Handler, **kwargs: object) -> EcolixClient:
        client = EcolixClient(
            BASE_URL,
            "secret-token",
            transport=httpx.MockTransport(handler),
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            **kwargs,  # type: ignore[arg-type]
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def problem(
    status: int, *, headers: dict[str, str] | None = None, **fields: object
) -> httpx.Response:
    body = {"type": "about:blank", "title": "Refused", "status": status, **fields}
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/problem+json", **(headers or {})},
    )


def ok(body: object, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


# -- httpx never leaks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        pytest.param(httpx.ConnectError("refused"), EcolixNotSentError, id="connect"),
        pytest.param(httpx.ConnectTimeout("slow"), EcolixNotSentError, id="connect-timeout"),
        pytest.param(httpx.ReadTimeout("slow"), EcolixRetriableError, id="read-timeout"),
        pytest.param(httpx.ReadError("reset"), EcolixRetriableError, id="read-error"),
        pytest.param(httpx.RemoteProtocolError("garbage"), EcolixRetriableError, id="protocol"),
        pytest.param(httpx.PoolTimeout("busy"), EcolixNotSentError, id="pool-timeout"),
        pytest.param(httpx.UnsupportedProtocol("ftp"), EcolixFinalError, id="bad-scheme"),
    ],
)
def test_httpx_exceptions_become_ecolix_errors(
    make_client: Callable[..., EcolixClient], exc: Exception, expected: type[EcolixError]
) -> None:
    client = make_client(Recorder(exc))
    with pytest.raises(EcolixError) as caught:
        client.upsert_customer(CUSTOMER, idempotency_key="k1")
    assert type(caught.value) is expected
    assert not isinstance(caught.value, httpx.HTTPError)
    assert caught.value.operation == "customers.upsert"


def test_the_httpx_error_stays_available_as_the_cause(
    make_client: Callable[..., EcolixClient],
) -> None:
    client = make_client(Recorder(httpx.ConnectError("refused")), retry=RetryPolicy(attempts=1))
    with pytest.raises(EcolixRetriableError) as caught:
        client.get("customers.get", code="C001")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


# -- retries -------------------------------------------------------------------------------------


def test_connect_errors_are_retried_until_the_call_succeeds(
    make_client: Callable[..., EcolixClient],
) -> None:
    recorder = Recorder(httpx.ConnectError("down"), httpx.ConnectError("down"), ok(CUSTOMER))
    client = make_client(recorder)
    assert client.get("customers.get", code="C001") == CUSTOMER
    assert len(recorder.requests) == 3
    assert client.usage.retries == 2


def test_backoff_grows_exponentially_with_bounded_jitter(
    make_client: Callable[..., EcolixClient], fake_time: FakeTime
) -> None:
    policy = RetryPolicy(attempts=4, first_delay=0.5, max_delay=8.0, jitter=0.25)
    client = make_client(Recorder(problem(503)), retry=policy)
    with pytest.raises(EcolixRetriableError, match="gave up after 4 attempts"):
        client.get("customers.get", code="C001")
    assert len(fake_time.sleeps) == 3
    for sleep, base in zip(fake_time.sleeps, [0.5, 1.0, 2.0], strict=True):
        assert base <= sleep <= base + 0.25


def test_retries_stop_when_the_waits_would_exceed_the_cap(
    make_client: Callable[..., EcolixClient], fake_time: FakeTime
) -> None:
    policy = RetryPolicy(
        attempts=10, first_delay=1.0, max_delay=100.0, jitter=0.0, max_total_wait=10
    )
    recorder = Recorder(problem(502))
    client = make_client(recorder, retry=policy)
    with pytest.raises(EcolixRetriableError):
        client.get("customers.get", code="C001")
    assert fake_time.sleeps == [1.0, 2.0, 4.0]  # the next, 8.0, would make 15 > 10
    assert len(recorder.requests) == 4


def test_a_429_waits_at_least_retry_after_then_succeeds(
    make_client: Callable[..., EcolixClient], fake_time: FakeTime
) -> None:
    recorder = Recorder(problem(429, headers={"Retry-After": "7"}), ok(CUSTOMER))
    client = make_client(recorder)
    assert client.get("customers.get", code="C001") == CUSTOMER
    assert sum(fake_time.sleeps) >= 7
    assert client.usage.throttled == 1


def test_a_retry_after_longer_than_the_cap_is_left_to_the_pipeline(
    make_client: Callable[..., EcolixClient], fake_time: FakeTime
) -> None:
    recorder = Recorder(problem(503, headers={"Retry-After": "3600"}))
    client = make_client(recorder)
    with pytest.raises(EcolixRetriableError) as caught:
        client.upsert_customer(CUSTOMER, idempotency_key="k1")
    assert caught.value.retry_after == 3600
    assert len(recorder.requests) == 1
    assert fake_time.sleeps == []


# -- calls never sent ----------------------------------------------------------------------------


def test_a_call_refused_at_every_try_was_never_sent(
    make_client: Callable[..., EcolixClient],
) -> None:
    recorder = Recorder(httpx.ConnectError("refused"))
    client = make_client(recorder)
    with pytest.raises(EcolixNotSentError, match="not sent"):
        client.upsert_customer(CUSTOMER, idempotency_key="k1")
    assert len(recorder.requests) == 4  # retried within the call, none of them left


def test_a_call_whose_first_request_timed_out_counts_even_if_the_next_is_refused(
    make_client: Callable[..., EcolixClient],
) -> None:
    recorder = Recorder(httpx.ReadTimeout("slow"), httpx.ConnectError("refused"))
    client = make_client(recorder)
    with pytest.raises(EcolixRetriableError) as caught:
        client.upsert_customer(CUSTOMER, idempotency_key="k1")
    assert not isinstance(caught.value, EcolixNotSentError)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_a_call_held_back_by_a_long_pause_is_not_sent(
    make_client: Callable[..., EcolixClient],
) -> None:
    recorder = Recorder(problem(503, headers={"Retry-After": "3600"}), ok(CUSTOMER))
    client = make_client(recorder)
    with pytest.raises(EcolixRetriableError):
        client.upsert_customer(CUSTOMER, idempotency_key="k1")
    with pytest.raises(EcolixNotSentError) as caught:
        client.upsert_customer(CUSTOMER, idempotency_key="k2")
    assert caught.value.retry_after is not None and caught.value.retry_after > 30
    assert len(recorder.requests) == 1


def test_a_stop_while_waiting_to_retry_a_sent_call_still_counts_it(
    fake_time: FakeTime,
) -> None:
    recorder = Recorder(httpx.ReadTimeout("slow"), ok(CUSTOMER))

    def stop_during_the_wait(seconds: float) -> None:
        client.stop_waiting()

    client = EcolixClient(
        BASE_URL,
        "secret-token",
        transport=httpx.MockTransport(recorder),
        clock=fake_time.clock,
        sleep=stop_during_the_wait,
    )
    with client, pytest.raises(EcolixRetriableError) as caught:
        client.upsert_customer(CUSTOMER, idempotency_key="k1")
    assert not isinstance(caught.value, EcolixNotSentError)
    assert len(recorder.requests) == 1


def test_an_http_date_retry_after_is_understood(
    make_client: Callable[..., EcolixClient],
) -> None:
    client = make_client(
        Recorder(problem(429, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}))
    )
    with pytest.raises(EcolixRetriableError) as caught:
        client.get("customers.get", code="C001")
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 3600


def test_a_500_is_retriable_later_but_not_retried_within_the_call(
    make_client: Callable[..., EcolixClient],
) -> None:
    recorder = Recorder(problem(500))
    client = make_client(recorder)
    with pytest.raises(EcolixRetriableError) as caught:
        client.upsert_customer(CUSTOMER, idempotency_key="k1")
    assert caught.value.status == 500
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(400, EcolixFinalError, id="400"),
        pytest.param(401, EcolixAuthError, id="401"),
        pytest.param(403, EcolixAuthError, id="403"),
        pytest.param(404, EcolixNotFoundError, id="404"),
        pytest.param(409, EcolixConflictError, id="409"),
        pytest.param(422, EcolixFinalError, id="422"),
        pytest.param(412, EcolixFinalError, id="412"),
    ],
)
def test_other_4xx_are_final_and_never_retried(
    make_client: Callable[..., EcolixClient], status: int, expected: type[EcolixError]
) -> None:
    recorder = Recorder(problem(status), ok(CUSTOMER))
    client = make_client(recorder)
    with pytest.raises(expected) as caught:
        client.upsert_customer(CUSTOMER, idempotency_key="k1")
    assert type(caught.value) is expected
    assert caught.value.status == status
    assert len(recorder.requests) == 1


def test_a_problem_without_json_still_reports_status_and_text(
    make_client: Callable[..., EcolixClient],
) -> None:
    client = make_client(Recorder(httpx.Response(404, text="<html>no such page</html>")))
    with pytest.raises(EcolixNotFoundError) as caught:
        client.get("customers.get", code="C001")
    assert caught.value.problem is not None
    assert caught.value.problem.detail == "<html>no such page</html>"


def test_a_success_that_is_not_json_is_retriable(
    make_client: Callable[..., EcolixClient],
) -> None:
    client = make_client(Recorder(httpx.Response(200, text="<html>proxy</html>")))
    with pytest.raises(EcolixRetriableError, match="not JSON"):
        client.upsert_customer(CUSTOMER, idempotency_key="k1")


# -- writes --------------------------------------------------------------------------------------


def test_a_write_without_an_idempotency_key_is_a_programming_error(
    make_client: Callable[..., EcolixClient],
) -> None:
    client = make_client(Recorder(ok(CUSTOMER)))
    with pytest.raises(TypeError):
        client.upsert_customer(CUSTOMER)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="idempotency key"):
        client.upsert_customer(CUSTOMER, idempotency_key="")
    with pytest.raises(ValueError, match="idempotency key"):
        client.write("orders.create", {}, idempotency_key="line\nbreak")


def test_a_write_sends_its_key_and_a_canonical_json_body(
    make_client: Callable[..., EcolixClient],
) -> None:
    recorder = Recorder(ok({"number": "SO-1"}, status=201))
    client = make_client(recorder)
    payload = {"lines": [{"price": Decimal("12.50")}], "customer": "C001"}
    response = client.create_order(payload, idempotency_key="webshop/orders/1234/abcd")
    request = recorder.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/api/v1/orders"
    assert request.headers["Idempotency-Key"] == "webshop/orders/1234/abcd"
    assert request.headers["Authorization"] == "Bearer secret-token"
    assert request.content == b'{"customer":"C001","lines":[{"price":"12.50"}]}'
    assert response.status == 201
    assert response.object_id == "SO-1"
    assert response.replayed is False


def test_the_path_is_filled_from_the_body_and_escaped(
    make_client: Callable[..., EcolixClient],
) -> None:
    recorder = Recorder(ok(CUSTOMER))
    client = make_client(recorder)
    client.upsert_customer({"code": "A/B 1", "name": "x"}, idempotency_key="k1")
    assert recorder.requests[0].url.raw_path == b"/api/v1/customers/A%2FB%201"
    assert recorder.requests[0].method == "PUT"


def test_a_body_without_its_path_parameter_fails_before_any_call(
    make_client: Callable[..., EcolixClient],
) -> None:
    recorder = Recorder(ok({}))
    client = make_client(recorder)
    with pytest.raises(EcolixFinalError, match="needs 'number'"):
        client.validate_quote({"valid": True}, idempotency_key="k1")
    assert recorder.requests == []


def test_a_replayed_answer_is_flagged(make_client: Callable[..., EcolixClient]) -> None:
    client = make_client(Recorder(ok(CUSTOMER, headers={"Idempotent-Replayed": "true"})))
    assert client.upsert_customer(CUSTOMER, idempotency_key="k1").replayed is True


def test_read_and_write_operations_are_not_interchangeable(
    make_client: Callable[..., EcolixClient],
) -> None:
    client = make_client(Recorder(ok({})))
    with pytest.raises(ValueError, match="read operation"):
        client.write("orders.get", {"number": "1"}, idempotency_key="k1")
    with pytest.raises(ValueError, match="write operation"):
        client.get("orders.create")


# -- rate-limit headers --------------------------------------------------------------------------


def test_an_exhausted_server_window_holds_the_next_call(
    make_client: Callable[..., EcolixClient], fake_time: FakeTime
) -> None:
    exhausted = {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4"}
    client = make_client(Recorder(ok(CUSTOMER, headers=exhausted), ok(CUSTOMER)))
    client.get("customers.get", code="C001")
    assert fake_time.sleeps == []
    client.get("customers.get", code="C001")
    assert sum(fake_time.sleeps) == pytest.approx(4.0, abs=0.01)


def test_a_full_server_window_adds_no_wait_to_our_own_limiter_under_the_same_limit(
    make_client: Callable[..., EcolixClient], fake_time: FakeTime
) -> None:
    first = {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "0"}
    full = {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "90"}
    client = make_client(
        Recorder(ok(CUSTOMER, headers=first), ok(CUSTOMER, headers=full), ok(CUSTOMER)),
        calls_per_minute=2,
    )
    for _ in range(3):
        client.get("customers.get", code="C001")
    assert sum(fake_time.sleeps) == pytest.approx(60.0, abs=0.01)  # our window, not Reset: 90


def test_a_server_limit_below_our_agreement_holds_our_calls(
    make_client: Callable[..., EcolixClient], fake_time: FakeTime
) -> None:
    full = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4"}
    client = make_client(Recorder(ok(CUSTOMER, headers=full), ok(CUSTOMER)), calls_per_minute=10)
    client.get("customers.get", code="C001")
    client.get("customers.get", code="C001")
    assert sum(fake_time.sleeps) == pytest.approx(4.0, abs=0.01)


def test_unparseable_rate_headers_are_ignored(
    make_client: Callable[..., EcolixClient], fake_time: FakeTime
) -> None:
    odd = {"X-RateLimit-Remaining": "none", "X-RateLimit-Reset": "soon"}
    client = make_client(Recorder(ok(CUSTOMER, headers=odd)))
    client.get("customers.get", code="C001")
    client.get("customers.get", code="C001")
    assert fake_time.sleeps == []


# -- lists ---------------------------------------------------------------------------------------


def test_a_listing_fetches_nothing_until_iterated_and_counts_its_calls(
    make_client: Callable[..., EcolixClient],
) -> None:
    recorder = Recorder(
        ok({"items": [{"code": "A1"}, {"code": "A2"}], "next_cursor": "c2"}),
        ok({"items": [{"code": "A3"}], "next_cursor": None}),
    )
    client = make_client(recorder)
    listing = client.iter_list("articles.list", page_size=2)
    assert recorder.requests == []
    assert next(listing) == {"code": "A1"}
    assert len(recorder.requests) == 1
    assert [item["code"] for item in listing] == ["A2", "A3"]
    assert (listing.pages, listing.calls) == (2, 2)
    assert recorder.requests[1].url.params["cursor"] == "c2"
    assert recorder.requests[1].url.params["limit"] == "2"


def test_a_listing_refuses_a_naive_updated_since(
    make_client: Callable[..., EcolixClient],
) -> None:
    client = make_client(Recorder(ok({"items": [], "next_cursor": None})))
    with pytest.raises(ValueError, match="timezone-aware"):
        client.iter_list("articles.list", updated_since=datetime(2026, 1, 1))


def test_a_cursor_that_does_not_move_stops_the_listing(
    make_client: Callable[..., EcolixClient],
) -> None:
    client = make_client(Recorder(ok({"items": [{"code": "A1"}], "next_cursor": "same"})))
    with pytest.raises(EcolixFinalError, match="next_cursor"):
        list(client.iter_list("articles.list"))


@pytest.mark.parametrize("page_size", [0, 1001])
def test_a_page_size_outside_the_contract_is_refused(
    make_client: Callable[..., EcolixClient], page_size: int
) -> None:
    client = make_client(Recorder(ok({})))
    with pytest.raises(ValueError, match="page_size"):
        client.iter_list("articles.list", page_size=page_size)
