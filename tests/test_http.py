"""integrations/http.py against a real local HTTP server: retries, timeouts, typed errors, redaction, call rows,
rate limits and connection health."""

from __future__ import annotations

import json
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from integrations.connections import ConnectionDisabled, api_for
from integrations.http import (
    AuthError,
    NotFound,
    RateLimited,
    RateLimitUnknown,
    Rejected,
    RetryPolicy,
    TokenBucket,
    Unavailable,
    VendorAPI,
    VendorTimeout,
)
from integrations.models import Connection, VendorCall
from tests.factories import ConnectionFactory

FAST_RETRY = RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_cap=0.05)


class DemoAPI(VendorAPI):
    vendor = "Demo"

    def __init__(self, *args, api_key: str = "demo-api-key-123456", **kwargs) -> None:
        self.api_key = api_key
        kwargs.setdefault("retry", FAST_RETRY)
        super().__init__(*args, **kwargs)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture
def connection(db, httpserver: HTTPServer) -> Connection:
    return ConnectionFactory(base_url=httpserver.url_for("/"), secrets={"api_key": "conn-secret-value-42"})


@pytest.fixture
def slow_server():
    """A threaded server of its own for slow answers, so a request still sleeping cannot hold up other tests."""
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def demo_api(connection: Connection, **kwargs) -> DemoAPI:
    return api_for(connection, DemoAPI, api_key=connection.secret("api_key"), **kwargs)


def test_success_writes_one_call_row(connection, httpserver):
    httpserver.expect_oneshot_request("/v1/me", method="GET").respond_with_json({"ok": True})
    assert demo_api(connection).request_json("GET", "/v1/me") == {"ok": True}
    call = VendorCall.objects.get()
    assert (call.method, call.status_code, call.error_type, call.attempt) == ("GET", 200, "", 1)
    assert httpserver.url_for("/v1/me").endswith(call.url)  # the whole URL, or its path in a compact row


def slow(request):
    time.sleep(0.3)
    return Response("late")


def test_read_timeout_is_a_typed_error_and_retried_for_get(connection, slow_server):
    slow_server.expect_request("/slow").respond_with_handler(slow)
    connection.base_url = slow_server.url_for("/")
    with pytest.raises(VendorTimeout):
        demo_api(connection, read_timeout=0.1).request("GET", "/slow")
    calls = VendorCall.objects.order_by("attempt")
    assert [c.attempt for c in calls] == [1, 2, 3]
    assert {c.error_type for c in calls} == {"timeout"}


def test_read_timeout_on_post_is_not_repeated(connection, slow_server):
    slow_server.expect_request("/send", method="POST").respond_with_handler(slow)
    connection.base_url = slow_server.url_for("/")
    with pytest.raises(VendorTimeout):
        demo_api(connection, read_timeout=0.1).request("POST", "/send", json_body={"to": "+15005550006"})
    assert VendorCall.objects.count() == 1


def test_429_then_200_waits_retry_after_and_succeeds(connection, httpserver):
    sleeps: list[float] = []
    retry = RetryPolicy(max_attempts=3, backoff_base=0.01, sleep=sleeps.append)
    httpserver.expect_ordered_request("/v1/subscriptions", method="POST").respond_with_json(
        {"message": "slow down"}, status=429, headers={"Retry-After": "2"}
    )
    httpserver.expect_ordered_request("/v1/subscriptions", method="POST").respond_with_json({"done": True}, status=202)
    # A 429 means the request was not processed: even a POST is sent again.
    response = demo_api(connection, retry=retry).request("POST", "/v1/subscriptions", json_body={"a": 1})
    assert response.status_code == 202
    assert 2.0 <= sleeps[0] < 2.1
    assert list(VendorCall.objects.order_by("attempt").values_list("status_code", flat=True)) == [429, 202]


def test_429_without_retry_after_backs_off_exponentially(connection, httpserver):
    sleeps: list[float] = []
    retry = RetryPolicy(max_attempts=4, backoff_base=1.0, backoff_cap=100, sleep=sleeps.append)
    httpserver.expect_request("/limited").respond_with_json({}, status=429)
    with pytest.raises(RateLimited):
        demo_api(connection, retry=retry).request("GET", "/limited")
    assert len(sleeps) == 3
    assert all(0 <= delay <= 2**i for i, delay in enumerate(sleeps))


