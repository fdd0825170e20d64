"""Bazaarvoice reviews into Annex Cloud points: N approved reviews pulled from the Bazaarvoice simulator and their
reviewers rewarded through the Annex Cloud simulator (both served by gunicorn), timed; then N more, plus --late
reviews that appear behind the cursor after the first pull (indexed late: a LastModeratedTime before it, within the
look-back), pulled by a worker process that is killed (SIGKILL) while it holds the pull and is rewarding reviewers,
with the first Annex Cloud answers lost after the points were applied. The killed run is a recorded job run of a
task on a worker; what frees its hold is --recovery: `restart` (the default: the worker restarts and closes its runs as
interrupted, which releases their leases), `redelivery` (the killed pool child's task comes back under the same task
id and takes its own hold over) or `none` (the hold runs out by itself). Meanwhile the pull is attempted on a schedule
(every --period seconds) until a run pulls. The client is
in --time-zone; before each pull, reviews moderated "today" by the client's reading or UTC's are added, and none
may be awarded.

    .venv/bin/python bench/review_points.py --reviews 10000 --late 200 --time-zone Pacific/Auckland \
        [--annex-rate-limit 100] [--recovery restart|redelivery|none] [--database-url postgres://...]

Prints one line and exits 1 when one of INVARIANTS breaks. Awards are counted from the Annex Cloud simulator's own
record of the points it applied (by customId, and each reviewer's balance), against the reviews the bench created
(their moderation times read from the Bazaarvoice simulator's record): `eligible` reviews by loyalty members that are
not today's; `credited` those Annex Cloud credited; `missed` eligible ones it never credited; `uncertain` those not
credited that the portal still holds pending; `lost = eligible - credited - uncertain`; `late_eligible` and
`late_credited` the same for the late reviews; `unreceived` reviews the portal marks awarded whose credit Annex Cloud
never received; `extra` credits for reviews that earn none; `double_awards` points applied more than once to a
reviewer (each reviewer wrote one review); `awarded_today` reviews credited although moderated at or after the
start of today by either reading (the client's midnight or UTC's, whichever is earlier) when they were pulled, counted
after the first pull and after the last. `seconds_to_resume` runs from the kill to the first call the Bazaarvoice
simulator received from the run that took over; `blocked_runs` are the attempts the killed run's hold turned away
(released=1 when the recovery released the hold rather than waiting it out).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, add_database_argument, bench_django, free_port, peak_rss_mb, print_result
from bench.resume import resume_on_schedule
from bench.simulator_records import bench_client, control, records, sandbox_env, served, simulated_connection

# Portal modules are imported inside the functions below: Django is set up (bench_django) only once the bench runs.
# The smoke run holds the pull for the product's lease (45 s): the restarted worker releases it at once.
SMOKE_ARGS = ["--reviews", "60", "--late", "6", "--time-zone", "Pacific/Auckland"]
INVARIANTS = [
    "lost == 0",
    "missed == 0",
    "unreceived == 0",
    "extra == 0",
    "double_awards == 0",
    "awarded_today == 0",
    "uncertain == 0",
    # Late reviews were added behind the cursor, and each one a member wrote was found and credited.
    "late_credited == late_eligible",
    "late == 0 or late_eligible >= 1",
    # Today's reviews (by either reading) were there to be refused, at both pulls.
    "today_reviews >= 2",
    # The drills happened: answers were lost, and the worker was killed holding the pull with work in flight…
    "lost_answers >= 1",
    "worker_killed == 1",
    "interrupted_runs >= 1",
    # …whose hold was released with its run (no attempt turned away), or, with nothing to release it, turned the next
    # attempts away and ran out by itself within a lease (and a schedule period)…
    "released == 0 or blocked_runs == 0",
    "released == 1 or blocked_runs >= 1",
    "seconds_to_resume <= lease_s + period_s + 10",
    # …so interrupted work resumes within a minute (issue 21).
    "seconds_to_resume <= 60",
]
# The killed worker's run, as Celery runs a task (task_base.run_as_job): a recorded run under a task id, on a worker.
TASK_ID, WORKER = "bench-killed-pull", "celery@bench-worker"
RECOVERIES = ("restart", "redelivery", "none")
POINTS = 50
LOST_ANSWERS = 3
FIRST_REVIEW_ID = 46_000_000  # the simulator's review ids: this plus the review's number


def hold_pulls_for(seconds: float) -> None:
    """The pull's lease in this process (the product's default unless the bench shortens it)."""
    from django.conf import settings

    settings.BAZAARVOICE_PULL_LEASE_SECONDS = seconds


def set_up(annex_rate_limit: float, time_zone: str) -> int:
    """A client (in `time_zone`) with Annex Cloud and Bazaarvoice connections on the simulators; returns the
    Bazaarvoice one's id."""
    from integrations.annexcloud import sandbox as annex_cloud_simulator
    from integrations.bazaarvoice import sandbox as bazaarvoice_simulator

    client = bench_client(time_zone=time_zone)
    annex_cloud_secrets, bazaarvoice_secrets = annex_cloud_simulator.DEMO_SECRETS, bazaarvoice_simulator.DEMO_SECRETS
    simulated_connection(client, "annex_cloud", annex_cloud_secrets, rate_limit_per_second=annex_rate_limit)
    bazaarvoice = simulated_connection(
        client, "bazaarvoice", bazaarvoice_secrets, rate_limit_per_second=50, points_per_review=POINTS
    )
    return bazaarvoice.pk


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
    pulled_as_a_task(connection_id, TASK_ID, WORKER)


