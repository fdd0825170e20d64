"""Annex Cloud v3: every request signed as the public JWT guide says (checked by an independent computation of the
documented steps), the payloads of Annex Cloud's segment and points APIs, and each error code — also when it comes
with HTTP 200."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from integrations.annexcloud.api import AlreadyExists, AnnexCloudAPI, RequestFailed
from integrations.http import AuthError, NotFound, Rejected, RetryPolicy, VendorError

SECRET, SITE = "shared-secret-for-tests-0123456789abcdef", "123456"


@pytest.fixture
def api(httpserver: HTTPServer) -> AnnexCloudAPI:
    return AnnexCloudAPI(
        httpserver.url_for("/api/3.0"),
        site_id=SITE,
        secret=SECRET,
        subject="ops@example.com",
        retry=RetryPolicy(max_attempts=2, backoff_base=0.01),
    )


def documented_hmac(payload: str) -> str:
    """The guide's step 2, written out independently: base64(HMAC-SHA256(secret, base64(utf8(payload))))."""
    inner = base64.b64encode(payload.encode("utf-8"))
    return base64.b64encode(hmac.new(SECRET.encode("utf-8"), inner, hashlib.sha256).digest()).decode("ascii")


def claims_of(request: Request) -> dict:
    scheme, token = request.headers["Authorization"].split(" ", 1)
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    return jwt.decode(token, SECRET, algorithms=["HS256"])


def test_post_is_signed_over_the_exact_raw_body(api, httpserver):
    seen: list[Request] = []

    def capture(request: Request):
        seen.append(request)
        return Response(json.dumps({"segmentId": 101, "segmentName": "Only Members"}), content_type="application/json")

    httpserver.expect_request("/api/3.0/segment", method="POST").respond_with_handler(capture)
    before = int(time.time())
    api.create_segment({"name": "Only Members", "type": "Current Data"})
    request = seen[0]
    claims = claims_of(request)
    assert claims["hmac"] == documented_hmac(request.get_data(as_text=True))
    assert claims["site_id"] == SITE and claims["sub"] == "ops@example.com"
    assert before + 60 < claims["exp"] < before + 3600  # seconds, not milliseconds
    assert request.headers["X-AnnexCloud-Site"] == SITE
    assert request.headers["Content-Type"] == "application/json"


def test_get_is_signed_over_the_identifier_as_a_json_string(api, httpserver):
    httpserver.expect_request("/api/3.0/users/user@x.com", method="GET").respond_with_json({"id": "user@x.com"})
    api.get_member("user@x.com")
    request, _ = httpserver.log[0]
    assert claims_of(request)["hmac"] == documented_hmac('"user@x.com"')


def test_segment_request_is_the_documented_example(api, httpserver):
    documented_request = {
        "name": "Only Members",
        "type": "Current Data",
        "fromDate": "2020-01-17",
        "toDate": "2020-02-14",
        "member": "jacobsmith@gmail.com,brianpaul@gmail.com,markburger@gmail.com",
        "status": "ACTIVE",
        "externalId": "123",
        "externalName": "Members specific",
    }
    httpserver.expect_oneshot_request("/api/3.0/segment", method="POST", json=documented_request).respond_with_json(
        {"segmentId": 101}
    )
    assert api.create_segment(documented_request)["segmentId"] == 101


def test_points_award_is_idempotent_by_custom_id(api, httpserver):
    body = {
        "id": "user@domain.com",
        "actionId": "100",
        "activity": "CREDIT",
        "credit": "50",
        "reason": "review",
        "customId": "bv-review-1",
        "retry": "YES",
    }
    httpserver.expect_ordered_request("/api/3.0/points", method="POST", json=body).respond_with_json({}, status=503)
    httpserver.expect_ordered_request("/api/3.0/points", method="POST", json=body).respond_with_json(
        {"id": "user@domain.com", "pointsAwarded": 50}
    )
    # Safe to repeat: the customId makes Annex Cloud apply it once.
    assert api.award_points("user@domain.com", 50, custom_id="bv-review-1", reason="review")["pointsAwarded"] == 50


# Each documented code under its documented status and under HTTP 200: the code decides, never the status.
DOCUMENTED_STATUSES = {"AC1001": 404, "AC1002": 401, "AC1004": 400, "AC1005": 404, "AC1006": 409}
ERRORS = {"AC1001": RequestFailed, "AC1002": AuthError, "AC1004": Rejected, "AC1005": NotFound, "AC1006": AlreadyExists}


@pytest.mark.parametrize(
    ("code", "status"),
    [(code, status) for code, documented in DOCUMENTED_STATUSES.items() for status in (documented, 200)]
    + [("AC1005", 400)],
)
def test_error_codes_map_to_typed_errors_whatever_the_status(api, httpserver, code, status):
    httpserver.expect_request("/api/3.0/users/someone").respond_with_json(
        {"errorCode": code, "errorMessage": "Oops"}, status=status
    )
    with pytest.raises(VendorError) as caught:
        api.get_member("someone")
    assert type(caught.value) is ERRORS[code]
    assert caught.value.code == code


def test_ac1001_is_a_refused_request_that_is_not_retried(api, httpserver):
    """AC1001 is "something went wrong" for this request: even under a 5xx it is not "unavailable, try again"."""
    httpserver.expect_request("/api/3.0/users/someone").respond_with_json(
        {"errorCode": "AC1001", "errorMessage": "Oops! Something went wrong."}, status=503
    )
    with pytest.raises(RequestFailed) as caught:
        api.get_member("someone")
    assert isinstance(caught.value, Rejected) and not caught.value.counts_against_connection
    assert len(httpserver.log) == 1


def test_a_missing_member_does_not_count_against_the_connection():
    assert NotFound.counts_against_connection is False
    assert AuthError.counts_against_connection is True
