"""integrations/http.py's rules, pinned so that mutation testing (`make mutate`) finds no change that passes: the
backoff's size, which failures are uncertain and which may be sent again, the limits a call waits for, and what a
call row records. Vendors answer over real HTTP (pytest-httpserver); sleeps are recorded, never slept."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from integrations.attentive.api import AttentiveAPI
from integrations.http import (
    EXPECTED_NOT_FOUND,
    EXPECTED_REFUSAL,
    AuthError,
    CallRecord,
    ExpectedAnswer,
    ForbiddenDestination,
    LimitUnknown,
    NotFound,
    RateLimited,
    RateLimitUnknown,
    Rejected,
    RetryPolicy,
    TokenBucket,
    Unavailable,
    UnsafePathSegment,
    VendorAPI,
    VendorTimeout,
    connection_failure,
    never_connected,
    path_segment,
    pooled_session,
    shared_rate_limiter,
)
from integrations.redaction import REDACTED

DRAWS = 400  # enough random draws that a wrong bound shows: 0.9^400 ≈ 5e-19 to miss the top tenth by chance


class DemoAPI(VendorAPI):
    vendor = "Demo"


class RecordingLimiter:
    def __init__(self) -> None:
        self.acquired = 0

    def acquire(self) -> float:
        self.acquired += 1
        return 0.0


def recorded_sleeps(**policy) -> tuple[RetryPolicy, list[float]]:
    sleeps: list[float] = []
    return RetryPolicy(sleep=sleeps.append, **policy), sleeps


@pytest.fixture
def slow_server():
    """A threaded server of its own: it keeps (and records) a request, then answers after the client gave up."""
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


class LateAnswers:
    """A handler that records each request as it arrives, then answers after the client's 0.1 s read timeout."""

    def __init__(self) -> None:
        self.arrived: list[str] = []

    def __call__(self, request: Request) -> Response:
        self.arrived.append(request.path)
        time.sleep(0.3)
        return Response("late")


# --- The backoff ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [1, 2, 3, 4])
def test_backoff_is_full_jitter_up_to_base_times_two_to_the_attempt_before(attempt):
    ceiling = 0.5 * 2 ** (attempt - 1)
    draws = [RetryPolicy(backoff_base=0.5, backoff_cap=100.0).backoff(attempt) for _ in range(DRAWS)]
    assert all(0 <= draw <= ceiling for draw in draws)
    assert max(draws) > 0.9 * ceiling  # never a fixed 0, never a smaller ceiling
    assert min(draws) < 0.1 * ceiling  # full jitter: from zero, not from half


def test_backoff_stops_at_its_cap():
    draws = [RetryPolicy(backoff_base=1.0, backoff_cap=3.0).backoff(6) for _ in range(DRAWS)]
    assert max(draws) <= 3.0
    assert max(draws) > 2.7


def test_the_default_policy_tries_four_times_capped_at_20_s_and_hands_up_retry_after_over_60_s(settings):
    settings.VENDOR_RETRY_BACKOFF_SECONDS = 0.25
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.backoff_base, policy.backoff_cap, policy.max_retry_after) == (
        4, 0.25, 20.0, 60.0,
    )  # fmt: skip
    assert policy.sleep is time.sleep


def test_a_failing_get_sleeps_a_growing_jittered_backoff_between_attempts(httpserver: HTTPServer):
    retry, sleeps = recorded_sleeps(max_attempts=4, backoff_base=1.0, backoff_cap=100.0)
    httpserver.expect_request("/down").respond_with_json({"message": "down"}, status=503)
    with pytest.raises(Unavailable):
        DemoAPI(httpserver.url_for("/"), retry=retry).request("GET", "/down")
    assert len(sleeps) == 3 and len(httpserver.log) == 4
    assert all(0 < delay <= 2**i for i, delay in enumerate(sleeps))


def test_retry_after_is_waited_with_at_most_one_base_of_jitter(httpserver: HTTPServer):
    retry, sleeps = recorded_sleeps(max_attempts=DRAWS + 1, backoff_base=1.0)
    httpserver.expect_request("/limited").respond_with_json({}, status=429, headers={"Retry-After": "2"})
    with pytest.raises(RateLimited):
        DemoAPI(httpserver.url_for("/"), retry=retry).request("GET", "/limited")
    assert len(sleeps) == DRAWS
    assert all(2.0 <= delay <= 3.0 for delay in sleeps)
    assert max(sleeps) > 2.9 and min(sleeps) < 2.1