def pulled_as_a_task(connection_id: int, task_id: str = "", worker: str = "celery@bench") -> bool:
    """One pull "tomorrow", run as a worker runs a task (a new task id each, unless given): whether it pulled (rather
    than finding the pull held)."""
    from integrations.job_runs import run_job

    task_id = task_id or f"bench-{uuid.uuid4().hex}"

    def work() -> dict[str, int]:
        return pull(connection_id, now=tomorrow())

    run = run_job("bazaarvoice.pull_reviews", work, task_id=task_id, worker=worker)
    return run.counts != {"skipped": 1}


def recover(recovery: str, connection_id: int) -> Callable[[], bool]:
    """What follows the kill, and the scheduled attempt from then on. `restart`: the killed worker starts again and
    closes the runs it left (worker_ready), then the schedule's runs; `redelivery`: the task comes back under its id;
    `none`: the schedule's runs until the hold runs out."""
    from integrations.tasks import close_runs_of_the_previous_worker

    if recovery == "restart":
        close_runs_of_the_previous_worker(sender=SimpleNamespace(hostname=WORKER))
    if recovery == "redelivery":
        return lambda: pulled_as_a_task(connection_id, TASK_ID)
    return lambda: pulled_as_a_task(connection_id)


# --- Today, by both readings (computed here from the zone, not by the portal) -------------------------------------


def today_begins(zone: str, clock: datetime) -> datetime:
    """The start of "today" by either reading at `clock`: the earlier of the client's midnight and UTC midnight."""
    local = datetime.combine(clock.astimezone(ZoneInfo(zone)).date(), time_of_day.min, tzinfo=ZoneInfo(zone))
    utc = datetime.combine(clock.astimezone(UTC).date(), time_of_day.min, tzinfo=UTC)
    return min(local.astimezone(UTC), utc)


def add_reviews(port: int, count: int, first: int, since: datetime, until: datetime) -> range:
    """`count` approved reviews moderated in [since, until), numbered from `first`; returns their numbers."""
    span = {"moderated_from": since.isoformat(), "moderated_until": until.isoformat()}
    control(port, "bazaarvoice", {"generate": {"reviews": count, "first": first, **span}})
    return range(first, first + count)


