"""First Orion API contract: each request exactly as seed 002 shows it (paths, headers, bodies and their types) and
each documented answer mapped to an error that says what to do, against a real local HTTP server."""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import UTC, datetime

import pytest
from pytest_httpserver import HTTPServer

from integrations import connections
from integrations.first_orion import flows
from integrations.first_orion.api import (
    BadCredentials,
    FirstOrionAPI,
    MissingANumbers,
    NumbersNotAllowed,
    ProgramMisconfigured,
    TokenExpired,
    batch_body,
    jwt_lifetime,
)
from integrations.http import CallRecord, RetryPolicy, Unavailable
from integrations.redaction import REDACTED, redact_text
from integrations.redaction import _known_secrets as known_secrets
from portal.logging import RedactSecretsFilter
from tests.factories import ConnectionFactory

PROGRAM = "3e1b9b27-d1f9-4c8d-800f-bb534d6928d6"
GROUP = "935b91a0-f2fb-4c43-b629-63fea6634512"
TOKEN = "eyJraWQiOiJzVkM5.eyJzdWIiOiJrdjQ4.Od3JH7qUV15B7LisXP6oj6elwRn8om"
DESTINATIONS = [
    {"bNumber": "+15018902005", "personalization": {"MY_VAR": "Put Custom Text Here"}, "customTrackingId": "t-1"},
    {"bNumber": "+14258309029", "personalization": {"MY_VAR": "Put Custom Text Here"}, "customTrackingId": "t-2"},
]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[CallRecord] = []

    def record(self, call: CallRecord) -> None:
        self.calls.append(call)

    def succeeded(self) -> None:
        pass

    def failed(self, error) -> None:
        pass


@pytest.fixture
def log() -> Recorder:
    return Recorder()


@pytest.fixture
def api(httpserver: HTTPServer, log) -> FirstOrionAPI:
    return FirstOrionAPI(
        httpserver.url_for(""),
        client_id="client-123",
        client_secret="secret-456-abcdef",
        secret_values=["secret-456-abcdef"],
        call_log=log,
        retry=RetryPolicy(max_attempts=3, backoff_base=0.01),
    )


def test_get_token_sends_the_documented_headers_and_body(api, httpserver):
    httpserver.expect_oneshot_request(
        "/federated/content/v2/token",
        method="POST",
        headers={"Content-Type": "application/json", "X-Federated-Purpose": "inform"},
        json={"clientId": "client-123", "clientSecret": "secret-456-abcdef"},
    ).respond_with_json({"accessToken": TOKEN, "message": "Success", "errorCode": 0, "requestId": "12ab"})
    issued = api.get_token()
    assert issued.access_token == TOKEN
    assert issued.lifetime_seconds == 15 * 60  # not a readable JWT: the documented 15 minutes
    httpserver.check_assertions()


def test_the_token_and_the_secret_never_reach_the_call_rows(api, httpserver, log):
    httpserver.expect_request("/federated/content/v2/token").respond_with_json(
        {"accessToken": TOKEN, "message": "Success", "errorCode": 0, "requestId": "12ab"}
    )
    httpserver.expect_request("/federated/content/v2/token/health").respond_with_data(f"echo {TOKEN}", status=401)
    api.get_token()
    with pytest.raises(TokenExpired) as caught:
        api.token_health(TOKEN)
    recorded = json.dumps([vars(call) for call in log.calls])
    assert TOKEN not in recorded and "secret-456-abcdef" not in recorded
    assert REDACTED in recorded
    assert TOKEN not in str(caught.value)
    # Log lines: the token travels only in the Authorization header and the accessToken field.
    assert TOKEN not in redact_text(f"GET /health Authorization: Bearer {TOKEN}")
    assert TOKEN not in redact_text(json.dumps({"accessToken": TOKEN}))


def test_a_500_with_a_null_token_is_explained_as_bad_credentials(api, httpserver):
    httpserver.expect_request("/federated/content/v2/token").respond_with_json(
        {"accessToken": None, "message": "Failed to grant access token", "errorCode": 500, "requestId": "5cf3"},
        status=500,
    )
    with pytest.raises(BadCredentials) as caught:
        api.get_token()
    assert "client id" in caught.value.hint and "client secret" in caught.value.hint
    assert len(httpserver.log) == 1  # refused credentials are not retried


def test_health_sends_the_bearer_token_and_reads_healthy(api, httpserver):
    httpserver.expect_oneshot_request(
        "/federated/content/v2/token/health",
        method="GET",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    ).respond_with_json({"accessToken": None, "message": "Healthy", "errorCode": "", "requestId": "5c79"})
    assert api.token_health(TOKEN) == "Healthy"
    httpserver.check_assertions()


def test_health_401_without_a_body_is_an_expired_token(api, httpserver):
    httpserver.expect_request("/federated/content/v2/token/health").respond_with_data("", status=401)
    with pytest.raises(TokenExpired):
        api.token_health(TOKEN)


