"""Vibes callback ingestion under load: gunicorn serving the portal on PostgreSQL, a separate load process sending
callbacks (20% duplicates, shuffled order) over 16 concurrent keep-alive connections, against a bare Django view
that inserts one row (the baseline, same run); then a Celery worker drains the queue and the outcome is checked.

    .venv/bin/python bench/vibes_ingest.py --callbacks 20000 --database-url postgres://postgres@127.0.0.1:5432/bench_vibes

Prints one line: callbacks=… accepted_rps=… p50_ms=… p99_ms=… baseline_rps=… baseline_p50_ms=… baseline_p99_ms=…
ratio=… lost=… applied_twice=… wrong_final_state=…
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port  # noqa: E402 - after the path is set

DUPLICATE_SHARE = 0.2
EVENTS_PER_PERSON = 4


def make_callbacks(count: int) -> tuple[list[bytes], dict[str, str]]:
    """Unique events for count·0.8 deliveries (persons alternating opt-in / opt-out in time), duplicates of random
    ones for the rest, shuffled. Returns the bodies and each person's expected final state."""
    unique = int(count * (1 - DUPLICATE_SHARE))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events, expected = [], {}
    for n in range(unique):
        person, step = n // EVENTS_PER_PERSON, n % EVENTS_PER_PERSON
        kind = "subscription_added" if step % 2 == 0 else "subscription_removed"
        date = (start + timedelta(minutes=person * 10 + step)).strftime("%Y-%m-%dT%H:%M:%SZ")
        subscription = {
            "person": {"id": f"P{person}", "external_id": f"ext-{person}"},
            "subscription_list": {"id": "1234"},
            "opt_in_date": date,
        }
        if kind == "subscription_removed":
            subscription.update(opt_out_date=date, opt_out_reason="user_opt_out")
        payload = {"event_id": f"ev-{n}", "callback_type": kind, "event_date": date, "subscription": subscription}
        events.append(json.dumps(payload).encode())
        expected[f"P{person}"] = "subscribed" if kind == "subscription_added" else "unsubscribed"
    deliveries = events + random.choices(events, k=count - unique)
    random.shuffle(deliveries)
    return deliveries, expected


def load(port: int, path: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], int]:
    """Send every body once over `concurrency` keep-alive connections; returns seconds, latencies, non-2xx count."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    cursor = iter(range(len(bodies)))

    def worker() -> None:
        nonlocal failures
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, bad = [], 0
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            started = time.perf_counter()
            conn.request("POST", path, bodies[index], {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            bad += response.status >= 300
        conn.close()
        with lock:
            latencies.extend(mine)
            failures += bad

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, failures


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100)[int(share * 100) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callbacks", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_vibes")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    env = {
        **os.environ,
        "ENV_FILE": "",
        # Production-like: DEBUG off (no query log), real-looking secrets, plain HTTP on loopback.
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + "k" * 60,
        "FIELD_ENCRYPTION_KEYS": "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMDE=",
        "SECURE_SSL_REDIRECT": "false",
        "ROOT_URLCONF": "bench.vibes_baseline_urls",
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": args.broker_url,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    import redis

    from integrations.models import Client, Connection, WebhookEvent
    from members.models import Member, VibesListSubscription

    redis.Redis.from_url(args.broker_url).flushdb()
    client = Client.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    connection = Connection.objects.create(client=client, vendor="vibes", status="active")
    bodies, expected = make_callbacks(args.callbacks)
    Member.objects.bulk_create(Member(client=client, annex_cloud_id=f"ext-{n}") for n in range(len(expected)))

    port = free_port()
    gunicorn = [sys.executable, "-m", "gunicorn", "portal.wsgi", "-b", f"127.0.0.1:{port}"]
    server = subprocess.Popen([*gunicorn, "-w", str(args.workers), "--log-level", "warning"], cwd=ROOT, env=env)
    time.sleep(3)
    try:
        base_seconds, base_latencies, base_failures = load(
            port, f"/baseline/{connection.pk}/", bodies, args.concurrency
        )
        WebhookEvent.objects.filter(connection=connection).delete()
        seconds, latencies, failures = load(
            port, f"/api/webhooks/vibes/{connection.inbound_token}/", bodies, args.concurrency
        )
    finally:
        server.terminate()
        server.wait(timeout=20)

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-c", "2", "-l", "WARNING", "--without-gossip"],
        cwd=ROOT,
        env=env,
    )
    try:
        events = WebhookEvent.objects.filter(connection=connection, event_id__isnull=False)
        deadline = time.monotonic() + 600
        while events.filter(status="received").exists() and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    unique_ids = {json.loads(b)["event_id"] for b in bodies}
    stored_ids = set(events.values_list("event_id", flat=True))
    lost = len(unique_ids - stored_ids) + events.filter(status__in=["received", "failed"]).count()
    applied_twice = events.count() - len(stored_ids)  # the unique constraint makes this 0 by construction
    final = dict(VibesListSubscription.objects.filter(client=client).values_list("person_id", "state"))
    wrong = sum(final.get(person) != state for person, state in expected.items())
    rps, base_rps = len(bodies) / seconds, len(bodies) / base_seconds
    print(
        f"callbacks={len(bodies)} accepted_rps={rps:.0f} p50_ms={percentile(latencies, 0.5):.1f} "
        f"p99_ms={percentile(latencies, 0.99):.1f} non_2xx={failures} baseline_rps={base_rps:.0f} "
        f"baseline_p50_ms={percentile(base_latencies, 0.5):.1f} baseline_p99_ms={percentile(base_latencies, 0.99):.1f} "
        f"baseline_non_2xx={base_failures} ratio={rps / base_rps:.2f} lost={lost} applied_twice={applied_twice} "
        f"wrong_final_state={wrong}"
    )


if __name__ == "__main__":
    main()