def add_todays_reviews(port: int, count: int, first: int, zone: str, clock: datetime) -> range:
    """Reviews moderated today by one reading or the other at `clock` (from the earlier midnight to `clock`)."""
    return add_reviews(port, count, first, today_begins(zone, clock), clock)


def moderation_times(port: int) -> dict[int, datetime]:
    """The Bazaarvoice simulator's record: each approved review's moderation time, by the bench's review number."""
    reviews = records(port, "bazaarvoice")["reviews"]
    return {
        int(review_id) - FIRST_REVIEW_ID: datetime.fromisoformat(review["moderated"])
        for review_id, review in reviews.items()
        if review["status"] == "APPROVED"
    }


def credited_keys(port: int) -> set[str]:
    annex = records(port, "annex_cloud")
    return {key for key, answer in annex["points"].items() if answer["activity"] == "credit"}


def credited_today(port: int, zone: str, clock: datetime) -> int:
    """Reviews Annex Cloud credited although moderated today (either reading) at `clock`: none may be."""
    begins, credited = today_begins(zone, clock), credited_keys(port)
    return sum(1 for n, moment in moderation_times(port).items() if moment >= begins and award_key(n) in credited)


# --- Awards --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Awards:
    """Annex Cloud's record of the reviews' points, against the reviews the bench created."""

    eligible: int
    credited: int
    uncertain: int
    lost: int
    missed: int
    unreceived: int
    extra: int
    double_awards: int
    lost_answers: int
    late_eligible: int
    late_credited: int


