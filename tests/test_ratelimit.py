"""A connection's rate limit holds across processes: two worker processes calling one vendor together stay within
it (the count lives in the shared cache, Redis in production)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib import import_module
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from integrations.attentive.api import AttentiveAPI
from integrations.connections import api_for
from integrations.ratelimit import SharedWindowLimiter, cache_is_shared, rate_limiter
from integrations.vendors import VENDORS
from tests.factories import ConnectionFactory

ROOT = Path(__file__).resolve().parent.parent
RATE = 20
WORKER = """
import os, sys, time, django, requests
django.setup()
from integrations.ratelimit import SharedWindowLimiter
limiter = SharedWindowLimiter(sys.argv[2], float(sys.argv[3]))
print("ready", flush=True)
sys.stdin.readline()  # both processes start together, so their calls overlap
for _ in range(int(sys.argv[4])):
    limiter.acquire()
    print(time.time(), flush=True)  # when this call was allowed to go
    requests.get(sys.argv[1], timeout=5)
"""


def busiest_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))


def test_without_a_shared_cache_each_process_keeps_its_own_bucket(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert not isinstance(rate_limiter("connection:1", 5), SharedWindowLimiter)


def test_two_worker_processes_share_one_limit(httpserver: HTTPServer):
    if not cache_is_shared():
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("REQUIRE_SERVICES=1 but CACHE_URL is not a shared cache (Redis)")
        pytest.skip("needs a shared cache: set CACHE_URL=rediscache://...")
    seen: list[float] = []

    def record(request: Request) -> Response:
        seen.append(time.time())
        return Response("ok")

    httpserver.expect_request("/call").respond_with_handler(record)
    key = f"test:two-workers:{time.time_ns()}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.test_settings"}
    args = [sys.executable, "-c", WORKER, httpserver.url_for("/call"), key, str(RATE), "30"]
    workers = [
        subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        assert all(worker.stdout.readline().strip() == "ready" for worker in workers)
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        allowed = [float(line) for worker in workers for line in worker.communicate(timeout=60)[0].split()]
    finally:
        for worker in workers:
            worker.kill()  # one that died early must not leave the other waiting for its start
    assert all(worker.returncode == 0 for worker in workers)
    assert len(seen) == len(allowed) == 60
    # The limit holds for when calls were allowed to go (arrival at the server adds the network's jitter). A loaded
    # machine may delay recording a call past a window's end or two (CI once saw RATE + 2 in a second), so a second
    # gets slack of a few windows' counts; the whole run's pace has no such slack, as a delay moves only its ends.
    # Unshared, the two processes would each go at the full rate: twice RATE a second, the run in half the time.
    per_window = SharedWindowLimiter(key, RATE).per_window
    assert busiest_second(allowed) <= RATE + 3 * per_window
    assert max(allowed) - min(allowed) >= (len(allowed) - 2 * per_window) / RATE - 0.25


def rates(limiters) -> list[float]:
    return sorted(limiter.rate for limiter in limiters)


def test_the_default_connection_limit_never_holds_a_published_endpoint_below_its_limit(connection_a):
    """Attentive publishes 150/s for messages; the connection's default (10/s) must not cap them — it did, and
    loyalty SMS went out at 10/s."""
    api = api_for(connection_a, AttentiveAPI, api_key="unused")
    assert rates(api.limiters_for("messages")) == [AttentiveAPI.endpoint_rate_limits["messages"]]
    assert rates(api.limiters_for("subscribe")) == [AttentiveAPI.endpoint_rate_limits["subscribe"]]
    assert rates(api.limiters_for(None)) == [connection_a.spec.default_rate_limit]


def test_a_limit_an_admin_chose_caps_the_published_endpoints_too(connection_a):
    connection_a.settings = {**connection_a.settings, "rate_limit_per_second": 7}
    api = api_for(connection_a, AttentiveAPI, api_key="unused")
    assert rates(api.limiters_for("messages")) == [7, AttentiveAPI.endpoint_rate_limits["messages"]]
    assert rates(api.limiters_for(None)) == [7]


def test_the_connection_form_does_not_turn_the_default_into_a_chosen_limit():
    field = VENDORS["attentive"].settings_form_class()().fields["rate_limit_per_second"]
    assert field.initial is None and "10" in field.widget.attrs["placeholder"]


def test_stored_form_defaults_are_forgotten_and_chosen_limits_kept(client_a, client_b):
    saved_by_the_old_form = ConnectionFactory(client=client_a, settings={"rate_limit_per_second": 10.0})
    chosen = ConnectionFactory(client=client_b, settings={"rate_limit_per_second": 25})
    forget_default_limits = import_module("integrations.migrations.0010_default_rate_limits_unchosen")
    forget_default_limits.forget_form_defaults(django_apps, None)
    saved_by_the_old_form.refresh_from_db()
    chosen.refresh_from_db()
    assert not saved_by_the_old_form.rate_limit_chosen
    assert chosen.settings["rate_limit_per_second"] == 25
