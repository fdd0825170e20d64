"""Loyalty-action SMS throughput: N pending events sent by the message job through the Attentive simulator,
served by gunicorn with added latency per call, within Attentive's messages rate limit.

    .venv/bin/python bench/attentive_dispatch.py --events 10000 --latency-ms 20 [--database-url postgres://...]

Prints one line: events=… sent=… seconds=… messages_per_s=… rate_limit=… duplicates=… peak_rss_mb=…
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port  # noqa: E402 - after the path is set


def start_sandbox(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{port}"]
    # One process, many threads: the simulator keeps its state in memory.
    command += ["--workers", "1", "--threads", "32", "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/sandbox/", timeout=1)
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the sandbox did not start")


def control(port: int, settings: dict[str, object] | None = None) -> dict[str, object]:
    data = json.dumps(settings).encode() if settings is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sandbox/attentive/_control", data=data)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local only
        return json.loads(response.read())


def seed(events: int) -> None:
    from integrations.attentive.sandbox import API_KEY, LEGACY_TOKEN
    from integrations.models import Client, Connection, SignUpSource
    from members.models import ChannelSubscription, LoyaltyEvent, Member, MessageTemplate

    client = Client.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    SignUpSource.objects.create(client=client, source_id="132109", is_default=True)
    connection = Connection.objects.create(
        client=client,
        vendor="attentive",
        environment="sandbox",
        status="active",
        secrets={"api_key": API_KEY, "legacy_token": LEGACY_TOKEN},
    )
    MessageTemplate.objects.create(
        client=client, event_type="points_earned", connection=connection, text="Hi {first_name}, +{points} points!"
    )
    members = Member.objects.bulk_create(
        Member(client=client, phone=f"+1404{5550000 + n:07d}", first_name=f"M{n}") for n in range(events)
    )
    ChannelSubscription.objects.bulk_create(
        ChannelSubscription(member=m, vendor="attentive", channel="TEXT", state="subscribed") for m in members
    )
    LoyaltyEvent.objects.bulk_create(
        LoyaltyEvent(client=client, member=m, external_id=f"e{m.pk}", event_type="points_earned", data={"points": 5})
        for m in members
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--database-url", default=f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3")
    args = parser.parse_args()
    port = free_port()
    env = {
        **os.environ,
        "ENV_FILE": "",
        "DEBUG": "true",
        "SANDBOX_ENABLED": "true",
        "SANDBOX_BASE_URL": f"http://127.0.0.1:{port}/sandbox",
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": "memory://",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    seed(args.events)

    server = start_sandbox(env, port)
    try:
        control(port, {"reset": True, "latency_ms": args.latency_ms})
        from integrations.attentive.api import AttentiveAPI
        from members.messaging import dispatch_messages

        started = time.perf_counter()
        counts = dispatch_messages()
        seconds = time.perf_counter() - started
        state = control(port)
    finally:
        server.terminate()
        server.wait(timeout=10)
    by_phone = state["messages_by_phone"]
    duplicates = sum(n - 1 for n in by_phone.values() if n > 1)
    print(
        f"events={args.events} sent={counts['sent']} delivered={state['messages']} seconds={seconds:.1f} "
        f"messages_per_s={counts['sent'] / seconds:.1f} rate_limit={AttentiveAPI.endpoint_rate_limits['messages']:g} "
        f"concurrency={settings.MESSAGE_SEND_CONCURRENCY} latency_ms={args.latency_ms} duplicates={duplicates} "
        f"peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
    )


if __name__ == "__main__":
    main()