def awards_received(port: int, awardable: set[int], late: set[int]) -> Awards:
    """Annex Cloud's record against the reviews that earn points (`awardable`: every review number not moderated
    "today" at the last pull; members' only count)."""
    from integrations.bazaarvoice.models import Review
    from integrations.bazaarvoice.sandbox import reviewer_kind

    annex = records(port, "annex_cloud")
    eligible = {n for n in awardable if reviewer_kind(n) == "member"}
    expected = {award_key(n) for n in eligible}
    credited = {key for key, answer in annex["points"].items() if answer["activity"] == "credit"}
    pending = set(Review.objects.filter(outcome=Review.Outcome.PENDING).values_list("review_id", flat=True))
    uncertain = {award_key(n) for n in eligible if str(FIRST_REVIEW_ID + n) in pending} - credited
    awarded = {f"bv-review-{r}" for r in Review.objects.filter(outcome="awarded").values_list("review_id", flat=True)}
    balances = annex["balances"]
    late_expected = {award_key(n) for n in eligible & late}
    return Awards(
        eligible=len(expected),
        credited=len(expected & credited),
        uncertain=len(uncertain),
        lost=len(expected - credited - uncertain),
        missed=len(expected - credited),
        unreceived=len(awarded - credited),
        extra=len(credited - expected),
        double_awards=sum(max(0, balances.get(reviewer(n), 0) // POINTS - 1) for n in eligible),
        lost_answers=LOST_ANSWERS - annex["lose_points_answers"],
        late_eligible=len(late_expected),
        late_credited=len(late_expected & credited),
    )


def cursor_of(connection_id: int) -> datetime:
    from integrations.bazaarvoice.models import PullState

    cursor = PullState.objects.get(connection_id=connection_id).cursor
    assert cursor is not None, "the first pull left no cursor"
    return cursor


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
    parser.add_argument(
        "--late", type=int, default=0, help="reviews that appear behind the cursor after the first pull"
    )
    parser.add_argument("--time-zone", default="UTC", help="the client's time zone")
    parser.add_argument("--annex-rate-limit", type=float, default=100.0, help="Annex Cloud calls per second")
    parser.add_argument("--lease-seconds", type=float, help="how long a pull's hold lasts (default: the product's)")
    parser.add_argument("--period", type=float, default=1.0, help="seconds between scheduled attempts after the kill")
    parser.add_argument("--recovery", choices=RECOVERIES, default="restart", help="what follows the kill")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # the killed worker: a connection id
    add_database_argument(parser)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.lease_seconds)
        return
    port = free_port()
    sandbox = sandbox_env(port)
    reviews, zone = args.reviews, args.time_zone
    todays = max(1, reviews // 20)  # reviews moderated "today" by some reading, before each pull
    # Numbering: the first batch, the second ("today" in UTC, pulled tomorrow), today's at the first pull, the late
    # ones, today's at the last pulls.
    first_today, first_late = 2 * reviews, 2 * reviews + todays
    last_today = first_late + args.late
    # One gunicorn process, many threads: the simulators keep their state (and records) in memory.
    with bench_django(args.database_url, **sandbox) as env, served(env, port, threads=16):
        lease = args.lease_seconds or default_lease()
        hold_pulls_for(lease)
        # The first batch moderated before today; the second "today", so the killed worker pulls it tomorrow.
        control(port, "bazaarvoice", {"reset": True, "generate": {"reviews": reviews, "days": 20}})
        add_todays_reviews(port, todays, first_today, zone, datetime.now(UTC))
        connection_id = set_up(args.annex_rate_limit, zone)
        started = time.perf_counter()
        counts = pull(connection_id)
        seconds = time.perf_counter() - started
        today_first = credited_today(port, zone, datetime.now(UTC))
        awarded_first = outcomes().get("awarded", 0)
        control(port, "bazaarvoice", {"generate": {"reviews": 0, "today": reviews, "first": reviews}})
        # Indexed late: moderated within the look-back behind the cursor, visible only now.
        cursor = cursor_of(connection_id)
        late = set(add_reviews(port, args.late, first_late, cursor - timedelta(hours=71), cursor))
        add_todays_reviews(port, todays, last_today, zone, tomorrow())
        control(port, "annex_cloud", {"lose_points_answers": LOST_ANSWERS})
        kill = kill_in_flight(env, connection_id, reviews + max(1, reviews // 2), lease)
        resumed = resume_on_schedule(
            kill.at,
            attempt=recover(args.recovery, connection_id),
            progress=lambda: control(port, "bazaarvoice")["calls"],
            period=args.period,
            patience=lease + 120,
        )
        last_clock = tomorrow()
        today_last = credited_today(port, zone, last_clock)
        begins = today_begins(zone, last_clock)
        awardable = {n for n, moment in moderation_times(port).items() if moment < begins}
        awards = awards_received(port, awardable, late)
    print_result(
        INVARIANTS,
        reviews=reviews,
        late=args.late,
        time_zone=zone,
        pages=counts.get("pages", 0),
        awarded=awarded_first,
        not_member=counts.get("not_member", 0),
        eligible=awards.eligible,
        credited=awards.credited,
        uncertain=awards.uncertain,
        lost=awards.lost,
        missed=awards.missed,
        late_eligible=awards.late_eligible,
        late_credited=awards.late_credited,
        unreceived=awards.unreceived,
        extra=awards.extra,
        double_awards=awards.double_awards,
        today_reviews=2 * todays,
        awarded_today=today_first + today_last,
        lost_answers=awards.lost_answers,
        seconds=f"{seconds:.1f}",
        reviews_per_s=f"{reviews / seconds:.1f}",
        awards_per_s=f"{awarded_first / seconds:.1f}",
        annex_rate_limit=f"{args.annex_rate_limit:g}",
        worker_killed=int(kill.worker_killed),
        interrupted_runs=int(kill.interrupted),
        recovery=args.recovery,
        released=int(args.recovery != "none"),
        blocked_runs=resumed.blocked_runs,
        lease_s=f"{lease:g}",
        period_s=f"{args.period:g}",
        seconds_to_resume=f"{resumed.seconds_to_resume:.1f}",
        peak_rss_mb=f"{peak_rss_mb():.0f}",
    )


if __name__ == "__main__":
    main()