def test_retry_after_of_exactly_the_limit_is_slept_one_over_is_handed_up(httpserver: HTTPServer):
    retry, sleeps = recorded_sleeps(max_attempts=2, backoff_base=0.01, max_retry_after=5.0)
    httpserver.expect_ordered_request("/a").respond_with_json({}, status=429, headers={"Retry-After": "5"})
    httpserver.expect_ordered_request("/a").respond_with_json({"ok": True})
    assert DemoAPI(httpserver.url_for("/"), retry=retry).request_json("GET", "/a") == {"ok": True}
    assert 5.0 <= sleeps[0] <= 5.01
    httpserver.expect_request("/b").respond_with_json({}, status=429, headers={"Retry-After": "6"})
    with pytest.raises(RateLimited) as caught:
        DemoAPI(httpserver.url_for("/"), retry=retry).request("GET", "/b")
    assert caught.value.retry_after == 6.0
    assert len(sleeps) == 1


def test_a_retry_after_date_counts_down_to_that_moment(httpserver: HTTPServer):
    import email.utils

    in_30_s = email.utils.formatdate(time.time() + 30, usegmt=True)
    httpserver.expect_request("/limited").respond_with_json({}, status=429, headers={"Retry-After": in_30_s})
    retry, _ = recorded_sleeps(max_attempts=1)
    with pytest.raises(RateLimited) as caught:
        DemoAPI(httpserver.url_for("/"), retry=retry).request("GET", "/limited")
    assert 28 <= caught.value.retry_after <= 30
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    httpserver.clear()
    httpserver.expect_request("/limited").respond_with_json({}, status=429, headers={"Retry-After": past})
    with pytest.raises(RateLimited) as caught:
        DemoAPI(httpserver.url_for("/"), retry=retry).request("GET", "/limited")
    assert caught.value.retry_after == 0.0


# --- Uncertain failures and what is sent again ------------------------------------------------------------------


def test_a_post_read_timeout_is_uncertain_and_never_sent_again(slow_server):
    late = LateAnswers()
    slow_server.expect_request("/send", method="POST").respond_with_handler(late)
    retry, sleeps = recorded_sleeps()
    api = DemoAPI(slow_server.url_for("/"), retry=retry, read_timeout=0.1)
    with pytest.raises(VendorTimeout) as caught:
        api.request("POST", "/send", json_body={"to": "+15005550006"})
    assert caught.value.uncertain is True
    assert "no answer within 0.1 s" in str(caught.value)
    assert late.arrived == ["/send"] and sleeps == []


def test_an_sms_whose_answer_times_out_is_uncertain_at_attentive(slow_server):
    """The vendor API a message goes through: the SMS may have gone out, so the error says uncertain."""
    late = LateAnswers()
    slow_server.expect_request("/v1/subscriptions/messages", method="POST").respond_with_handler(late)
    retry, _ = recorded_sleeps()
    api = AttentiveAPI(slow_server.url_for("/"), api_key="key", legacy_token="legacy", retry=retry, read_timeout=0.1)
    with pytest.raises(VendorTimeout) as caught:
        api.send_message("+15005550006", "Hi")
    assert caught.value.uncertain is True
    assert late.arrived == ["/v1/subscriptions/messages"]


def test_a_get_read_timeout_is_uncertain_but_tried_again(slow_server):
    late = LateAnswers()
    slow_server.expect_request("/slow").respond_with_handler(late)
    retry, sleeps = recorded_sleeps(max_attempts=2)
    with pytest.raises(VendorTimeout) as caught:
        DemoAPI(slow_server.url_for("/"), retry=retry, read_timeout=0.1).request("GET", "/slow")
    assert caught.value.uncertain is True
    assert late.arrived == ["/slow", "/slow"] and len(sleeps) == 1


def test_a_connection_refused_never_reached_the_vendor_so_even_a_post_is_tried_again():
    retry, sleeps = recorded_sleeps(max_attempts=3)
    with pytest.raises(Unavailable) as caught:
        DemoAPI("http://127.0.0.1:9", retry=retry).request("POST", "/send", json_body={})
    assert caught.value.uncertain is False
    assert "could not connect: NewConnectionError" in str(caught.value)
    assert len(sleeps) == 2


