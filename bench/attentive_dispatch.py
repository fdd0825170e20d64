"""Loyalty-action SMS throughput: N pending events sent by the message job through the Attentive simulator,
served by gunicorn with added latency per call, within Attentive's messages rate limit.

    .venv/bin/python bench/attentive_dispatch.py --events 10000 --latency-ms 20 [--database-url postgres://...]

Prints one line: events=… sent=… delivered=… seconds=… messages_per_s=… rate_limit=… concurrency=… latency_ms=…
duplicates=… peak_rss_mb=…, and exits 1 when one of INVARIANTS breaks: every event sent and received by the
simulator once, at 90% of Attentive's published messages limit or more. The connection keeps its default rate
limit, as a client's would: it must not hold the messages endpoint below Attentive's 150/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    add_database_argument,
    bench_django,
    free_port,
    gunicorn,
    peak_rss_mb,
    print_result,
)

SMOKE_ARGS = ["--events", "30", "--latency-ms", "0"]
# Counted by the simulator (delivered, duplicates), against the input (events). The pace is judged only on runs long
# enough to reach it: a few dozen messages are over before the rate limit matters.
INVARIANTS = [
    "sent == events",
    "delivered == events",
    "duplicates == 0",
    "events < 1000 or messages_per_s >= 0.9 * rate_limit",
]


def control(port: int, settings: dict[str, object] | None = None) -> dict[str, Any]:
    """Read (or change, with settings) the Attentive simulator's state."""
    data = json.dumps(settings).encode() if settings is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sandbox/attentive/_control", data=data)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local only
        return json.loads(response.read())


def seed_and_dispatch(events: int) -> tuple[Counter[str], float, float]:
    """N members, each subscribed with one pending loyalty event, then the message job until all are sent, timed.
    Returns its counts, seconds and Attentive's messages rate limit. The portal code this bench uses is imported
    here only."""
    from integrations.attentive.api import AttentiveAPI
    from integrations.attentive.models import SignUpSource
    from integrations.attentive.sandbox import API_KEY, LEGACY_TOKEN
    from integrations.models import Client, Connection
    from members.messaging import dispatch_messages
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
    started = time.perf_counter()
    counts = run_jobs_until_done(dispatch_messages, events)
    return counts, time.perf_counter() - started, AttentiveAPI.endpoint_rate_limits["messages"]


def run_jobs_until_done(dispatch: Callable[[], dict[str, int]], events: int) -> Counter[str]:
    """The message job back to back, as its schedule runs it when it has work: each run stops at its time budget
    (MESSAGE_RUN_SECONDS) and the next one goes on. Stops when a run sends nothing (done, or stuck)."""
    total: Counter[str] = Counter()
    while total["sent"] < events:
        counts = dispatch()
        total.update(counts)
        if not counts["sent"]:
            break
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=20)
    add_database_argument(parser)
    args = parser.parse_args()
    port = free_port()
    sandbox = {"SANDBOX_ENABLED": "true", "SANDBOX_BASE_URL": f"http://127.0.0.1:{port}/sandbox"}
    with bench_django(args.database_url, **sandbox) as env:
        from django.conf import settings

        # One process, many threads: the simulator keeps its state in memory.
        with gunicorn(env, port, "--workers", "1", "--threads", "32"):
            control(port, {"reset": True, "latency_ms": args.latency_ms})
            counts, seconds, rate_limit = seed_and_dispatch(args.events)
            state = control(port)
        concurrency = settings.MESSAGE_SEND_CONCURRENCY
    duplicates = sum(n - 1 for n in state["messages_by_phone"].values() if n > 1)
    print_result(
        INVARIANTS,
        events=args.events,
        sent=counts["sent"],
        delivered=state["messages"],
        seconds=f"{seconds:.1f}",
        messages_per_s=f"{counts['sent'] / seconds:.1f}",
        rate_limit=f"{rate_limit:g}",
        concurrency=concurrency,
        latency_ms=args.latency_ms,
        duplicates=duplicates,
        peak_rss_mb=f"{peak_rss_mb():.0f}",
    )


if __name__ == "__main__":
    main()
