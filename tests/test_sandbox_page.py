"""The /sandbox/ page: every simulator with its base URL, the credentials it accepts and its control knobs, readable
by a person (HTML) and still by scripts (JSON); and the demo secrets are distinctive enough to redact."""

from __future__ import annotations

import pytest
import requests

from integrations.attentive import sandbox as attentive_simulator
from integrations.sandbox.directory import simulators
from integrations.vendors import vendor_modules
from tests.test_content_security_policy import INLINE

pytestmark = pytest.mark.django_db


def test_the_page_lists_every_simulator_with_its_url_credentials_and_knobs(client, settings):
    settings.SANDBOX_BASE_URL = "http://portal.example:8000/sandbox"
    response = client.get("/sandbox/")
    html = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert not INLINE.search(html)
    for key, module in vendor_modules("sandbox").items():
        assert f'id="sandbox-{key}"' in html
        assert f"http://portal.example:8000/sandbox/{key}" in html
        assert f"http://portal.example:8000/sandbox/{key}/_outage" in html
        for value in [*module.DEMO_SECRETS.values(), *getattr(module, "DEMO_SETTINGS", {}).values()]:
            assert str(value) in html
    assert "lose_answer_every" in html  # Attentive's knob, described
    assert "http://portal.example:8000/sandbox/annex_cloud/_control" in html


def test_the_listed_knobs_and_credentials_work_against_the_live_simulators(live_server, settings):
    """What the page tells a person to use is what the simulators accept."""
    settings.SANDBOX_BASE_URL = f"{live_server.url}/sandbox"
    attentive_simulator.state.__init__()
    attentive = next(s for s in simulators() if s.key == "attentive")
    me = requests.get(
        f"{attentive.base_url}/v1/me", headers={"Authorization": f"Bearer {attentive.secrets['api_key']}"}, timeout=5
    )
    assert me.status_code == 200
    control = dict(attentive.controls)[f"{attentive.base_url}/_control"]
    assert "latency_ms" in control
    for url in dict(attentive.controls):
        if url.endswith("_control"):
            assert requests.post(url, json={"latency_ms": 0}, timeout=5).status_code == 200
    outage = f"{attentive.base_url}/_outage"
    assert requests.post(outage, json={"status": 503, "times": 1}, timeout=5).json()["status"] == 503
    refused = requests.get(
        f"{attentive.base_url}/v1/me", headers={"Authorization": f"Bearer {attentive.secrets['api_key']}"}, timeout=5
    )
    assert refused.status_code == 503
    attentive_simulator.state.__init__()


def test_scripts_still_get_json(client):
    assert client.get("/sandbox/", HTTP_ACCEPT="application/json").json() == {
        "sandbox": True,
        "vendors": sorted(vendor_modules("sandbox")),
    }
