"""Bazaarvoice reviews into Annex Cloud points: N approved reviews pulled from the Bazaarvoice simulator and their
reviewers rewarded through the Annex Cloud simulator (both served by gunicorn), timed; then N more, pulled by a
worker process that is killed (SIGKILL) while it holds the pull and is rewarding reviewers, with the first Annex
Cloud answers lost after the points were applied. Nothing releases the killed run's hold: the pull is attempted on a
schedule (every --period seconds) until the hold runs out and a run takes over.

    .venv/bin/python bench/review_points.py --reviews 10000 [--annex-rate-limit 100] [--database-url postgres://...]

Prints one line and exits 1 when one of INVARIANTS breaks. Awards are counted from the Annex Cloud simulator's own
record of the points it applied (by customId, and each reviewer's balance), against the reviews the bench created:
`eligible` reviews by loyalty members; `credited` those Annex Cloud credited; `uncertain` those not credited that the
portal still holds pending; `lost = eligible - credited - uncertain`; `missed` reviews the portal marks awarded
whose credit Annex Cloud never received; `extra` credits for reviews that earn none; `double_awards` points applied
more than once to a reviewer (each reviewer wrote one review). `seconds_to_resume` runs from the kill to the first
call the Bazaarvoice simulator received from the run that took over; `blocked_runs` are the attempts the killed
run's hold turned away.
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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, add_database_argument, bench_django, free_port, peak_rss_mb, print_result
from bench.resume import resume_on_schedule
from bench.simulator_records import records, served

# Portal modules are imported inside the functions below: Django is set up (bench_django) only once the bench runs.
# The smoke run holds the pull for a few seconds only: a killed run then blocks it that long.
SMOKE_ARGS = ["--reviews", "60", "--lease-seconds", "8"]
INVARIANTS = [
    "lost == 0",
    "missed == 0",
    "extra == 0",
    "double_awards == 0",
    "uncertain == 0",
    # The drills happened: answers were lost, and the worker was killed holding the pull with work in flight…
    "lost_answers >= 1",
    "worker_killed == 1",
    "interrupted_runs >= 1",
    # …whose hold turned the next attempts away, and ran out by itself within a lease (and a schedule period).
    "blocked_runs >= 1",
    "seconds_to_resume <= lease_s + period_s + 10",
]
POINTS = 50
LOST_ANSWERS = 3
FIRST_REVIEW_ID = 46_000_000  # the simulator's review ids: this plus the review's number


def control(port: int, vendor: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read (or change, with settings) a simulator's state."""
    data = json.dumps(settings or {}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sandbox/{vendor}/_control", data=data)
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - local only
        return json.loads(response.read())


def hold_pulls_for(seconds: float) -> None:
    """The pull's lease in this process (the product's default unless the bench shortens it)."""
    from django.conf import settings

    settings.BAZAARVOICE_PULL_LEASE_SECONDS = seconds


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


def tomorrow() -> datetime:
    """The killed worker's and the later runs' clock: a day on, so that the second batch ("today") is due."""
    return datetime.now(UTC) + timedelta(days=1)


def recorded_reviews() -> int:
    from integrations.bazaarvoice.models import Review

    return Review.objects.count()


def pull_held(connection_id: int) -> bool:
    from integrations.bazaarvoice.models import PullState

    return PullState.objects.filter(connection_id=connection_id, lease_until__isnull=False).exists()


@dataclass(frozen=True)
class Kill:
    at: float  # on the monotonic clock
    worker_killed: bool  # the worker was still running when it was killed
    interrupted: bool  # it held the pull, mid-run, when it died (its hold was left behind)


def kill_in_flight(env: Mapping[str, str], connection_id: int, target: int, lease: float) -> Kill:
    """A worker pulls "tomorrow"; once it has recorded `target` reviews and still holds the pull (a run in flight),
    it is killed with SIGKILL."""
    command = [sys.executable, str(Path(__file__)), "--worker", str(connection_id), "--lease-seconds", str(lease)]
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sys.stderr)
    try:
        while worker.poll() is None and not (recorded_reviews() >= target and pull_held(connection_id)):
            time.sleep(0.02)
    finally:
        alive = worker.poll() is None
        if alive:
            os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    return Kill(time.monotonic(), alive, alive and pull_held(connection_id))


def run_worker(connection_id: int, lease: float) -> None:
    import django

    django.setup()
    hold_pulls_for(lease)
    pull(connection_id, now=tomorrow())


@dataclass(frozen=True)
class Awards:
    """Annex Cloud's record of the reviews' points, against the reviews the bench created."""

    eligible: int
    credited: int
    uncertain: int
    lost: int
    missed: int
    extra: int
    double_awards: int
    lost_answers: int


