"""The First Orion simulator enforces seed 002's rules, so the portal's requests are checked against them: tokens
(15 minutes, shortened by a knob), health, and every batch rule; plus the demo records it seeds."""

from __future__ import annotations

import time

import pytest
import requests

from integrations.first_orion import demo
from integrations.first_orion import sandbox as simulator
from integrations.first_orion.models import ProgramContent
from members.models import Member, Segment

GOOD_DESTINATION = {"bNumber": "+15018902005", "customTrackingId": "t-1"}


@pytest.fixture
def fo_url(live_server):
    simulator.state.__init__()
    yield f"{live_server.url}/sandbox/first_orion"
    simulator.state.__init__()


def get_token(fo_url: str, **body) -> requests.Response:
    payload = {"clientId": simulator.CLIENT_ID, "clientSecret": simulator.CLIENT_SECRET, **body}
    return requests.post(
        f"{fo_url}/federated/content/v2/token", json=payload, headers={"X-Federated-Purpose": "inform"}, timeout=5
    )


def push(fo_url: str, token: str, body: dict, program: str = simulator.DEMO_PROGRAM) -> requests.Response:
    return requests.post(
        f"{fo_url}/federated/outbound/v2/batch",
        params={"programContentUuid": program},
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )


@pytest.fixture
def token(fo_url) -> str:
    return get_token(fo_url).json()["accessToken"]


def body(**fields) -> dict:
    return {"destinations": [GOOD_DESTINATION], "aNumbers": ["+15014008029"], "ttlSeconds": "960", **fields}


def test_token_needs_the_purpose_header_and_the_right_secret(fo_url):
    assert get_token(fo_url).status_code == 200
    wrong = get_token(fo_url, clientSecret="nope")
    assert wrong.status_code == 500 and wrong.json()["accessToken"] is None
    no_purpose = requests.post(
        f"{fo_url}/federated/content/v2/token",
        json={"clientId": simulator.CLIENT_ID, "clientSecret": simulator.CLIENT_SECRET},
        timeout=5,
    )
    assert no_purpose.status_code == 500
    assert simulator.state.token_calls == 3


def test_health_is_200_for_a_live_token_and_401_once_it_expired(fo_url):
    requests.post(f"{fo_url}/_control", json={"token_lifetime": 0.2}, timeout=5)
    token = get_token(fo_url).json()["accessToken"]
    health = f"{fo_url}/federated/content/v2/token/health"
    assert requests.get(health, headers={"Authorization": f"Bearer {token}"}, timeout=5).json()["message"] == "Healthy"

    time.sleep(0.3)
    expired = requests.get(health, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert expired.status_code == 401 and expired.content == b""


def test_a_good_batch_succeeds_and_is_counted(fo_url, token):
    answer = push(fo_url, token, body())
    assert answer.json()["response"] == "success"
    counts = requests.get(f"{fo_url}/_control", timeout=5).json()
    assert (counts["batches"], counts["destinations"], counts["duplicates"]) == (1, 1, 0)


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"destinations": [{"bNumber": "5018902005"}]}, "E.164"),
        ({"aNumbers": [f"+1404555{n:04d}" for n in range(401)]}, "1 to 400"),
        ({"aNumbers": ["5014008029"]}, "E.164"),
        ({"aNumberGroupId": "935b91a0-f2fb-4c43-b629-63fea6634512"}, "Must send aNumbers"),
        ({"aNumbers": None, "aNumberGroupId": "not-a-uuid"}, "Must send aNumbers"),
        ({"ttlSeconds": None}, "ttlSeconds"),
    ],
)
def test_every_batch_rule_is_enforced(fo_url, token, fields, said):
    payload = {k: v for k, v in body(**fields).items() if v is not None}
    answer = push(fo_url, token, payload)
    assert answer.status_code == 400 and said in answer.json()["response"]


def test_neither_numbers_source_is_refused(fo_url, token):
    payload = {"destinations": [GOOD_DESTINATION], "ttlSeconds": "960"}
    assert push(fo_url, token, payload).json()["response"] == "Must send aNumbers or a valid ANumberGroupId"


def test_program_uuid_format_and_misconfigured_program(fo_url, token):
    assert push(fo_url, token, body(), program="3e1b9b27").status_code == 400
    answer = push(fo_url, token, body(), program=simulator.MISCONFIGURED_PROGRAM)
    assert answer.status_code == 400 and answer.json()["response"] == "Invalid program setup on this program"


def test_unregistered_a_numbers_get_the_200_with_error(fo_url, token):
    answer = push(fo_url, token, body(aNumbers=[simulator.UNREGISTERED_A_NUMBER]))
    assert answer.status_code == 200
    assert answer.json()["response"] == "Not allowed to use one or more anumbers."


def test_a_batch_without_a_valid_token_is_401(fo_url):
    assert push(fo_url, "made-up", body()).status_code == 401


def test_seed_demo_is_idempotent(client_a):
    Member.objects.create(client=client_a, phone="+14045550001", opted_in=True)
    Member.objects.create(client=client_a, phone="", email="nophone@x.com")
    demo.seed_demo(client_a)
    demo.seed_demo(client_a)
    assert ProgramContent.objects.filter(client=client_a).count() == 1
    segment = Segment.objects.get(client=client_a, name="Branded call: order ready")
    assert segment.links.count() == 1