def test_batch_with_a_list_of_a_numbers_is_the_seed_body(api, httpserver):
    body = batch_body(
        DESTINATIONS,
        a_numbers=["+15014008029", "+15013509988"],
        a_number_group_id="",
        ttl_seconds=3600,
        keep_after_call=False,
        not_before=datetime(2020, 2, 10, 16, 0, tzinfo=UTC),
    )
    expected = {
        "destinations": DESTINATIONS,
        "aNumbers": ["+15014008029", "+15013509988"],
        "notBefore": "2020-02-10T16:00:00Z",
        "ttlSeconds": "3600",
        "keepAfterCall": "false",
    }
    assert body == expected and list(body) == list(expected)
    httpserver.expect_oneshot_request(
        "/federated/outbound/v2/batch",
        method="POST",
        query_string={"programContentUuid": PROGRAM},
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        json=expected,
    ).respond_with_json({"response": "success", "message": None, "errorCode": "", "requestId": "329f"})
    assert api.push_batch(TOKEN, PROGRAM, body).request_id == "329f"
    httpserver.check_assertions()


def test_batch_with_a_group_sends_the_group_and_no_a_numbers(api, httpserver):
    body = batch_body(DESTINATIONS, a_numbers=[], a_number_group_id=GROUP, ttl_seconds=960, keep_after_call=True)
    expected = {"destinations": DESTINATIONS, "aNumberGroupId": GROUP, "ttlSeconds": "960", "keepAfterCall": "true"}
    httpserver.expect_oneshot_request(
        "/federated/outbound/v2/batch",
        method="POST",
        query_string={"programContentUuid": PROGRAM},
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        json=expected,
    ).respond_with_json({"response": "success", "message": None, "errorCode": "", "requestId": "g1"})
    assert api.push_batch(TOKEN, PROGRAM, body).request_id == "g1"
    httpserver.check_assertions()
    assert "aNumbers" not in json.loads(httpserver.log[0][0].get_data())


def test_a_200_saying_not_allowed_is_a_failure_that_says_to_upload_the_numbers(api, httpserver):
    httpserver.expect_request("/federated/outbound/v2/batch").respond_with_json(
        {
            "response": "Not allowed to use one or more anumbers.",
            "message": "Batch push could not complete push successfully.",
            "errorCode": 200,
            "requestId": "5193",
        }
    )
    with pytest.raises(NumbersNotAllowed) as caught:
        api.push_batch(TOKEN, PROGRAM, {"destinations": DESTINATIONS})
    assert "Branded Communication Content Portal" in caught.value.for_admin
    assert caught.value.request_id == "5193"
    assert len(httpserver.log) == 1


def test_a_200_saying_only_that_the_push_could_not_complete_also_says_to_upload_the_numbers(api, httpserver):
    httpserver.expect_request("/federated/outbound/v2/batch").respond_with_json(
        {"message": "Batch push could not complete push successfully.", "errorCode": 200, "requestId": "77aa"}
    )
    with pytest.raises(NumbersNotAllowed) as caught:
        api.push_batch(TOKEN, PROGRAM, {"destinations": DESTINATIONS})
    assert "upload these numbers in the branded communication content portal" in caught.value.for_admin.lower()
    assert caught.value.request_id == "77aa" and len(httpserver.log) == 1


def test_400_invalid_program_setup_is_explained(api, httpserver):
    httpserver.expect_request("/federated/outbound/v2/batch").respond_with_json(
        {
            "response": "Invalid program setup on this program",
            "message": "Batch push could not complete push successfully.",
            "errorCode": 400,
            "requestId": "e9a7",
        },
        status=400,
    )
    with pytest.raises(ProgramMisconfigured) as caught:
        api.push_batch(TOKEN, PROGRAM, {})
    assert "Content Portal" in caught.value.hint


def test_400_must_send_a_numbers_is_explained(api, httpserver):
    httpserver.expect_request("/federated/outbound/v2/batch").respond_with_json(
        {
            "response": "Must send aNumbers or a valid ANumberGroupId",
            "message": "Batch could not complete push successfully.",
            "errorCode": 400,
            "requestId": "0470",
        },
        status=400,
    )
    with pytest.raises(MissingANumbers) as caught:
        api.push_batch(TOKEN, PROGRAM, {})
    assert "aNumber group UUID" in caught.value.hint


def test_batch_401_is_a_refused_token_not_an_uncertain_push(api, httpserver):
    httpserver.expect_request("/federated/outbound/v2/batch").respond_with_data("", status=401)
    with pytest.raises(TokenExpired) as caught:
        api.push_batch(TOKEN, PROGRAM, {})
    assert not caught.value.uncertain


def test_a_batch_whose_answer_is_lost_is_uncertain_and_sent_once(api, httpserver):
    httpserver.expect_request("/federated/outbound/v2/batch").respond_with_json({"message": "x"}, status=504)
    with pytest.raises(Unavailable) as caught:
        api.push_batch(TOKEN, PROGRAM, {})
    assert caught.value.uncertain
    assert len(httpserver.log) == 1


