"""Bazaarvoice reviews into Annex Cloud points: N approved reviews pulled from the Bazaarvoice simulator and their
reviewers rewarded through the Annex Cloud simulator (both served by gunicorn), timed; then N more, pulled by a
worker process that is killed (SIGKILL) half-way and restarted, with some Annex Cloud answers lost after the points
were applied. Every reviewer is a distinct address, so a balance above one award at Annex Cloud is a double award.

    .venv/bin/python bench/review_points.py --reviews 10000 [--annex-rate-limit 100] [--database-url postgres://...]

Prints one line: reviews=… pages=… awarded=… not_member=… double_awards=0 missed=0 lost=0 seconds=… reviews_per_s=…
awards_per_s=… annex_rate_limit=… peak_rss_mb=… — `missed` counts eligible reviewers Annex Cloud never credited,
`lost` reviews the portal never recorded, both after the killed run's restart.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, add_database_argument, bench_django, free_port, gunicorn, peak_rss_mb, print_result

# Portal modules are imported inside the functions below: Django is set up (bench_django) only once the bench runs.
SMOKE_ARGS = ["--reviews", "30"]
POINTS = 50


def control(port: int, vendor: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read (or change, with settings) a simulator's state."""
    data = json.dumps(settings or {}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sandbox/{vendor}/_control", data=data)
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - local only
        return json.loads(response.read())


def set_up(annex_rate_limit: float) -> int:
    """A client with Annex Cloud and Bazaarvoice connections on the simulators; returns the Bazaarvoice one's id."""
    from integrations.annexcloud import sandbox as annex_cloud_simulator
    from integrations.bazaarvoice import sandbox as bazaarvoice_simulator
    from integrations.models import Client, Connection

    client = Client.objects.create(name="Bench", slug=f"bench-{time.time_ns()}", site_id="100001")
    Connection.objects.create(
        client=client,
        vendor="annex_cloud",
        environment="sandbox",
        status="active",
        secrets=annex_cloud_simulator.DEMO_SECRETS,
        settings={"rate_limit_per_second": annex_rate_limit},
    )
    connection = Connection.objects.create(
        client=client,
        vendor="bazaarvoice",
        environment="sandbox",
        status="active",
        secrets=bazaarvoice_simulator.DEMO_SECRETS,
        settings={"rate_limit_per_second": 50, "points_per_review": POINTS},
    )
    return connection.pk


def pull(connection_id: int, now: datetime | None = None) -> dict[str, int]:
    from integrations.bazaarvoice.flows import pull_reviews
    from integrations.models import Connection

    # The whole backlog in one run (no time budget): the bench measures throughput.
    connection = Connection.objects.select_related("client").get(pk=connection_id)
    return pull_reviews(connection, now=now, budget=None).counts


def recorded_reviews() -> int:
    from integrations.bazaarvoice.models import Review

    return Review.objects.count()


def kill_midway(env: dict[str, str], connection_id: int, target: int) -> bool:
    """A worker pulls "tomorrow" (so today's reviews are due) and is killed once `target` reviews are recorded.
    Returns whether it was killed (a tiny batch may be done first)."""
    command = [sys.executable, str(Path(__file__)), "--worker", str(connection_id)]
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sys.stderr)
    try:
        while worker.poll() is None and recorded_reviews() < target:
            time.sleep(0.2)
    finally:
        killed = worker.poll() is None
        if killed:
            os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    return killed


def expire_lease(connection_id: int) -> None:
    """The restarted worker would wait out the killed run's hold on the pull (flows.LEASE); the bench ends it."""
    from integrations.bazaarvoice.models import PullState

    PullState.objects.filter(connection_id=connection_id).update(lease_until=None)


def tomorrow() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)


def outcomes() -> dict[str, int]:
    from django.db.models import Count

    from integrations.bazaarvoice.models import Review

    return dict(Review.objects.values_list("outcome").annotate(n=Count("pk")).values_list("outcome", "n"))


def run_worker(connection_id: int) -> None:
    import django

    django.setup()
    pull(connection_id, now=tomorrow())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reviews", type=int, default=10_000)
    parser.add_argument("--annex-rate-limit", type=float, default=100.0, help="Annex Cloud calls per second")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # the killed worker: a connection id
    add_database_argument(parser)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker)
        return
    port = free_port()
    sandbox = {"SANDBOX_ENABLED": "true", "SANDBOX_BASE_URL": f"http://127.0.0.1:{port}/sandbox"}
    # One gunicorn process, many threads: the simulators keep their state in memory.
    with bench_django(args.database_url, **sandbox) as env, gunicorn(env, port, "--workers", "1", "--threads", "16"):
        # The first batch moderated before today; the second "today", so the killed worker pulls it tomorrow.
        first = control(port, "bazaarvoice", {"reset": True, "generate": {"reviews": args.reviews, "days": 20}})
        connection_id = set_up(args.annex_rate_limit)
        started = time.perf_counter()
        counts = pull(connection_id)
        seconds = time.perf_counter() - started
        awarded_first = outcomes().get("awarded", 0)
        generated = {"reviews": 0, "today": args.reviews, "first": args.reviews}
        second = control(port, "bazaarvoice", {"generate": generated})
        control(port, "annex_cloud", {"lose_points_answers": 3})
        killed = kill_midway(env, connection_id, args.reviews + args.reviews // 2)
        expire_lease(connection_id)
        pull(connection_id, now=tomorrow())
        final = control(port, "bazaarvoice")
        result = outcomes()
    reviewers = first["kinds"].get("member", 0) + expected_members_today(args.reviews)
    balances = {int(balance): n for balance, n in final["reviewer_balances"].items()}
    double_awards = sum(n * (balance // POINTS - 1) for balance, n in balances.items() if balance > POINTS)
    print_result(
        reviews=args.reviews,
        pages=counts.get("pages", 0),
        awarded=awarded_first,
        not_member=counts.get("not_member", 0),
        double_awards=double_awards,
        missed=reviewers - balances.get(POINTS, 0) - sum(n for b, n in balances.items() if b > POINTS),
        lost=2 * args.reviews - sum(result.values()),
        pending=result.get("pending", 0),
        seconds=f"{seconds:.1f}",
        reviews_per_s=f"{args.reviews / seconds:.1f}",
        awards_per_s=f"{awarded_first / seconds:.1f}",
        annex_rate_limit=f"{args.annex_rate_limit:g}",
        second_batch=second["reviews"] - first["reviews"],
        worker_killed=int(killed),
        peak_rss_mb=f"{peak_rss_mb():.0f}",
    )


def expected_members_today(count: int) -> int:
    """Eligible reviewers among the second batch (numbered from `count`): the simulator's kinds, by number."""
    from integrations.bazaarvoice.sandbox import reviewer_kind

    return sum(reviewer_kind(n) == "member" for n in range(count, 2 * count))


if __name__ == "__main__":
    main()
