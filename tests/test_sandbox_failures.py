"""The failures a simulator's `/_control` sets are read one way by every simulator that has them (Attentive, First
Orion, SessionM: integrations/sandbox/base.py FailureKnobs): `{"fail": mode, "fail_path": endpoint, "times": n}`
fails the next n calls to that endpoint (any, without one), each in its vendor's own error body."""

from __future__ import annotations

import base64
import json

import pytest

from integrations.attentive import sandbox as attentive
from integrations.first_orion import sandbox as first_orion
from integrations.sessionm import sandbox as sessionm

ATTENTIVE_AUTH = {"HTTP_AUTHORIZATION": f"Bearer {attentive.API_KEY}"}
SESSIONM_BASIC = base64.b64encode(f"{sessionm.API_KEY}:{sessionm.API_SECRET}".encode()).decode()
SESSIONM_AUTH = {"HTTP_AUTHORIZATION": f"Basic {SESSIONM_BASIC}"}


@pytest.fixture(autouse=True)
def fresh_simulators():
    for simulator in (attentive, first_orion, sessionm):
        simulator.state.__init__()
    yield
    for simulator in (attentive, first_orion, sessionm):
        simulator.state.__init__()


def control(client, vendor: str, **knobs) -> None:
    client.post(f"/sandbox/{vendor}/_control", json.dumps(knobs), content_type="application/json")


def attentive_me(client) -> int:
    return client.get("/sandbox/attentive/v1/me", **ATTENTIVE_AUTH).status_code


def sessionm_user(client) -> int:
    return client.get(f"/sandbox/sessionm/priv/v1/apps/{sessionm.API_KEY}/users/nobody", **SESSIONM_AUTH).status_code


def first_orion_batch(client) -> int:
    token = client.post(
        "/sandbox/first_orion/federated/content/v2/token",
        json.dumps({"clientId": first_orion.CLIENT_ID, "clientSecret": first_orion.CLIENT_SECRET}),
        content_type="application/json",
        HTTP_X_FEDERATED_PURPOSE="inform",
    ).json()["accessToken"]
    body = {"destinations": [{"bNumber": "+15018902005"}], "aNumbers": first_orion.DEMO_A_NUMBERS, "ttlSeconds": "960"}
    return client.post(
        f"/sandbox/first_orion/federated/outbound/v2/batch?programContentUuid={first_orion.DEMO_PROGRAM}",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    ).status_code


CASES = [
    pytest.param("attentive", "me", "messages", attentive_me, id="attentive"),
    pytest.param("first_orion", "batch", "token", first_orion_batch, id="first_orion"),
    pytest.param("sessionm", "users", "offers", sessionm_user, id="sessionm"),
]


@pytest.mark.parametrize(("vendor", "endpoint", "other_endpoint", "call"), CASES)
def test_a_failure_set_for_another_endpoint_leaves_this_one_alone(client, db, vendor, endpoint, other_endpoint, call):
    healthy = call(client)
    control(client, vendor, fail="503", fail_path=other_endpoint, times=5)
    assert call(client) == healthy != 503


@pytest.mark.parametrize(("vendor", "endpoint", "other_endpoint", "call"), CASES)
def test_a_failure_set_for_an_endpoint_fails_its_next_n_calls(client, db, vendor, endpoint, other_endpoint, call):
    healthy = call(client)
    control(client, vendor, fail="503", fail_path=endpoint, times=2)
    assert [call(client) for _ in range(3)] == [503, 503, healthy]
    control(client, vendor, fail="503", times=1)  # no fail_path: any endpoint
    assert [call(client) for _ in range(2)] == [503, healthy]