def test_a_503_batch_was_not_processed_and_is_sent_again(api, httpserver):
    httpserver.expect_ordered_request("/federated/outbound/v2/batch").respond_with_json({}, status=503)
    httpserver.expect_ordered_request("/federated/outbound/v2/batch").respond_with_json(
        {"response": "success", "message": None, "errorCode": "", "requestId": "ok"}
    )
    assert api.push_batch(TOKEN, PROGRAM, {}).request_id == "ok"


def test_a_jwt_expiry_shortens_the_lifetime():

    payload = base64.urlsafe_b64encode(json.dumps({"exp": 1030}).encode()).decode().rstrip("=")
    assert jwt_lifetime(f"h.{payload}.s", now=1000) == 30
    assert jwt_lifetime("opaque-token") is None


def jwt(exp: float, n: int = 0) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": exp, "n": n}).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2lnbmF0dXJl{n}"


@pytest.mark.parametrize(("expires_in", "believed"), [(-120, 15 * 60), (3, 15 * 60), (300, 300), (3600, 15 * 60)])
def test_a_jwt_that_says_it_expired_already_is_clock_skew_not_a_short_token(api, httpserver, expires_in, believed):
    token = jwt(time.time() + expires_in)
    httpserver.expect_request("/federated/content/v2/token").respond_with_json({"accessToken": token})
    assert api.get_token().lifetime_seconds == pytest.approx(believed, abs=2)


def test_only_the_current_and_previous_tokens_are_remembered_and_none_reach_rows_or_logs(api, httpserver, log):
    tokens = [jwt(time.time() + 900, n) for n in range(4)]
    for token in tokens:
        httpserver.expect_oneshot_request("/federated/content/v2/token").respond_with_json(
            {"accessToken": token, "message": "Success", "errorCode": 0, "requestId": "12ab"}
        )
    httpserver.expect_request("/federated/content/v2/token/health").respond_with_data("", status=401)
    for _ in tokens:
        issued = api.get_token()
        with pytest.raises(TokenExpired):
            api.token_health(issued.access_token)
    assert api.redactor.values == ("secret-456-abcdef", *tokens[-2:])
    assert not set(tokens) & known_secrets  # nothing added to the process-wide list
    recorded = json.dumps([vars(call) for call in log.calls])
    assert len(log.calls) == 8 and not [token for token in tokens if token in recorded]
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "sent %s", (log.calls[-1].request_headers,), None)
    RedactSecretsFilter().filter(record)
    assert tokens[-1] not in record.getMessage()
    logged = logging.LogRecord("x", logging.ERROR, __file__, 1, "Authorization: Bearer %s", (tokens[0],), None)
    RedactSecretsFilter().filter(logged)
    assert tokens[0] not in logged.getMessage()


def test_a_token_skewed_into_the_past_is_fetched_once_not_before_every_call(httpserver, client_a):
    connection = ConnectionFactory(
        client=client_a,
        vendor="first_orion",
        base_url=httpserver.url_for(""),
        secrets={"client_secret": "secret-456-abcdef"},
        settings={"client_id": "client-123"},
    )
    httpserver.expect_request("/federated/content/v2/token").respond_with_json({"accessToken": jwt(time.time() - 60)})
    used = {flows.token_source(connection).current() for _ in range(3)}
    assert len(used) == 1 and len(httpserver.log) == 1


@pytest.fixture
def local_connection(httpserver, client_a):
    """A draft First Orion connection whose base URL is the local HTTP server, which grants a fresh token each time."""
    for n in range(3):
        httpserver.expect_oneshot_request("/federated/content/v2/token").respond_with_json(
            {"accessToken": jwt(time.time() + 900, n), "message": "Success", "errorCode": 0, "requestId": f"t{n}"}
        )
    return ConnectionFactory(
        client=client_a,
        vendor="first_orion",
        status="draft",
        base_url=httpserver.url_for(""),
        secrets={"client_secret": "secret-456-abcdef"},
        settings={"client_id": "client-123"},
    )


def health_calls(httpserver) -> list[str]:
    return [request.headers["Authorization"] for request, _ in httpserver.log if request.path.endswith("/health")]


def test_verify_refreshes_a_token_refused_by_the_health_check_once(httpserver, local_connection):
    httpserver.expect_oneshot_request("/federated/content/v2/token/health").respond_with_data("", status=401)
    httpserver.expect_oneshot_request("/federated/content/v2/token/health").respond_with_json({"message": "Healthy"})
    outcome = connections.verify(local_connection)
    assert outcome.ok and "Healthy" in outcome.message
    first, second = health_calls(httpserver)
    assert first != second  # the retry carries the new token


def test_verify_stops_after_one_refresh_when_the_new_token_is_refused_too(httpserver, local_connection):
    httpserver.expect_request("/federated/content/v2/token/health").respond_with_data("", status=401)
    outcome = connections.verify(local_connection)
    assert not outcome.ok and "refused a token it had just granted" in outcome.message
    assert len(health_calls(httpserver)) == 2  # one refresh, no loop
