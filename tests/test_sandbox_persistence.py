"""The simulators keep their state across restarts (issue 24, finding 4): what the portal sent them over real HTTP is
written to SANDBOX_STATE_DIR (a folder of this test's own), read back by a restarted process, and *Reset the
sandbox* clears it."""

from __future__ import annotations

import copy
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from integrations.attentive import sandbox as attentive_simulator
from integrations.bazaarvoice import sandbox as bazaarvoice_simulator
from integrations.hooks import KeepsSimulatorState, hooks
from integrations.sandbox import persistence
from integrations.sandbox.base import OUTAGES, EveryNth
from integrations.sessionm import sandbox as sessionm_simulator

pytestmark = pytest.mark.django_db(transaction=True)
PHONE = "+14155550142"


@pytest.fixture
def kept(settings, tmp_path, attentive_sandbox, sessionm_sandbox, monkeypatch) -> Path:
    """The simulators keep their state in this test's own folder; the process has not read any yet."""
    settings.SANDBOX_STATE_DIR = str(tmp_path)
    monkeypatch.setattr(persistence, "_loaded", False)
    monkeypatch.setattr(persistence, "_last_written", {})
    yield tmp_path
    persistence._save_after_debounce()  # no timer of this test writes after it
    OUTAGES.clear()


def written(path: Path, found: str, deadline: float = 10.0) -> dict:
    """The saved state once it holds `found` (written after a short debounce)."""
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        if path.exists() and found in (text := path.read_text()):
            return json.loads(text)
        time.sleep(0.05)
    raise AssertionError(f"{path.name} never held {found!r}")


def subscribe_at_attentive(base_url: str) -> None:
    response = requests.post(
        f"{base_url}/attentive/v1/subscriptions",
        json={"user": {"phone": PHONE}, "signUpSourceId": "132109"},
        headers={"Authorization": f"Bearer {attentive_simulator.API_KEY}"},
        timeout=10,
    )
    assert response.status_code == 202, response.text


def create_sessionm_user(base_url: str, external_id: str) -> str:
    api_key = sessionm_simulator.DEMO_SECRETS["api_key"]
    secret = sessionm_simulator.DEMO_SECRETS["api_secret"]
    response = requests.post(
        f"{base_url}/sessionm/priv/v1/apps/{api_key}/users",
        json={"user": {"external_id": external_id, "email": f"{external_id}@example.com", "opted_in": True}},
        auth=(api_key, secret),
        timeout=10,
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["user"]["id"]


def restart() -> None:
    """What a second `make run` does to the simulators: empty memory, then the saved states read at first use."""
    attentive_simulator.state.__init__()
    sessionm_simulator.state.__init__()
    persistence._loaded = False
    persistence.load_all()


def test_subscriptions_and_users_survive_a_restart_and_new_ids_do_not_collide(kept, settings):
    base_url = settings.SANDBOX_BASE_URL
    subscribe_at_attentive(base_url)
    first_user = create_sessionm_user(base_url, "ext-1")

    saved = written(kept / "attentive.json", PHONE)
    assert {"__tuple__": [PHONE, "TEXT"]} in saved["subscribed"]["__set__"]
    written(kept / "sessionm.json", first_user)
    assert not list(kept.glob("*.tmp")), "written atomically: no temporary file left behind"

    restart()

    assert (PHONE, "TEXT") in attentive_simulator.state.subscribed
    assert first_user in sessionm_simulator.state.users
    # SessionM's next user gets a new id, not u-000001 again.
    second_user = create_sessionm_user(base_url, "ext-2")
    assert second_user != first_user and set(sessionm_simulator.state.users) == {first_user, second_user}


def test_reset_the_sandbox_says_what_it_clears_and_clears_it(kept, settings, client):
    base_url = settings.SANDBOX_BASE_URL
    subscribe_at_attentive(base_url)
    written(kept / "attentive.json", PHONE)
    OUTAGES.clear()

    page = client.get("/sandbox/").content.decode()
    assert "Reset the sandbox" in page and "Attentive's" in page and "subscriptions" in page
    assert "The portal's own records" in page

    response = client.post("/sandbox/_reset")

    assert response.status_code == 302
    assert "was reset" in client.get(response["Location"]).content.decode()
    assert not attentive_simulator.state.subscribed and not list(kept.glob("*.json"))
    assert len(bazaarvoice_simulator.state.reviews) == 47  # the demo's reviews come back
    restart()
    assert not attentive_simulator.state.subscribed


def test_without_a_folder_nothing_is_written(settings, attentive_sandbox, tmp_path, monkeypatch):
    settings.SANDBOX_STATE_DIR = ""
    monkeypatch.setattr(persistence, "_loaded", False)
    subscribe_at_attentive(settings.SANDBOX_BASE_URL)
    persistence.save_all()
    assert not list(tmp_path.iterdir())


def sample_like(default: Any) -> Any:
    """A value of the default's kind, different from it and holding the shapes the simulators keep (tuples in sets,
    non-text keys, nested records)."""
    kinds: list[tuple[type, Callable[[Any], Any]]] = [
        (bool, lambda d: not d),
        (int, lambda d: d + 7),
        (float, lambda d: d + 1.5),
        (str, lambda d: f"{d}-kept"),
        (Counter, lambda d: Counter({PHONE: 2, "other": 1})),
        (dict, lambda d: {"rec-1": {"nested": [1, "two", None]}, 7: {"int key": True}}),
        (set, lambda d: {(PHONE, "TEXT"), "plain"}),
        (list, lambda d: [{"to": PHONE, "body": "Hi"}, ("tok", 401), ["nested"]]),
        (EveryNth, lambda d: EveryNth(every=3, seen=5, fired=1)),
        (itertools.count, lambda d: itertools.count(42)),
    ]
    for kind, sample in kinds:
        if isinstance(default, kind):
            return sample(default)
    raise AssertionError(f"a simulator keeps a {type(default).__name__}, which persistence.py does not know")


def comparable(value: Any) -> Any:
    return next(copy.copy(value)) if isinstance(value, itertools.count) else value


@pytest.mark.parametrize("vendor", sorted(hooks(KeepsSimulatorState)))
def test_every_field_of_every_simulator_comes_back_as_it_was_kept(vendor):
    """Each simulator's state, every field filled with a value of its kind, is written and read back unchanged: a
    field of a type the file cannot hold fails here, not after somebody's second `make run`."""
    kind = type(hooks(KeepsSimulatorState)[vendor].state)
    state = kind()
    for name in persistence.kept_fields(state):
        setattr(state, name, sample_like(getattr(state, name)))

    text = persistence.dumped(state)
    restarted = kind()
    persistence.restore(restarted, json.dumps(json.loads(text)))  # through the file's JSON, as a restart reads it

    for name in persistence.kept_fields(state):
        assert comparable(getattr(restarted, name)) == comparable(getattr(state, name)), name
        assert type(getattr(restarted, name)) is type(getattr(state, name)), name
    assert persistence.dumped(restarted) == text