def awards_received(port: int, reviews_created: int) -> Awards:
    from integrations.bazaarvoice.models import Review
    from integrations.bazaarvoice.sandbox import reviewer_kind

    annex = records(port, "annex_cloud")
    eligible = {n for n in range(reviews_created) if reviewer_kind(n) == "member"}
    expected = {award_key(n) for n in eligible}
    credited = {key for key, answer in annex["points"].items() if answer["activity"] == "credit"}
    pending = set(Review.objects.filter(outcome=Review.Outcome.PENDING).values_list("review_id", flat=True))
    uncertain = {award_key(n) for n in eligible if str(FIRST_REVIEW_ID + n) in pending} - credited
    awarded = {f"bv-review-{r}" for r in Review.objects.filter(outcome="awarded").values_list("review_id", flat=True)}
    balances = annex["balances"]
    return Awards(
        eligible=len(expected),
        credited=len(expected & credited),
        uncertain=len(uncertain),
        lost=len(expected - credited - uncertain),
        missed=len(awarded - credited),
        extra=len(credited - expected),
        double_awards=sum(max(0, balances.get(reviewer(n), 0) // POINTS - 1) for n in eligible),
        lost_answers=LOST_ANSWERS - annex["lose_points_answers"],
    )


def award_key(number: int) -> str:
    return f"bv-review-{FIRST_REVIEW_ID + number}"


def reviewer(number: int) -> str:
    return f"reviewer{number}@example.com"


def outcomes() -> dict[str, int]:
    from django.db.models import Count

    from integrations.bazaarvoice.models import Review

    return dict(Review.objects.values_list("outcome").annotate(n=Count("pk")).values_list("outcome", "n"))


def default_lease() -> float:
    from integrations.bazaarvoice.flows import LEASE

    return LEASE.total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reviews", type=int, default=10_000)
    parser.add_argument("--annex-rate-limit", type=float, default=100.0, help="Annex Cloud calls per second")
    parser.add_argument("--lease-seconds", type=float, help="how long a pull's hold lasts (default: the product's)")
    parser.add_argument("--period", type=float, default=1.0, help="seconds between scheduled attempts after the kill")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # the killed worker: a connection id
    add_database_argument(parser)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.lease_seconds)
        return
    port = free_port()
    sandbox = {"SANDBOX_ENABLED": "true", "SANDBOX_BASE_URL": f"http://127.0.0.1:{port}/sandbox"}
    # One gunicorn process, many threads: the simulators keep their state (and records) in memory.
    with bench_django(args.database_url, **sandbox) as env, served(env, port, threads=16):
        lease = args.lease_seconds or default_lease()
        hold_pulls_for(lease)
        # The first batch moderated before today; the second "today", so the killed worker pulls it tomorrow.
        control(port, "bazaarvoice", {"reset": True, "generate": {"reviews": args.reviews, "days": 20}})
        connection_id = set_up(args.annex_rate_limit)
        started = time.perf_counter()
        counts = pull(connection_id)
        seconds = time.perf_counter() - started
        awarded_first = outcomes().get("awarded", 0)
        control(port, "bazaarvoice", {"generate": {"reviews": 0, "today": args.reviews, "first": args.reviews}})
        control(port, "annex_cloud", {"lose_points_answers": LOST_ANSWERS})
        kill = kill_in_flight(env, connection_id, args.reviews + max(1, args.reviews // 2), lease)
        resumed = resume_on_schedule(
            kill.at,
            attempt=lambda: pull(connection_id, now=tomorrow()) != {"skipped": 1},
            progress=lambda: control(port, "bazaarvoice")["calls"],
            period=args.period,
            patience=lease + 120,
        )
        awards = awards_received(port, 2 * args.reviews)
    print_result(
        INVARIANTS,
        reviews=args.reviews,
        pages=counts.get("pages", 0),
        awarded=awarded_first,
        not_member=counts.get("not_member", 0),
        eligible=awards.eligible,
        credited=awards.credited,
        uncertain=awards.uncertain,
        lost=awards.lost,
        missed=awards.missed,
        extra=awards.extra,
        double_awards=awards.double_awards,
        lost_answers=awards.lost_answers,
        seconds=f"{seconds:.1f}",
        reviews_per_s=f"{args.reviews / seconds:.1f}",
        awards_per_s=f"{awarded_first / seconds:.1f}",
        annex_rate_limit=f"{args.annex_rate_limit:g}",
        worker_killed=int(kill.worker_killed),
        interrupted_runs=int(kill.interrupted),
        blocked_runs=resumed.blocked_runs,
        lease_s=f"{lease:g}",
        period_s=f"{args.period:g}",
        seconds_to_resume=f"{resumed.seconds_to_resume:.1f}",
        peak_rss_mb=f"{peak_rss_mb():.0f}",
    )


if __name__ == "__main__":
    main()
