"""/metrics (issue 22): counters and a latency histogram from the rollups kept as things happen, behind a token."""

from __future__ import annotations

from integrations.connections import ConnectionCallLog
from integrations.http import CallRecord
from integrations.job_runs import run_job


def record(connection, status: int | None, latency: int, error: str = "") -> None:
    ConnectionCallLog(connection).record(CallRecord("GET", "/v1/me", 1, {}, "", status, "", latency, error))


def scrape(client) -> str:
    return client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-1234567").content.decode()


def test_metrics_need_the_token_and_count_the_portals_calls(client, connection_a, settings):
    settings.METRICS_TOKEN = "scrape-token-1234567"
    record(connection_a, 200, 40)
    record(connection_a, None, 5000, error="timeout")
    assert client.get("/metrics").status_code == 401
    body = scrape(client)
    labels = f'connection="{connection_a.pk}",error="",outcome="ok",vendor="attentive"'
    assert f"portal_vendor_calls_total{{{labels}}} 1.0" in body
    assert 'error="timeout",outcome="failed"' in body
    assert f'portal_vendor_call_latency_ms_sum{{connection="{connection_a.pk}",vendor="attentive"}} 5040.0' in body


def test_counters_only_grow_between_scrapes_and_job_runs_are_counted_as_they_end(client, connection_a, settings):
    settings.METRICS_TOKEN = "scrape-token-1234567"
    record(connection_a, 200, 40)
    before = scrape(client)
    record(connection_a, 200, 40)
    run_job("demo.job", lambda: {"done": 1})
    after = scrape(client)
    labels = f'connection="{connection_a.pk}",error="",outcome="ok",vendor="attentive"'
    assert f"portal_vendor_calls_total{{{labels}}} 1.0" in before
    assert f"portal_vendor_calls_total{{{labels}}} 2.0" in after
    assert 'portal_job_runs_total{outcome="succeeded"} 1.0' in after
