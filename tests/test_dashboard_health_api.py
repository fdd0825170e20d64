"""The admin dashboard, the health check, the API schema and docs, and the sandbox frame."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.models import ApiToken, BeatLease, Connection, JobRun
from portal.beat import acquire_or_renew, release
from portal.celery import app as celery_app
from tests.factories import ConnectionFactory


@pytest.fixture
def trouble(client_a, client_b):
    failing_a = ConnectionFactory(
        client=client_a, vendor="vibes", status=Connection.Status.FAILING, last_check_result="Vibes: bad password"
    )
    failing_b = ConnectionFactory(
        client=client_b, vendor="vibes", status=Connection.Status.FAILING, last_check_result="Vibes: beta broke"
    )
    JobRun.objects.create(job="integrations.prune_old_records", outcome="failed", error="alpha job exploded")
    JobRun.objects.create(job="attentive.send", client=client_b, outcome="failed", error="beta job exploded")
    JobRun.objects.create(
        job="old",
        client=client_a,
        outcome="failed",
        error="ancient failure",
        started_at=timezone.now() - timedelta(days=2),
    )
    return failing_a, failing_b


def test_dashboard_puts_trouble_first_for_site_admins(admin_http, trouble, connection_a):
    html = admin_http.get(reverse("admin:index")).content.decode()
    assert html.index("Needs attention") < html.index("Clients and connections")
    assert "Vibes: bad password" in html and "Vibes: beta broke" in html
    assert "alpha job exploded" in html and "beta job exploded" in html
    assert "ancient failure" not in html  # older than 24 hours
    assert html.count('class="card connection-card') == 3


def test_dashboard_of_a_client_user_shows_only_their_client(alice_http, trouble, connection_a):
    html = alice_http.get(reverse("admin:index")).content.decode()
    assert "Vibes: bad password" in html
    assert "beta" not in html.lower()
    assert "alpha job exploded" not in html  # portal-wide runs are for site admins
    assert html.count('class="card connection-card') == 2


def test_healthz_reports_database_and_broker(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["broker"]) == ("ok", "ok", "ok")
    assert body["beat"] == {"seen": False} and body["worker"] == {"seen": False}


def test_healthz_is_503_when_beat_has_been_silent(client, db):
    assert acquire_or_renew("beat-host:1")
    JobRun.objects.create(job="members.dispatch_loyalty_messages", finished_at=timezone.now(), outcome="succeeded")
    alive = client.get("/healthz").json()
    assert alive["beat"]["holder"] == "beat-host:1" and alive["worker"]["seen"]
    BeatLease.objects.update(renewed_at=timezone.now() - timedelta(minutes=3))
    silent = client.get("/healthz")
    assert silent.status_code == 503 and silent.json()["beat"]["age_s"] >= 180


def test_healthz_is_503_when_the_broker_is_unreachable(client, db, monkeypatch):
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["database"] == "ok"


def test_openapi_schema_and_docs_are_served(admin_http):
    schema = admin_http.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/connections/" in schema.content and b"clientToken" in schema.content
    docs = admin_http.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_api_refuses_anonymous_and_bad_tokens(client, db):
    assert client.get("/api/clients/").status_code in (401, 403)
    bad = client.get("/api/clients/", HTTP_AUTHORIZATION="Token not-a-real-token")
    assert bad.status_code == 401
    assert "Invalid or revoked token" in bad.json()["detail"]


def test_revoked_tokens_stop_working(api_client_for, client_a):
    api = api_client_for(client_a)
    assert api.get("/api/clients/").status_code == 200
    ApiToken.objects.update(revoked=True)
    assert api.get("/api/clients/").status_code == 401


def test_connection_api_never_carries_secrets(api_client_for, connection_a, client_a):
    body = api_client_for(client_a).get("/api/connections/").content.decode()
    assert "attentive-key-0123456789" not in body
    assert '"api_key":true' in body.replace(" ", "")


def test_sandbox_frame_is_mounted_and_injects_failures(client, db):
    assert client.get("/sandbox/", HTTP_ACCEPT="application/json").json()["sandbox"] is True
    assert client.get("/sandbox/?format=json").json()["vendors"]
    failing = client.get("/sandbox/", HTTP_X_SANDBOX_FAIL="429")
    assert failing.status_code == 429 and failing["Retry-After"] == "1"


def test_metrics_are_off_without_a_token(client, db, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404


def test_healthz_is_503_and_alerts_when_the_only_beat_stopped_cleanly(client, db, site_admin, mailoutbox):
    """SIGTERM closes the scheduler, which gives its lease up: that must not read as "beat never ran here"."""
    assert acquire_or_renew("beat-host:1")
    release("beat-host:1")
    assert acquire_or_renew("beat-host:2")  # a standby takes over at once
    BeatLease.objects.update(renewed_at=timezone.now() - timedelta(minutes=3))
    release("beat-host:2")  # ... and then it stopped cleanly too
    silent = client.get("/healthz")
    assert silent.status_code == 503 and silent.json()["beat"]["seen"] is True
    assert [m.subject for m in mailoutbox] == ["[Integration Portal] No celery beat is running"]
    assert client.get("/healthz").status_code == 503 and len(mailoutbox) == 1  # alerts are throttled


def test_healthz_answers_503_not_500_when_beat_is_silent_and_the_cache_is_down(client, db, settings):
    assert acquire_or_renew("beat-host:1")
    BeatLease.objects.update(renewed_at=timezone.now() - timedelta(minutes=3))
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
    }
    assert client.get("/healthz").status_code == 503


def test_every_queue_answers_the_heartbeat_and_healthz_reads_it(client, db, eager_celery, settings):
    from integrations.liveness import send_heartbeats
    from integrations.models import WorkerHeartbeat

    assert client.get("/healthz").json()["workers_by_queue"] == dict.fromkeys(settings.PORTAL_QUEUES)  # not failed
    assert send_heartbeats() == len(settings.PORTAL_QUEUES)
    assert sorted(WorkerHeartbeat.objects.values_list("queue", flat=True)) == sorted(settings.PORTAL_QUEUES)
    ages = client.get("/healthz").json()["workers_by_queue"]
    assert all(age is not None and age < 60 for age in ages.values())


def test_healthz_is_503_and_alerts_when_no_worker_consumes_a_queue(client, db, site_admin, mailoutbox, settings):
    from integrations.models import WorkerHeartbeat

    settings.HEALTH_SILENT_SECONDS = 120
    now = timezone.now()
    for queue in settings.PORTAL_QUEUES:
        WorkerHeartbeat.objects.create(queue=queue, worker="w@host", seen_at=now - timedelta(seconds=30))
    assert client.get("/healthz").status_code == 200
    WorkerHeartbeat.objects.filter(queue="messages").update(seen_at=now - timedelta(seconds=121))
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["workers_by_queue"]["messages"] >= 121
    assert [m.subject for m in mailoutbox] == ["[Integration Portal] No worker consumes messages"]
