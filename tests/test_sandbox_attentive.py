"""The Attentive simulator holds to the contract it stands in for."""

from __future__ import annotations

import json

import pytest

from integrations.attentive import sandbox as simulator

AUTH = {"HTTP_AUTHORIZATION": f"Bearer {simulator.API_KEY}"}


@pytest.fixture(autouse=True)
def fresh_state():
    simulator.state.__init__()
    yield
    simulator.state.__init__()


def post(client, path, body, **headers):
    return client.post(f"/sandbox/attentive{path}", json.dumps(body), content_type="application/json", **headers)


def test_requires_the_bearer_key(client, db):
    assert client.get("/sandbox/attentive/v1/me").status_code == 401
    assert client.get("/sandbox/attentive/v1/me", **AUTH).json()["companyName"]


def test_subscribe_validates_e164_and_sign_up_source(client, db):
    national = post(client, "/v1/subscriptions", {"user": {"phone": "7707651750"}, "signUpSourceId": "1"}, **AUTH)
    assert national.status_code == 400 and "E.164" in national.json()["message"]
    no_source = post(client, "/v1/subscriptions", {"user": {"phone": "+17707651750"}}, **AUTH)
    assert no_source.status_code == 400
    ok = post(client, "/v1/subscriptions", {"user": {"phone": "+17707651750"}, "signUpSourceId": "132109"}, **AUTH)
    assert ok.status_code == 202
    assert ok.json()["subscriptionResponses"][0]["subscriptionCreationStatus"] == "NEWLY_CREATED"


def test_messages_need_the_legacy_token(client, db):
    body = {"to": "+17707651750", "body": "hi"}
    assert post(client, "/v1/subscriptions/messages", body, **AUTH).status_code == 401
    ok = post(client, "/v1/subscriptions/messages", body, HTTP_AUTHORIZATION=f"Bearer {simulator.LEGACY_TOKEN}")
    assert ok.json() == {
        "type": "v1",
        "to": "+17707651750",
        "body": "hi",
        "skipFatigue": True,
        "createShortLink": False,
        "addSubscriber": "true",
    }


def test_can_be_told_to_fail(client, db):
    client.post("/sandbox/attentive/_control", json.dumps({"fail": "429", "times": 1}), content_type="application/json")
    limited = client.get("/sandbox/attentive/v1/me", **AUTH)
    assert limited.status_code == 429 and limited["x-ratelimit-remaining"] == "0"
    assert client.get("/sandbox/attentive/v1/me", **AUTH).status_code == 200