def test_long_retry_after_is_handed_up_not_slept(connection, httpserver):
    sleeps: list[float] = []
    httpserver.expect_request("/limited").respond_with_json({}, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(RateLimited) as caught:
        demo_api(connection, retry=RetryPolicy(sleep=sleeps.append)).request("GET", "/limited")
    assert caught.value.retry_after == 3600
    assert sleeps == []


def test_500_then_200_is_retried_for_get(connection, httpserver):
    httpserver.expect_ordered_request("/items").respond_with_json({"message": "boom"}, status=500)
    httpserver.expect_ordered_request("/items").respond_with_json({"items": []})
    assert demo_api(connection).request_json("GET", "/items") == {"items": []}
    assert list(VendorCall.objects.order_by("attempt").values_list("status_code", flat=True)) == [500, 200]


def test_500_on_post_is_not_retried_unless_marked_safe(connection, httpserver):
    httpserver.expect_request("/points", method="POST").respond_with_json({"message": "boom"}, status=500)
    with pytest.raises(Unavailable):
        demo_api(connection).request("POST", "/points", json_body={})
    assert VendorCall.objects.count() == 1
    with pytest.raises(Unavailable):
        demo_api(connection).request("POST", "/points", json_body={}, safe_to_repeat=True)
    assert VendorCall.objects.count() == 1 + 3


def test_400_is_rejected_once_with_the_vendors_message(connection, httpserver):
    httpserver.expect_request("/v1/subscriptions", method="POST").respond_with_json(
        {"message": "signUpSourceId is required"}, status=400
    )
    with pytest.raises(Rejected) as caught:
        demo_api(connection).request("POST", "/v1/subscriptions", json_body={"user": {}}, safe_to_repeat=True)
    assert caught.value.status == 400
    assert "signUpSourceId is required" in str(caught.value)
    assert VendorCall.objects.count() == 1


def test_status_codes_map_to_typed_errors(connection, httpserver):
    httpserver.expect_request("/401").respond_with_json({"message": "bad key"}, status=401)
    httpserver.expect_request("/403").respond_with_json({"message": "no scope"}, status=403)
    httpserver.expect_request("/404").respond_with_data("", status=404)
    api = demo_api(connection)
    for path, error in [("/401", AuthError), ("/403", AuthError), ("/404", NotFound)]:
        with pytest.raises(error):
            api.request("GET", path)


def test_connection_refused_is_unavailable(connection):
    api = api_for(connection, DemoAPI)
    api.base_url = "http://127.0.0.1:9"
    with pytest.raises(Unavailable):
        api.request("GET", "/anything")
    assert VendorCall.objects.filter(error_type="unavailable").count() == 3


def test_secrets_are_redacted_from_call_rows(connection, httpserver, settings):
    settings.VENDOR_CALL_BODY_SAMPLE_RATE = 1.0  # a successful call keeps its bodies only in a sample
    secret = connection.secret("api_key")
    httpserver.expect_request("/echo", method="POST").respond_with_json(
        {"echo": secret, "accessToken": "returned-access-token-1"}
    )
    demo_api(connection).request(
        "POST", f"/echo?passkey=pass-in-query-777&page=2&path={secret}", json_body={"clientSecret": "s3cr3t-value"}
    )
    call = VendorCall.objects.get()
    everything = json.dumps(
        [call.url, call.request_headers, call.request_body, call.response_body, call.error], ensure_ascii=False
    )
    for leaked in (secret, "pass-in-query-777", "s3cr3t-value", "returned-access-token-1"):
        assert leaked not in everything
    assert call.request_headers["Authorization"] == "[redacted]"
    assert "page=2" in call.url


def test_rate_limiter_spaces_calls(connection, httpserver):
    httpserver.expect_request("/tick").respond_with_json({})
    api = demo_api(connection, rate_limiter=TokenBucket(rate=20, burst=1))
    started = time.perf_counter()
    for _ in range(6):
        api.request("GET", "/tick")
    assert time.perf_counter() - started >= 5 / 20 * 0.9


def test_calls_that_keep_failing_mark_the_connection_failing_and_a_success_recovers(connection, httpserver, settings):
    settings.CONNECTION_FAILURE_THRESHOLD = 2
    httpserver.expect_request("/down").respond_with_json({"message": "down"}, status=503)
    httpserver.expect_request("/up").respond_with_json({})
    api = demo_api(connection, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(Unavailable):
        api.request("GET", "/down")
    connection.refresh_from_db()
    assert connection.status == Connection.Status.ACTIVE
    with pytest.raises(Unavailable):
        api.request("GET", "/down")
    connection.refresh_from_db()
    assert connection.status == Connection.Status.FAILING
    assert "Demo" in connection.last_check_result
    api.request("GET", "/up")
    connection.refresh_from_db()
    assert (connection.status, connection.consecutive_failures) == (Connection.Status.ACTIVE, 0)


def test_auth_error_marks_failing_at_once_but_a_rejected_request_does_not(connection, httpserver):
    httpserver.expect_request("/bad-request").respond_with_json({"message": "invalid phone"}, status=400)
    httpserver.expect_request("/bad-key").respond_with_json({"message": "invalid key"}, status=401)
    api = demo_api(connection)
    for _ in range(5):
        with pytest.raises(Rejected):
            api.request("GET", "/bad-request")
    connection.refresh_from_db()
    assert connection.status == Connection.Status.ACTIVE
    with pytest.raises(AuthError):
        api.request("GET", "/bad-key")
    connection.refresh_from_db()
    assert connection.status == Connection.Status.FAILING
    assert "credentials" in connection.last_check_result


def test_a_disabled_connection_makes_no_calls(connection):
    connection.status = Connection.Status.DISABLED
    with pytest.raises(ConnectionDisabled, match="disabled"):
        demo_api(connection)


# --- Leaving: the rate limit first, then the caller's last step, then the call -------------------------------------


class Gate:
    """A rate limiter that records when it let a call go."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    def acquire(self) -> float:
        self.events.append("limit")
        return 0.0


def test_before_send_runs_after_the_rate_limit_and_its_headers_leave_with_the_call(connection, httpserver):
    events: list[str] = []
    httpserver.expect_request("/token-late", headers={"X-Late-Token": "fresh"}).respond_with_json({"ok": True})

    def take_token(prepared) -> None:
        events.append("before_send")
        prepared.headers["X-Late-Token"] = "fresh"

    api = demo_api(connection, rate_limiter=Gate(events))
    assert api.request_json("POST", "/token-late", json_body={}, before_send=take_token) == {"ok": True}
    assert events == ["limit", "before_send"]
    assert len(httpserver.log) == 1


def test_what_before_send_raises_stops_the_call_before_anything_leaves(connection, httpserver):
    httpserver.expect_request("/never").respond_with_json({"ok": True})

    def taken_back(prepared) -> None:
        raise LookupError("the message was taken back")

    with pytest.raises(LookupError):
        demo_api(connection).request("POST", "/never", json_body={}, before_send=taken_back)
    assert httpserver.log == []
    assert not VendorCall.objects.filter(connection=connection).exists()


def test_a_call_whose_shared_rate_limit_is_unreachable_is_held_back_not_sent(connection, httpserver, settings):
    """Redis down: the limit cannot be kept, so nothing goes; the error says the call was not sent and does not
    count against the vendor's connection."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
    }
    settings.RATE_LIMIT_CACHE_WAIT_SECONDS = 0
    httpserver.expect_request("/held").respond_with_json({"ok": True})
    with pytest.raises(RateLimitUnknown, match="not sent") as raised:
        demo_api(connection).request("POST", "/held", json_body={})
    assert not raised.value.uncertain and not raised.value.counts_against_connection
    assert httpserver.log == []
    connection.refresh_from_db()
    assert connection.consecutive_failures == 0