def test_a_connection_dropped_after_sending_is_uncertain_and_a_post_is_not_repeated():
    """A server that reads the request and closes without answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    received: list[bytes] = []

    def drop_each() -> None:
        for _ in range(3):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            received.append(conn.recv(65536))
            conn.close()

    dropper = threading.Thread(target=drop_each, daemon=True)
    dropper.start()
    retry, sleeps = recorded_sleeps(max_attempts=3)
    api = DemoAPI(f"http://127.0.0.1:{listener.getsockname()[1]}", retry=retry)
    try:
        with pytest.raises(Unavailable) as caught:
            api.request("POST", "/send", json_body={"a": 1})
        assert caught.value.uncertain is True
        assert "answer lost after the request was sent" in str(caught.value)  # not "could not connect": it did
        assert len(received) == 1 and sleeps == []
        with pytest.raises(Unavailable) as caught:
            api.request("POST", "/send", json_body={"a": 1}, safe_to_repeat=True)
        assert len(received) == 3 and len(sleeps) == 2
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("status", "uncertain", "calls"),
    [(500, True, 1), (502, True, 1), (504, True, 1), (503, False, 3), (429, False, 3), (400, False, 1)],
)
def test_which_answers_to_a_post_are_uncertain_and_which_are_sent_again(httpserver, status, uncertain, calls):
    httpserver.expect_request("/points", method="POST").respond_with_json({"message": "no"}, status=status)
    retry, _ = recorded_sleeps(max_attempts=3)
    with pytest.raises(Unavailable if status >= 500 else (RateLimited if status == 429 else Rejected)) as caught:
        DemoAPI(httpserver.url_for("/"), retry=retry).request("POST", "/points", json_body={})
    assert caught.value.uncertain is uncertain
    assert len(httpserver.log) == calls


@pytest.mark.parametrize(("status", "calls"), [(500, 3), (502, 3), (503, 3), (504, 3), (501, 1), (404, 1)])
def test_which_answers_to_a_get_are_tried_again(httpserver, status, calls):
    httpserver.expect_request("/items").respond_with_json({"message": "no"}, status=status)
    retry, _ = recorded_sleeps(max_attempts=3)
    with pytest.raises(Unavailable if status >= 500 else NotFound):
        DemoAPI(httpserver.url_for("/"), retry=retry).request("GET", "/items")
    assert len(httpserver.log) == calls


@pytest.mark.parametrize(("method", "calls"), [("PUT", 2), ("DELETE", 2), ("HEAD", 2), ("OPTIONS", 2), ("PATCH", 1)])
def test_idempotent_methods_are_repeated_after_an_uncertain_answer(httpserver, method, calls):
    httpserver.expect_request("/thing", method=method).respond_with_data("", status=502)
    retry, _ = recorded_sleeps(max_attempts=2)
    with pytest.raises(Unavailable):
        DemoAPI(httpserver.url_for("/"), retry=retry).request(method.lower(), "/thing")
    assert len(httpserver.log) == calls


def test_a_post_marked_not_safe_is_not_repeated_even_when_the_method_would_be(httpserver):
    httpserver.expect_request("/thing", method="PUT").respond_with_data("", status=502)
    retry, _ = recorded_sleeps(max_attempts=3)
    with pytest.raises(Unavailable):
        DemoAPI(httpserver.url_for("/"), retry=retry).request("PUT", "/thing", safe_to_repeat=False)
    assert len(httpserver.log) == 1


def test_max_attempts_is_the_number_of_calls(httpserver):
    httpserver.expect_request("/down").respond_with_data("", status=503)
    retry, sleeps = recorded_sleeps(max_attempts=1)
    with pytest.raises(Unavailable):
        DemoAPI(httpserver.url_for("/"), retry=retry).request("GET", "/down")
    assert len(httpserver.log) == 1 and sleeps == []


# --- Typed errors from answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "kind", "against_connection"),
    [
        (401, AuthError, "auth", True),
        (403, AuthError, "auth", True),
        (429, RateLimited, "rate_limited", False),
        (500, Unavailable, "unavailable", True),
        (404, NotFound, "not_found", False),
        (409, Rejected, "rejected", False),
        (399, None, "", False),
    ],
)
def test_status_codes_map_to_errors_an_admin_can_act_on(httpserver, status, error, kind, against_connection):
    httpserver.expect_request("/x").respond_with_json({"message": "the vendor's words"}, status=status)
    retry, _ = recorded_sleeps(max_attempts=1)
    api = DemoAPI(httpserver.url_for("/"), retry=retry)
    if error is None:
        assert api.request("GET", "/x").status_code == status
        return
    with pytest.raises(error) as caught:
        api.request("GET", "/x")
    assert type(caught.value) is error
    assert (caught.value.kind, caught.value.counts_against_connection) == (kind, against_connection)
    assert caught.value.status == status
    assert caught.value.body == json.dumps({"message": "the vendor's words"})
    assert str(caught.value) == f"Demo: the vendor's words (HTTP {status})"
    assert caught.value.for_admin == f"{caught.value} — {error.default_hint}"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"errorMessage": "em", "message": "m"}, "em"),
        ({"errorMessage": "", "message": "m"}, "m"),
        ({"error_description": "ed", "error": "e"}, "ed"),
        ({"error": "e", "detail": "d"}, "e"),
        ({"detail": "d"}, "d"),
        ({"other": "x"}, "BAD REQUEST"),
        (["a list"], "BAD REQUEST"),
    ],
)
def test_the_vendors_own_words_are_read_from_common_body_shapes(httpserver, body, words):
    httpserver.expect_request("/x").respond_with_json(body, status=400)
    with pytest.raises(Rejected) as caught:
        DemoAPI(httpserver.url_for("/")).request("GET", "/x")
    assert caught.value.message == words


def test_a_text_error_body_is_its_first_300_characters_stripped(httpserver):
    httpserver.expect_request("/x").respond_with_data("  " + "e" * 400, status=400)
    with pytest.raises(Rejected) as caught:
        DemoAPI(httpserver.url_for("/")).request("GET", "/x")
    assert caught.value.message == "e" * 298


def test_an_error_with_a_code_says_it(httpserver):
    error = Rejected("Demo", "bad phone", status=400, code="E12")
    assert str(error) == "Demo: bad phone (HTTP 400, code E12)"
    assert str(Rejected("Demo", "bad phone")) == "Demo: bad phone"
    assert Rejected("Demo", "bad phone").args == ("bad phone",)  # what pickling (a Celery result) rebuilds it from


def test_a_body_that_is_not_json_is_a_rejection_naming_the_status(httpserver):
    httpserver.expect_request("/x").respond_with_data("<html>", status=200)
    with pytest.raises(Rejected, match="not JSON") as caught:
        DemoAPI(httpserver.url_for("/")).request_json("GET", "/x")
    assert caught.value.status == 200
    httpserver.expect_request("/empty").respond_with_data("", status=204)
    assert DemoAPI(httpserver.url_for("/")).request_json("GET", "/empty") is None


# --- What a call sends ---------------------------------------------------------------------------------------


def test_a_json_body_is_compact_with_its_content_type_and_accept(httpserver):
    httpserver.expect_request("/x", method="POST").respond_with_json({})
    DemoAPI(httpserver.url_for("/")).request("post", "/x", json_body={"a": 1, "b": [2]}, params={"q": "1"})
    sent = httpserver.log[0][0]
    assert sent.get_data() == b'{"a":1,"b":[2]}'
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Accept"] == "application/json"
    assert sent.args["q"] == "1"


def test_an_empty_body_is_still_sent_as_json(httpserver):
    httpserver.expect_request("/x", method="POST").respond_with_json({})
    DemoAPI(httpserver.url_for("/")).request("POST", "/x", json_body={})
    assert httpserver.log[0][0].get_data() == b"{}"


def test_a_redirect_is_not_followed(httpserver):
    httpserver.expect_request("/moved").respond_with_data("", status=302, headers={"Location": "/elsewhere"})
    response = DemoAPI(httpserver.url_for("/")).request("GET", "/moved")
    assert response.status_code == 302 and len(httpserver.log) == 1


# --- The limits a call waits for -----------------------------------------------------------------------------


def limiters_api(*, connection: bool, chosen: bool) -> tuple[DemoAPI, RecordingLimiter, RecordingLimiter]:
    own, endpoint = RecordingLimiter(), RecordingLimiter()
    api = DemoAPI(
        "http://127.0.0.1:9",
        rate_limiter=own if connection else None,
        endpoint_rate_limiters={"messages": endpoint},
        connection_limit_on_published_endpoints=chosen,
    )
    return api, own, endpoint


def test_a_published_endpoint_waits_for_its_own_limit_and_the_connections_only_when_chosen():
    api, own, endpoint = limiters_api(connection=True, chosen=False)
    assert api.limiters_for("messages") == [endpoint]
    assert api.limiters_for("other") == [own]
    assert api.limiters_for(None) == [own]
    api, own, endpoint = limiters_api(connection=True, chosen=True)
    assert api.limiters_for("messages") == [own, endpoint]
    api, own, endpoint = limiters_api(connection=False, chosen=True)
    assert api.limiters_for("messages") == [endpoint]
    assert api.limiters_for("other") == []


def test_every_attempt_waits_for_the_limit(httpserver):
    limiter = RecordingLimiter()
    httpserver.expect_request("/down").respond_with_data("", status=503)
    retry, _ = recorded_sleeps(max_attempts=3)
    with pytest.raises(Unavailable):
        DemoAPI(httpserver.url_for("/"), retry=retry, rate_limiter=limiter).request("GET", "/down")
    assert limiter.acquired == 3


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_token_bucket_allows_its_burst_then_waits_a_token_s_time(monkeypatch):
    clock, waits = FakeClock(), []
    monkeypatch.setattr("integrations.http.time.sleep", waits.append)
    bucket = TokenBucket(rate=8, burst=2, clock=clock)  # eighths of a second add up exactly in binary
    assert [bucket.acquire(), bucket.acquire()] == [0.0, 0.0]
    assert [bucket.acquire(), bucket.acquire()] == [0.125, 0.25]
    clock.now += 0.375  # the two tokens owed are repaid, one more earned
    assert bucket.acquire() == 0.0
    clock.now += 10  # idle time earns no more than the burst
    assert [bucket.acquire(), bucket.acquire(), bucket.acquire()] == [0.0, 0.0, 0.125]
    assert waits == [0.125, 0.25, 0.125]


def test_a_token_bucket_bursts_its_rate_by_default_and_at_least_one():
    assert TokenBucket(rate=25).capacity == 25
    assert TokenBucket(rate=0.5).capacity == 1.0


def test_one_bucket_per_key_and_rate_in_a_process():
    bucket = shared_rate_limiter("test:bucket", 5)
    assert isinstance(bucket, TokenBucket) and bucket.rate == 5
    assert shared_rate_limiter("test:bucket", 5) is bucket
    changed = shared_rate_limiter("test:bucket", 6)
    assert changed is not bucket and changed.rate == 6
    assert shared_rate_limiter("test:bucket", 6) is changed
    assert shared_rate_limiter("test:bucket-other", 6) is not changed


@pytest.mark.parametrize(
    ("value", "segment"), [("c#d@x.com", "c%23d@x.com"), ("a/b", "a%2Fb"), ("a b?", "a%20b%3F"), (42, "42")]
)
def test_an_id_in_a_url_path_stays_one_segment(value, segment):
    assert path_segment(value) == segment


def test_an_error_without_words_or_reason_still_says_error():
    """A bare status line (no reason phrase, no body): the admin still reads "error", not an empty message."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer_bare_400() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 400 \r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        conn.close()

    threading.Thread(target=answer_bare_400, daemon=True).start()
    try:
        with pytest.raises(Rejected) as caught:
            DemoAPI(f"http://127.0.0.1:{listener.getsockname()[1]}").request("GET", "/x")
    finally:
        listener.close()
    assert caught.value.message == "error"


