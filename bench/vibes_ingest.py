"""Vibes callback ingestion under load: gunicorn serving the portal on PostgreSQL (by default), threads sending
callbacks (20% duplicates, shuffled order) over 16 concurrent keep-alive connections, against a bare Django view
that inserts one row (the baseline, same run); then a Celery worker drains the queue and the outcome is checked.

    .venv/bin/python bench/vibes_ingest.py --callbacks 20000 [--database-url postgres://postgres@127.0.0.1:5432/postgres]

Prints one line: callbacks=… events=… duplicates_sent=… accepted_rps=… p50_ms=… p99_ms=… non_2xx=… baseline_rps=…
baseline_p50_ms=… baseline_p99_ms=… baseline_non_2xx=… ratio=… stored=… applied=… lost=… applied_twice=…
wrong_final_state=… opt_outs_missing=…, and exits 1 when one of INVARIANTS breaks. `applied`, `lost` and
`applied_twice` come from the bench's own record of what the worker applied (bench/applied_record.py), against the
events it sent; `opt_outs_missing` from the members the client API shows opted in although their person's newest
event was an opt-out.
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
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.applied_record import RECORD_URL_VARIABLE, WORKER_ENTRY, applications, event_key
from bench.common import (
    add_database_argument,
    bench_django,
    free_port,
    gunicorn,
    print_result,
    process,
)

SMOKE_ARGS = ["--callbacks", "200", "--workers", "2", "--concurrency", "4"]
# Counted against what the bench sent: every delivery answered 2xx and stored; every event applied once, by the
# bench's own record of the worker's applications (bench/applied_record.py); each person's newest event decides its
# state, and an opt-out reaches the member (read through the client API). The drill took place: duplicates were sent.
# The endpoint keeps 0.9 of the pace of a bare view storing one row, with p99 under 30 ms (issue 22), judged on runs
# long enough to measure it.
INVARIANTS = [
    "duplicates_sent >= 1",
    "non_2xx == 0",
    "baseline_non_2xx == 0",
    "stored == callbacks",
    "lost == 0",
    "applied_twice == 0",
    "wrong_final_state == 0",
    "opt_outs_missing == 0",
    "callbacks < 5000 or ratio >= 0.9",
    "callbacks < 5000 or p99_ms < 30",
]

DUPLICATE_SHARE = 0.2
EVENTS_PER_PERSON = 4
API_PAGE = 1000


@dataclass
class Callbacks:
    """What the bench sends: every delivery in sending order, the unique events among them (by Vibes' dedup key),
    and each person's state once the newest of their events is applied."""

    deliveries: list[bytes]
    events: set[str]
    final_state: dict[str, str]


def make_callbacks(count: int) -> Callbacks:
    """Whole persons of four events a minute apart, opting in and out in turn (even persons start with an opt-in,
    so they end opted out; odd ones the other way round), for about 80% of the deliveries; repeats of random ones
    for the rest; all shuffled: duplicates, and events out of order."""
    persons = max(1, int(count * (1 - DUPLICATE_SHARE)) // EVENTS_PER_PERSON)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events, keys, final_state = [], set(), {}
    for person in range(persons):
        for step in range(EVENTS_PER_PERSON):
            n = person * EVENTS_PER_PERSON + step
            kind = "subscription_added" if (person + step) % 2 == 0 else "subscription_removed"
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
            keys.add(event_key(payload["event_id"], kind))
            final_state[f"P{person}"] = "subscribed" if kind == "subscription_added" else "unsubscribed"
    deliveries = events + random.choices(events, k=max(0, count - len(events)))
    random.shuffle(deliveries)
    return Callbacks(deliveries, keys, final_state)


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


def drain(env: Mapping[str, str], broker_url: str, waiting: Callable[[], bool]) -> None:
    """A Celery worker, its applications recorded (bench/applied_record.py), until nothing waits for processing (or
    it dies, or ten minutes pass). Its warm shutdown finishes the task at hand, so the record is complete after."""
    from django.conf import settings  # configured by bench_django

    queues = ",".join(settings.PORTAL_QUEUES)
    worker = [sys.executable, "-c", WORKER_ENTRY, "-A", "portal", "worker", "-Q", queues, "-c", "2", "-l", "WARNING"]
    worker.append("--without-gossip")
    with process(worker, {**env, RECORD_URL_VARIABLE: broker_url}) as child:
        deadline = time.monotonic() + 600
        while waiting() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.5)


def members_opted_in(port: int, token: str) -> set[str]:
    """The external ids of the members the client API shows as opted in, all pages."""
    found, offset = set(), 0
    while True:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/members/?limit={API_PAGE}&offset={offset}",
            headers={"Authorization": f"Token {token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - local only
            page = json.loads(response.read())
        found |= {member["annex_cloud_id"] for member in page["results"] if member["opted_in"]}
        if not page["next"]:
            return found
        offset += API_PAGE


def seed(persons: int) -> tuple[Any, Any, str]:
    """A client, its Vibes connection and API token, and one opted-in member per person (matched by external id).
    The portal code this bench uses is imported here only."""
    from integrations.models import ApiToken, Client, Connection
    from members.models import Member

    client = Client.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    connection = Connection.objects.create(client=client, vendor="vibes", status="active")
    Member.objects.bulk_create(Member(client=client, annex_cloud_id=f"ext-{n}", opted_in=True) for n in range(persons))
    return client, connection, ApiToken.issue(client, "bench")[1]


def ingest(env: Mapping[str, str], args: argparse.Namespace, callbacks: Callbacks) -> dict[str, Any]:
    """Load the baseline view, then the callback endpoint, with the same deliveries; drain; and count, from what
    was sent, what the portal stored, applied (the bench's record) and shows through its API."""
    from integrations.models import Client, Connection, WebhookEvent
    from integrations.vibes.models import VibesListSubscription

    client, connection, token = seed(len(callbacks.final_state))
    # The baseline's rows under a connection of their own: deleting them before the callbacks' run would leave it a
    # table of dead rows to insert into.
    elsewhere = Client.objects.create(name="Baseline", slug=f"baseline-{time.time_ns()}")
    baseline_connection = Connection.objects.create(client=elsewhere, vendor="vibes", status="disabled")
    stored = WebhookEvent.objects.filter(connection=connection)
    port = free_port()
    with gunicorn(env, port, "--workers", str(args.workers)):
        baseline = load(port, f"/baseline/{baseline_connection.pk}/", callbacks.deliveries, args.concurrency)
        endpoint = f"/api/webhooks/vibes/{connection.inbound_token}/"
        timings = load(port, endpoint, callbacks.deliveries, args.concurrency)
        stored_count = stored.count()
        drain(env, args.broker_url, stored.filter(status="received").exists)
        opted_in = members_opted_in(port, token)
    applied = applications(args.broker_url)
    final = dict(VibesListSubscription.objects.filter(client=client).values_list("person_id", "state"))
    # A member whose person ends opted out was opted out by the portal (honour_opt_outs_everywhere); one whose
    # person ends subscribed may have been, or not, depending on which opt-out came before a later opt-in.
    opted_out = {f"ext-{person[1:]}" for person, state in callbacks.final_state.items() if state == "unsubscribed"}
    return {
        "baseline": baseline,
        "callbacks": timings,
        "stored": stored_count,
        "applied": len(applied.keys() & callbacks.events),
        "lost": len(callbacks.events - applied.keys()),
        "applied_twice": sum(count - 1 for count in applied.values()),
        "wrong_final_state": sum(final.get(person) != state for person, state in callbacks.final_state.items()),
        "opt_outs_missing": len(opted_out & opted_in),
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
    callbacks = make_callbacks(args.callbacks)
    with empty_redis(args.broker_url), bench_django(args.database_url, **production_like) as env:
        outcome = ingest(env, args, callbacks)
    seconds, latencies, failures = outcome.pop("callbacks")
    base_seconds, base_latencies, base_failures = outcome.pop("baseline")
    deliveries = len(callbacks.deliveries)
    rps, base_rps = deliveries / seconds, deliveries / base_seconds
    print_result(
        INVARIANTS,
        callbacks=deliveries,
        events=len(callbacks.events),
        duplicates_sent=deliveries - len(callbacks.events),
        accepted_rps=f"{rps:.0f}",
        p50_ms=f"{percentile(latencies, 0.5):.1f}",
        p99_ms=f"{percentile(latencies, 0.99):.1f}",
        non_2xx=failures,
        baseline_rps=f"{base_rps:.0f}",
        baseline_p50_ms=f"{percentile(base_latencies, 0.5):.1f}",
        baseline_p99_ms=f"{percentile(base_latencies, 0.99):.1f}",
        baseline_non_2xx=base_failures,
        ratio=f"{rps / base_rps:.2f}",
        **outcome,
    )


if __name__ == "__main__":
    main()
