"""Vibes callback ingestion under load: gunicorn serving the portal on PostgreSQL (by default), threads sending
callbacks (20% duplicates, shuffled order) over 16 concurrent keep-alive connections, against a bare Django view
that inserts one row (the baseline, same run); then a Celery worker drains the queue and the outcome is checked.

    .venv/bin/python bench/vibes_ingest.py --callbacks 20000 [--database-url postgres://postgres@127.0.0.1:5432/postgres]

Prints one line: callbacks=… accepted_rps=… p50_ms=… p99_ms=… baseline_rps=… baseline_p50_ms=… baseline_p99_ms=…
ratio=… lost=… applied_twice=… wrong_final_state=…
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    add_database_argument,
    bench_django,
    free_port,
    gunicorn,
    print_result,
    process,
)

SMOKE_ARGS = ["--callbacks", "200", "--workers", "2", "--concurrency", "4"]
INVARIANTS = ["non_2xx == 0", "baseline_non_2xx == 0", "lost == 0", "applied_twice == 0", "wrong_final_state == 0"]

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


@contextmanager
def empty_redis(url: str) -> Iterator[None]:
    """The broker's Redis database, emptied before and after: no task of another run reaches this one's worker,
    none of this run's is left behind."""
    import redis

    broker = redis.Redis.from_url(url)
    broker.flushdb()
    try:
        yield
    finally:
        broker.flushdb()
        broker.close()


def serve_and_load(
    env: Mapping[str, str],
    args: argparse.Namespace,
    bodies: list[bytes],
    paths: tuple[str, str],
    between: Callable[[], object],
) -> dict[str, tuple[float, list[float], int]]:
    """The bodies sent to the baseline view, then (after `between`) to the callback endpoint, on one server."""
    port = free_port()
    with gunicorn(env, port, "--workers", str(args.workers)):
        baseline = load(port, paths[0], bodies, args.concurrency)
        between()
        callbacks = load(port, paths[1], bodies, args.concurrency)
    return {"baseline": baseline, "callbacks": callbacks}


def drain(env: Mapping[str, str], waiting: Callable[[], bool]) -> None:
    """A Celery worker until nothing waits for processing (or it dies, or ten minutes pass)."""
    from django.conf import settings  # configured by bench_django

    queues = ",".join(settings.PORTAL_QUEUES)
    worker = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queues, "-c", "2", "-l", "WARNING"]
    worker.append("--without-gossip")
    with process(worker, env) as child:
        deadline = time.monotonic() + 600
        while waiting() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.5)


def ingest(
    env: Mapping[str, str], args: argparse.Namespace, bodies: list[bytes], expected: dict[str, str]
) -> dict[str, Any]:
    """Seed a client, a Vibes connection and its members; load, drain, and count what went wrong. The portal code
    this bench uses is imported here only."""
    from integrations.models import Client, Connection, WebhookEvent
    from members.models import Member, VibesListSubscription

    client = Client.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    connection = Connection.objects.create(client=client, vendor="vibes", status="active")
    Member.objects.bulk_create(Member(client=client, annex_cloud_id=f"ext-{n}") for n in range(len(expected)))
    paths = (f"/baseline/{connection.pk}/", f"/api/webhooks/vibes/{connection.inbound_token}/")
    timings = serve_and_load(env, args, bodies, paths, WebhookEvent.objects.filter(connection=connection).delete)

    events = WebhookEvent.objects.filter(connection=connection, event_id__isnull=False)
    drain(env, events.filter(status="received").exists)
    unique_ids = {json.loads(b)["event_id"] for b in bodies}
    stored_ids = set(events.values_list("event_id", flat=True))
    final = dict(VibesListSubscription.objects.filter(client=client).values_list("person_id", "state"))
    return {
        **timings,
        "lost": len(unique_ids - stored_ids) + events.filter(status__in=["received", "failed"]).count(),
        "applied_twice": events.count() - len(stored_ids),  # the unique constraint makes this 0 by construction
        "wrong_final_state": sum(final.get(person) != state for person, state in expected.items()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callbacks", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    add_database_argument(parser, default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    production_like = {
        # DEBUG off (no query log), real-looking secrets, plain HTTP on loopback.
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + "k" * 60,
        "FIELD_ENCRYPTION_KEYS": "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMDE=",
        "SECURE_SSL_REDIRECT": "false",
        "ROOT_URLCONF": "bench.vibes_baseline_urls",
        "CELERY_BROKER_URL": args.broker_url,
    }
    bodies, expected = make_callbacks(args.callbacks)
    with empty_redis(args.broker_url), bench_django(args.database_url, **production_like) as env:
        outcome = ingest(env, args, bodies, expected)
    seconds, latencies, failures = outcome["callbacks"]
    base_seconds, base_latencies, base_failures = outcome["baseline"]
    rps, base_rps = len(bodies) / seconds, len(bodies) / base_seconds
    print_result(
        INVARIANTS,
        callbacks=len(bodies),
        accepted_rps=f"{rps:.0f}",
        p50_ms=f"{percentile(latencies, 0.5):.1f}",
        p99_ms=f"{percentile(latencies, 0.99):.1f}",
        non_2xx=failures,
        baseline_rps=f"{base_rps:.0f}",
        baseline_p50_ms=f"{percentile(base_latencies, 0.5):.1f}",
        baseline_p99_ms=f"{percentile(base_latencies, 0.99):.1f}",
        baseline_non_2xx=base_failures,
        ratio=f"{rps / base_rps:.2f}",
        lost=outcome["lost"],
        applied_twice=outcome["applied_twice"],
        wrong_final_state=outcome["wrong_final_state"],
    )


if __name__ == "__main__":
    main()