class RecordingCallLog:
    def __init__(self) -> None:
        self.calls: list[CallRecord] = []

    def record(self, call: CallRecord) -> None:
        self.calls.append(call)

    def succeeded(self) -> None:
        pass

    def failed(self, error) -> None:
        pass


def test_the_call_record_redacts_named_json_fields_and_query_parameters_and_keeps_the_rest(httpserver):
    """What VendorAPI itself hands the call log, before any other layer sees it."""
    httpserver.expect_request("/x", method="POST").respond_with_json({"access_token": "issued-1", "token": ""})
    log = RecordingCallLog()
    DemoAPI(httpserver.url_for("/"), call_log=log).request(
        "POST", "/x?page=&passkey=in-query-777&size=2", json_body={"clientSecret": "s3cr3t", "page": [{"secret": "x"}]}
    )
    (call,) = log.calls
    assert call.url == httpserver.url_for("/x") + "?page=&passkey=[redacted]&size=2"
    assert json.loads(call.request_body) == {"clientSecret": "[redacted]", "page": [{"secret": "[redacted]"}]}
    assert json.loads(call.response_body) == {"access_token": "[redacted]", "token": ""}  # nothing to hide in ""


def test_the_call_record_redacts_known_secret_values_and_survives_a_body_that_is_not_utf8(httpserver):
    httpserver.expect_request("/echo").respond_with_data(b"key=conn-secret-42 \xff", status=200)
    log = RecordingCallLog()
    DemoAPI(httpserver.url_for("/"), call_log=log, secret_values=["conn-secret-42", ""]).request("GET", "/echo")
    assert log.calls[0].response_body == "key=[redacted] \ufffd"


