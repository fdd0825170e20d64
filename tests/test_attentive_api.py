"""Attentive API contract: requests exactly as Attentive's documented contract shows them (phone numbers in E.164),
and every error Attentive documents, against a real local HTTP server."""

from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer

from integrations.attentive.api import AttentiveAPI, LegacyTokenRejected
from integrations.http import AuthError, RateLimited, Rejected, RetryPolicy, Unavailable

PHONE, EMAIL = "+17707651750", "test@gmail.com"
JSON_HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer api-key-123"}


@pytest.fixture
def api(httpserver: HTTPServer) -> AttentiveAPI:
    return AttentiveAPI(
        httpserver.url_for(""),
        api_key="api-key-123",
        legacy_token="legacy-456",
        retry=RetryPolicy(max_attempts=3, backoff_base=0.01),
    )


def channel(channel_name: str, key: str, value: object) -> dict:
    return {"subscription": {"type": "MARKETING", "channel": channel_name}, key: value}


def test_subscribe_sends_the_documented_body(api, httpserver):
    httpserver.expect_oneshot_request(
        "/v1/subscriptions",
        method="POST",
        headers=JSON_HEADERS,
        json={"user": {"phone": PHONE, "email": EMAIL}, "signUpSourceId": "132109"},
    ).respond_with_json(
        {
            "user": {"phone": PHONE, "email": EMAIL},
            "subscriptionResponses": [
                channel("TEXT", "subscriptionCreationStatus", "NEWLY_CREATED"),
                channel("EMAIL", "subscriptionCreationStatus", "NEWLY_CREATED"),
            ],
        },
        status=202,
    )
    results = api.subscribe(PHONE, EMAIL, "132109")
    assert [(r.channel, r.status) for r in results] == [("TEXT", "NEWLY_CREATED"), ("EMAIL", "NEWLY_CREATED")]
    httpserver.check_assertions()


def test_eligibility_is_a_get_with_phone_and_email(api, httpserver):
    httpserver.expect_oneshot_request(
        "/v1/subscriptions", method="GET", query_string={"phone": PHONE, "email": EMAIL}
    ).respond_with_json(
        {
            "subscriptionEligibilities": [
                channel("TEXT", "eligibility", {"isEligible": True}),
                channel("EMAIL", "eligibility", {"isEligible": False}),
            ]
        }
    )
    results = api.eligibility(PHONE, EMAIL)
    assert [(r.channel, r.status) for r in results] == [("TEXT", "ELIGIBLE"), ("EMAIL", "NOT_ELIGIBLE")]


def test_unsubscribe_sends_the_documented_body(api, httpserver):
    subscriptions = [{"type": "MARKETING", "channel": "EMAIL"}, {"type": "MARKETING", "channel": "TEXT"}]
    httpserver.expect_oneshot_request(
        "/v1/subscriptions/unsubscribe",
        method="POST",
        json={"user": {"phone": PHONE, "email": EMAIL}, "subscriptions": subscriptions},
    ).respond_with_json(
        {"subscriptionResponses": [channel("TEXT", "subscriptionUnsubscribeStatus", "NEWLY_UNSUBSCRIBED")]}
    )
    assert api.unsubscribe(PHONE, EMAIL, subscriptions)[0].status == "NEWLY_UNSUBSCRIBED"


def test_messages_use_the_legacy_token_and_the_documented_body(api, httpserver):
    httpserver.expect_oneshot_request(
        "/v1/subscriptions/messages",
        method="POST",
        headers={"Authorization": "Bearer legacy-456", "Content-Type": "application/json"},
        json={"to": PHONE, "body": "Hello check the test message please7"},
    ).respond_with_json({"type": "v1", "to": PHONE, "body": "Hello check the test message please7"})
    assert api.send_message(PHONE, "Hello check the test message please7")["to"] == PHONE


def test_messages_path_is_a_setting(httpserver):
    api = AttentiveAPI(httpserver.url_for(""), api_key="k", legacy_token="t", messages_path="/v1/text/send")
    httpserver.expect_oneshot_request("/v1/text/send", method="POST").respond_with_json({})
    api.send_message(PHONE, "hi")
    httpserver.check_assertions()


@pytest.mark.parametrize("status", [401, 403])
def test_messages_auth_failure_says_to_activate_the_legacy_token(api, httpserver, status):
    httpserver.expect_request("/v1/subscriptions/messages").respond_with_json({"message": "nope"}, status=status)
    with pytest.raises(LegacyTokenRejected) as caught:
        api.send_message(PHONE, "hi")
    assert "legacyapi@attentivemobile.com" in caught.value.for_admin


def test_messages_without_a_legacy_token_fail_before_any_call(httpserver):
    api = AttentiveAPI(httpserver.url_for(""), api_key="k")
    with pytest.raises(LegacyTokenRejected):
        api.send_message(PHONE, "hi")
    assert httpserver.log == []


def test_bad_key_on_me_is_an_auth_error(api, httpserver):
    httpserver.expect_request("/v1/me").respond_with_json({"message": "Unauthorized"}, status=401)
    with pytest.raises(AuthError):
        api.me()


def test_invalid_phone_is_rejected_with_attentives_message(api, httpserver):
    httpserver.expect_request("/v1/subscriptions", method="POST").respond_with_json(
        {"message": "Invalid phone number 7707651750"}, status=400
    )
    with pytest.raises(Rejected, match="Invalid phone number"):
        api.subscribe("7707651750", EMAIL, "132109")
    assert len(httpserver.log) == 1  # a rejected subscribe is never repeated


def test_subscribe_is_not_repeated_after_a_500(api, httpserver):
    httpserver.expect_request("/v1/subscriptions", method="POST").respond_with_json({}, status=500)
    with pytest.raises(Unavailable):
        api.subscribe(PHONE, EMAIL, "132109")
    assert len(httpserver.log) == 1


def test_429_with_ratelimit_headers_backs_off_and_retries(api, httpserver):
    limited = {"x-ratelimit-limit": "10", "x-ratelimit-remaining": "0"}
    httpserver.expect_ordered_request("/v1/subscriptions", method="POST").respond_with_json(
        {"message": "Too Many Requests"}, status=429, headers=limited
    )
    httpserver.expect_ordered_request("/v1/subscriptions", method="POST").respond_with_json(
        {"subscriptionResponses": [channel("TEXT", "subscriptionCreationStatus", "NEWLY_CREATED")]}, status=202
    )
    assert api.subscribe(PHONE, EMAIL, "132109")[0].status == "NEWLY_CREATED"
    bodies = [json.loads(request.data) for request, _ in httpserver.log]
    assert bodies[0] == bodies[1]


def test_429_that_persists_is_rate_limited(api, httpserver):
    httpserver.expect_request("/v1/subscriptions/unsubscribe").respond_with_json({}, status=429)
    with pytest.raises(RateLimited):
        api.unsubscribe(PHONE)
    assert len(httpserver.log) == 3