def test_a_callers_content_type_is_kept(httpserver):
    httpserver.expect_request("/x", method="PATCH").respond_with_json({})
    DemoAPI(httpserver.url_for("/")).request(
        "PATCH", "/x", json_body={"a": 1}, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert httpserver.log[0][0].headers["Content-Type"] == "application/merge-patch+json"


def test_a_call_to_a_published_endpoint_waits_for_that_endpoints_limit(httpserver):
    httpserver.expect_request("/send", method="POST").respond_with_json({})
    endpoint = RecordingLimiter()
    api = DemoAPI(httpserver.url_for("/"), endpoint_rate_limiters={"messages": endpoint})
    api.request("POST", "/send", json_body={}, rate_limit_key="messages")
    assert endpoint.acquired == 1


# --- Where a call may go ---------------------------------------------------------------------------------------


def test_a_full_url_on_the_connections_own_base_url_is_sent_there(httpserver):
    """Vendors hand back full URLs (a next page, a status link): on the connection's own scheme, host and port
    they are followed as they are."""
    httpserver.expect_request("/next", query_string="page=2").respond_with_json({"page": 2})
    api = DemoAPI(httpserver.url_for("/"))
    assert api.request_json("GET", httpserver.url_for("/next?page=2")) == {"page": 2}
    assert [request.full_path for request, _ in httpserver.log] == ["/next?page=2"]


@pytest.mark.parametrize("other", ["http://127.0.0.1:{port}/steal", "https://localhost:{port}/steal", "//evil/x"])
def test_a_full_url_to_another_scheme_host_or_port_is_refused_and_never_sent(httpserver, slow_server, other):
    """localhost and 127.0.0.1 are one machine but not one netloc: the base URL an admin set is what is compared."""
    slow_server.expect_request("/steal").respond_with_json({})
    api = DemoAPI(httpserver.url_for("/"), secret_values=["conn-secret-42"])
    for destination in (other.format(port=httpserver.port), slow_server.url_for("/steal")):
        with pytest.raises(ForbiddenDestination) as caught:
            api.request("POST", destination, json_body={"key": "conn-secret-42"})
        assert caught.value.kind == "forbidden_destination"
    assert httpserver.log == [] and slow_server.log == []


def test_a_named_json_field_is_redacted_whole_even_where_the_text_patterns_stop(httpserver):
    """The log-line patterns stop a value at a space, a comma or a brace; a named JSON field is redacted whole."""
    httpserver.expect_request("/login", method="POST").respond_with_json({"token": {"value": "issued-1", "ttl": 60}})
    log = RecordingCallLog()
    DemoAPI(httpserver.url_for("/"), call_log=log).request(
        "POST", "/login", json_body={"user": "ann", "password": "correct horse, battery staple"}
    )
    (call,) = log.calls
    assert json.loads(call.request_body) == {"user": "ann", "password": "[redacted]"}
    assert json.loads(call.response_body) == {"token": "[redacted]"}
    assert "horse" not in call.request_body and "issued-1" not in call.response_body


# --- What each failure says, and what its call row records (issue 19: the http.py mutmut run) -----------------------


def a_full_backlog() -> tuple[socket.socket, list[socket.socket]]:
    """A listener that accepts nothing, its backlog filled: a further connection's SYN is dropped, so connecting
    times out (Linux)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    waiting = []
    for _ in range(3):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(listener.getsockname())
        waiting.append(client)
    time.sleep(0.1)
    return listener, waiting


def test_a_connect_timeout_names_the_vendor_says_so_and_is_tried_again():
    listener, waiting = a_full_backlog()
    retry, sleeps = recorded_sleeps(max_attempts=2)
    api = DemoAPI(f"http://127.0.0.1:{listener.getsockname()[1]}", retry=retry, connect_timeout=0.2)
    try:
        with pytest.raises(VendorTimeout) as caught:
            api.request("POST", "/send", json_body={})
    finally:
        for sock in (listener, *waiting):
            sock.close()
    assert (caught.value.vendor, caught.value.message) == ("Demo", "connection timed out (ConnectTimeout)")
    assert caught.value.uncertain is False and len(sleeps) == 1  # it never left: sent again, even a POST


def test_a_read_timeout_and_a_refused_connection_name_the_vendor(slow_server):
    slow_server.expect_request("/slow").respond_with_handler(LateAnswers())
    retry, _ = recorded_sleeps(max_attempts=1)
    with pytest.raises(VendorTimeout) as late:
        DemoAPI(slow_server.url_for("/"), retry=retry, read_timeout=0.1).request("GET", "/slow")
    with pytest.raises(Unavailable) as refused:
        DemoAPI("http://127.0.0.1:9", retry=retry).request("GET", "/x")
    assert (late.value.vendor, late.value.message) == ("Demo", "no answer within 0.1 s")
    assert (refused.value.vendor, refused.value.message) == ("Demo", "could not connect: NewConnectionError")


def test_a_dropped_connection_says_the_answer_was_lost_in_those_words():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def drop_one() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    threading.Thread(target=drop_one, daemon=True).start()
    retry, _ = recorded_sleeps(max_attempts=1)
    try:
        with pytest.raises(Unavailable) as caught:
            DemoAPI(f"http://127.0.0.1:{listener.getsockname()[1]}", retry=retry).request("POST", "/x", json_body={})
    finally:
        listener.close()
    assert caught.value.message.split(": ")[0] == "answer lost after the request was sent"


def test_a_body_that_is_not_json_names_the_vendor_in_its_words(httpserver):
    httpserver.expect_request("/x").respond_with_data("<html>", content_type="text/html")
    with pytest.raises(Rejected) as caught:
        DemoAPI(httpserver.url_for("/")).request_json("GET", "/x")
    assert (caught.value.vendor, caught.value.message) == ("Demo", "answered with a body that is not JSON")


class UnknownLimit:
    rate = 10.0

    def acquire(self) -> float:
        raise LimitUnknown("the shared count is unreachable")


def test_a_limit_that_cannot_be_read_names_the_vendor_and_sends_nothing(httpserver):
    api = DemoAPI(httpserver.url_for("/"), rate_limiter=UnknownLimit())
    with pytest.raises(RateLimitUnknown) as caught:
        api.request("GET", "/x")
    assert (caught.value.vendor, caught.value.message) == ("Demo", "not sent: the shared count is unreachable")
    assert httpserver.log == []


def test_a_failed_call_row_records_the_error_its_uncertainty_and_a_true_latency(httpserver):
    def slow_500(request: Request) -> Response:
        time.sleep(0.3)
        return Response('{"message": "boom"}', status=500, content_type="application/json")

    httpserver.expect_request("/send", method="POST").respond_with_handler(slow_500)
    log = RecordingCallLog()
    with pytest.raises(Unavailable):
        DemoAPI(httpserver.url_for("/"), call_log=log).request("POST", "/send", json_body={})
    (call,) = log.calls
    assert call.error == "Demo: boom (HTTP 500)" and call.uncertain is True
    assert 250 <= call.latency_ms < 5000


@pytest.mark.parametrize(
    ("status", "expected", "recorded"),
    [
        (404, ExpectedAnswer(), EXPECTED_NOT_FOUND),
        (404, None, "not_found"),
        (404, ExpectedAnswer(code="AC1005"), "not_found"),  # another code: a wrong URL, not "no such record"
        (409, ExpectedAnswer(error=Rejected), EXPECTED_REFUSAL),
        (409, ExpectedAnswer(error=NotFound), "rejected"),
    ],
)
def test_an_expected_refusal_is_recorded_as_an_answer_and_only_that_one(httpserver, status, expected, recorded):
    httpserver.expect_request("/x").respond_with_json({"errorCode": "AC9", "message": "no"}, status=status)
    log = RecordingCallLog()
    with pytest.raises(Rejected):
        DemoAPI(httpserver.url_for("/"), call_log=log).request("GET", "/x", expected=expected)
    assert [call.error_type for call in log.calls] == [recorded]


def test_an_expectation_matches_its_kind_of_refusal_and_its_code_only():
    expect_no_member = ExpectedAnswer(code="AC1005")
    assert expect_no_member.matches(NotFound("Demo", "x", code="AC1005"))
    assert not expect_no_member.matches(NotFound("Demo", "x", code="AC9"))
    assert not expect_no_member.matches(Rejected("Demo", "x", code="AC1005"))
    assert ExpectedAnswer().matches(NotFound("Demo", "x", code="anything"))
    assert ExpectedAnswer.recorded_as(NotFound("Demo", "x")) == EXPECTED_NOT_FOUND
    assert ExpectedAnswer.recorded_as(Rejected("Demo", "x")) == EXPECTED_REFUSAL


def test_a_vendor_apis_path_segment_is_escaped_and_an_unsafe_one_refused_in_its_name():
    api = DemoAPI("http://127.0.0.1:9")
    assert api.segment("a/b") == "a%2Fb"
    with pytest.raises(UnsafePathSegment) as by_vendor:
        api.segment("..")
    with pytest.raises(UnsafePathSegment) as by_portal:
        path_segment(".")
    message = "refused to put '..' into a URL path: it would name another resource than a record's"
    assert (by_vendor.value.vendor, by_vendor.value.message) == ("Demo", message)
    assert by_portal.value.vendor == "Portal"


def test_the_redactor_hides_named_headers_and_query_parameters_and_keeps_everything_else():
    redactor = DemoAPI("http://127.0.0.1:9").redactor
    assert redactor.header_map({"Authorization": "Bearer x", "X-Trace": "t-1"}) == {
        "Authorization": REDACTED,
        "X-Trace": "t-1",
    }
    # "key" is redacted by name only (no log-line pattern knows it), and stays readable, not percent-encoded.
    assert redactor.url("http://h/x?key=abc123&page=2") == "http://h/x?key=[redacted]&page=2"
    assert redactor.body(None) == "" and redactor.body("plain words") == "plain words"


def test_an_unreadable_retry_after_is_no_retry_after(httpserver):
    httpserver.expect_request("/x").respond_with_json({}, status=429, headers={"Retry-After": "soon"})
    retry, sleeps = recorded_sleeps(max_attempts=2)
    with pytest.raises(RateLimited) as caught:
        DemoAPI(httpserver.url_for("/"), retry=retry).request("GET", "/x")
    assert caught.value.retry_after is None and len(sleeps) == 1


def test_an_error_made_without_a_body_has_none_and_a_connection_error_without_a_cause_is_named_as_it_is():
    assert Rejected("Demo", "x").body == ""
    bare = requests.ConnectionError()
    assert connection_failure(bare) == "ConnectionError" and never_connected(bare) is False


@pytest.mark.parametrize(("first", "undone"), [(503, 1), (429, 1), (500, 0)])
def test_an_attempt_not_acted_on_is_undone_before_the_retry_and_an_uncertain_one_is_not(httpserver, first, undone):
    """A 503 or 429 was not acted on: the caller's record of the call leaving is undone while it waits. A GET's 500
    may have been acted on (uncertain): it is tried again, but nothing is undone."""
    httpserver.expect_ordered_request("/x").respond_with_json({}, status=first)
    httpserver.expect_ordered_request("/x").respond_with_json({"ok": True})
    undos: list[int] = []
    retry, _ = recorded_sleeps(max_attempts=2)
    DemoAPI(httpserver.url_for("/"), retry=retry).request("GET", "/x", not_acted_on=lambda: undos.append(1))
    assert len(undos) == undone


def test_a_destination_off_the_base_url_is_refused_naming_the_vendor_and_why(httpserver):
    base = httpserver.url_for("/")
    with pytest.raises(ForbiddenDestination) as caught:
        DemoAPI(base).request("GET", "http://elsewhere.example/x")
    assert caught.value.vendor == "Demo"
    assert caught.value.message == (
        f"refused to call http://elsewhere.example: only {base.split('/')[2]} (the connection's base URL) "
        "may receive this connection's credentials"
    )


def test_the_defaults_a_vendor_api_starts_with_and_only_slashes_trimmed_from_its_urls():
    api = DemoAPI("http://h/v1X/", rate_limiter=RecordingLimiter(), endpoint_rate_limiters={"m": RecordingLimiter()})
    assert api.timeout == (3.05, 15.0)
    assert len(api.limiters_for("m")) == 2  # by default the connection's limit holds on a published endpoint too
    assert api.base_url == "http://h/v1X" and api.url("Xavier/1") == "http://h/v1X/Xavier/1"


def test_each_thread_keeps_one_session_for_its_calls():
    sessions: list[requests.Session] = []
    worker = threading.Thread(target=lambda: sessions.append(pooled_session()))
    worker.start()
    worker.join()
    assert pooled_session() is pooled_session() and sessions[0] is not pooled_session()
