"""SessionM wallet scan: N members opted in to SMS, each with a SessionM profile whose wallet holds a new offer and
one that expires in 5 days, scanned by the offer job against the SessionM simulator (served by gunicorn) until
every wallet was read — with the worker running the first pass killed (SIGKILL) while it holds the scan with wallets
in flight — and then a whole second time; then the message job sends the offer messages through the Attentive
simulator. The killed run is a recorded job run of a task on a worker; what frees its hold is --recovery: `restart`
(the default: the worker restarts and closes its runs as interrupted, which releases their leases), `redelivery` (the
killed pool child's task comes back under the same task id and takes its own hold over) or `none` (nothing: the hold
runs out by itself). Meanwhile the job is run on a schedule (every --period seconds) until a run scans.

    .venv/bin/python bench/sessionm_offers.py --members 20000 [--rate 50] [--recovery restart|redelivery|none]
        [--lease-seconds 45] [--database-url postgres://...]

Prints one line and exits 1 when one of INVARIANTS breaks. Messages are counted from what the Attentive simulator
received (recipient and text), against the offers the bench gave each member: per message type, `*_uncertain` are
the (member, offer) messages expected and not received that the portal marks uncertain (it may have sent them; an
admin decides), `*_missed` the others expected and never received (expected - received - uncertain), `*_extra` those
received and not expected (another member, another offer), `duplicates` the extra copies of expected ones,
`other_msgs` texts of neither template. runs counts job runs, the killed one included; killed_at is how many wallets
the killed worker had recorded; seconds_to_resume runs from the kill to the first wallet read the simulator received
from the run that took over; blocked_runs the scheduled runs the killed run's hold turned away meanwhile
(released=1 when the recovery released the hold rather than waiting it out).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, add_database_argument, bench_django, free_port, peak_rss_mb, print_result
from bench.resume import resume_on_schedule
from bench.simulator_records import records, served

# The smoke run holds the scan for the product's lease (45 s): the restarted worker releases it at once.
SMOKE_ARGS = ["--members", "40", "--rate", "50"]
INVARIANTS = [
    "issued_missed == 0",
    "issued_extra == 0",
    "expiring_missed == 0",
    "expiring_extra == 0",
    "duplicates == 0",
    "other_msgs == 0",
    # The drill happened: the worker was killed holding the scan mid-pass…
    "worker_killed == 1",
    "interrupted_runs >= 1",
    # …and its hold was released with its run (no scheduled run turned away), or, with nothing to release it, turned
    # the next runs away and ran out by itself within a lease (and a schedule period)…
    "released == 0 or blocked_runs == 0",
    "released == 1 or blocked_runs >= 1",
    "seconds_to_resume <= lease_s + period_s + 10",
    # …so interrupted work resumes within a minute (issue 21).
    "seconds_to_resume <= 60",
]
ISSUED, EXPIRING = "New: {offer_name}", "{offer_name} ends {expires_on}"
WALLET = [
    {"name": "Large fries on us", "description": "Free large fries", "days": 30},
    {"name": "Snack box", "description": "A snack box", "days": 5},
]
# The offers each member is told about: both are new; only the snack box ends within the 10-day warning window.
ISSUED_OFFERS = {"Large fries on us", "Snack box"}
EXPIRING_OFFERS = {"Snack box"}
# One scan run in a process of its own, so that the bench can kill it like a worker: a recorded run of a task on a
# worker, as Celery runs it (task_base.run_as_job); its hold as long as the bench's.
TASK_ID, WORKER = "bench-killed-scan", "celery@bench-worker"
SCAN_IN_A_WORKER = (
    "from django.conf import settings; settings.SESSIONM_SCAN_LEASE_SECONDS = {lease}; "
    "from integrations.job_runs import run_job; from integrations.sessionm.offers import scan_offers; "
    f"run_job('sessionm.scan_offers', scan_offers, task_id={TASK_ID!r}, worker={WORKER!r})"
)
RECOVERIES = ("restart", "redelivery", "none")


def control(port: int, settings: dict[str, object] | None = None) -> dict[str, Any]:
    """Read (or change, with settings) the SessionM simulator's state."""
    data = json.dumps(settings).encode() if settings is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sandbox/sessionm/_control", data=data)
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - local only
        return json.loads(response.read())


def phone(n: int) -> str:
    return f"+1404{5550000 + n:07d}"


def hold_scans_for(seconds: float) -> None:
    """The scan's lease in this process (the product's default unless the bench shortens it)."""
    from django.conf import settings

    settings.SESSIONM_SCAN_LEASE_SECONDS = seconds


def seed(port: int, members: int, rate: float) -> Any:
    """The client, its SessionM connection and its Attentive one (members subscribed to TEXT) with the two offer
    templates, N members with profiles, and their users and wallets at the simulator. Returns the SessionM
    connection."""
    from integrations.attentive.models import SignUpSource
    from integrations.attentive.sandbox import API_KEY, LEGACY_TOKEN
    from integrations.models import Client, Connection
    from integrations.sessionm.models import SessionMProfile
    from integrations.sessionm.sandbox import DEMO_SECRETS, DEMO_SETTINGS
    from members.models import ChannelSubscription, Member, MessageTemplate

    client = Client.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    connection = Connection.objects.create(
        client=client,
        vendor="sessionm",
        environment="sandbox",
        status="active",
        secrets=DEMO_SECRETS,
        settings={**DEMO_SETTINGS, "rate_limit_per_second": rate},
    )
    SignUpSource.objects.create(client=client, source_id="132109", is_default=True)
    sms = Connection.objects.create(
        client=client,
        vendor="attentive",
        environment="sandbox",
        status="active",
        secrets={"api_key": API_KEY, "legacy_token": LEGACY_TOKEN},
    )
    for event_type, text in (("offer_issued", ISSUED), ("offer_expiring", EXPIRING)):
        MessageTemplate.objects.create(client=client, event_type=event_type, connection=sms, text=text)
    created = Member.objects.bulk_create(
        (Member(client=client, phone=phone(n), first_name=f"M{n}", opted_in=True) for n in range(members)),
        batch_size=2000,
    )
    ChannelSubscription.objects.bulk_create(
        (ChannelSubscription(member=m, vendor="attentive", channel="TEXT", state="subscribed") for m in created),
        batch_size=2000,
    )
    profiles = [
        SessionMProfile(client=client, member=m, external_id=f"portal-{m.pk}", user_id=f"u-{m.pk}") for m in created
    ]
    SessionMProfile.objects.bulk_create(profiles, batch_size=2000)
    control(port, {"reset": True, "auto_offers": WALLET})
    for start in range(0, len(profiles), 5000):
        control(port, {"seed_users": [[p.external_id, p.user_id] for p in profiles[start : start + 5000]]})
    return connection


@dataclass(frozen=True)
class Kill:
    at: float  # on the monotonic clock
    worker_killed: bool  # the worker was still running when it was killed
    interrupted: bool  # it held the scan, mid-pass, when it died (its hold was left behind)
    wallets: int  # the wallets it had recorded


def kill_in_flight(connection: Any, env: Mapping[str, str], members: int, lease: float) -> Kill:
    """A scan run in a worker process, killed (SIGKILL) once it has recorded a quarter of the wallets and still holds
    the scan (a run in flight)."""
    command = [sys.executable, "manage.py", "shell", "-c", SCAN_IN_A_WORKER.format(lease=lease)]
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sys.stderr)
    try:
        while worker.poll() is None and not (progress(connection) >= max(1, members // 4) and held(connection)):
            time.sleep(0.02)
    finally:
        alive = worker.poll() is None
        if alive:
            worker.send_signal(signal.SIGKILL)
        worker.wait()
    from integrations.sessionm.models import OfferScan

    scan = OfferScan.objects.get(connection=connection)
    return Kill(time.monotonic(), alive, alive and held(connection) and not scan.passes, progress(connection))


def held(connection: Any) -> bool:
    from integrations.sessionm.models import OfferScan

    return OfferScan.objects.filter(connection=connection, claimed_until__isnull=False).exists()


def progress(connection: Any) -> int:
    """The wallets the scan's current pass has recorded (its cursor, in members)."""
    from integrations.sessionm.models import OfferScan
    from members.models import Member

    scan = OfferScan.objects.filter(connection=connection).first()
    if scan is None or not scan.last_member_id:
        return 0
    return Member.objects.filter(client_id=connection.client_id, pk__lte=scan.last_member_id).count()


def scan_job_ran(task_id: str = "") -> bool:
    """One run of the job, as a worker runs a task of the schedule (a new task id each, unless given): whether it
    scanned (rather than finding the scan held)."""
    from integrations.job_runs import run_job
    from integrations.sessionm.offers import scan_offers

    task_id = task_id or f"bench-{uuid.uuid4().hex}"
    return run_job("sessionm.scan_offers", scan_offers, task_id=task_id, worker="celery@bench").counts != {"busy": 1}


def recover(recovery: str) -> Callable[[], bool]:
    """What follows the kill, and the scheduled attempt from then on. `restart`: the killed worker starts again and
    closes the runs it left (worker_ready), then the schedule's runs; `redelivery`: the task comes back under its id;
    `none`: the schedule's runs until the hold runs out."""
    from integrations.tasks import close_runs_of_the_previous_worker

    if recovery == "restart":
        close_runs_of_the_previous_worker(sender=SimpleNamespace(hostname=WORKER))
    if recovery == "redelivery":
        return lambda: scan_job_ran(TASK_ID)
    return scan_job_ran


def scan_until_passes(connection: Any, passes: int) -> int:
    """Run the job until every wallet was read `passes` times; returns the runs it took."""
    from integrations.sessionm.models import OfferScan

    runs = 0
    while OfferScan.objects.get(connection=connection).passes < passes:
        scan_job_ran()
        runs += 1
    return runs


def send_messages(connection: Any, patience: float) -> None:
    """The message job, run until none of the client's messages waits (each run sends for a bounded time)."""
    from members.messaging import dispatch_messages
    from members.models import OutboundMessage

    deadline = time.monotonic() + patience
    waiting = OutboundMessage.objects.filter(member__client_id=connection.client_id, status="pending")
    while True:
        dispatch_messages()
        if not waiting.exists() or time.monotonic() > deadline:
            return


def messages_received(port: int, members: int) -> dict[str, int]:
    """What the Attentive simulator received, per message type, against the offers each member was given."""
    created = {phone(n) for n in range(members)}
    expected = {
        "issued": {(to, name) for to in created for name in ISSUED_OFFERS},
        "expiring": {(to, name) for to in created for name in EXPIRING_OFFERS},
    }
    received: dict[str, Counter[tuple[str, str]]] = {"issued": Counter(), "expiring": Counter()}
    other = 0
    for message in records(port, "attentive")["messages"]:
        kind, name = message_type(message["body"])
        if kind is None:
            other += 1
        else:
            received[kind][(message["to"], name)] += 1
    figures = {"other_msgs": other, "duplicates": 0}
    for kind in ("issued", "expiring"):
        got, uncertain = received[kind], uncertain_messages(kind)
        figures[f"{kind}_msgs"] = sum(got.values())
        figures[f"{kind}_uncertain"] = len(expected[kind] - set(got) & uncertain)
        missed = expected[kind] - set(got) - uncertain
        figures[f"{kind}_missed"] = len(missed)
        explain_missed(kind, missed | (expected[kind] - set(got) & uncertain))
        figures[f"{kind}_extra"] = sum(n for key, n in got.items() if key not in expected[kind])
        figures["duplicates"] += sum(n - 1 for key, n in got.items() if key in expected[kind])
    return figures


def uncertain_messages(kind: str) -> set[tuple[str, str]]:
    """The (recipient, offer) messages the portal itself says may or may not have reached the vendor: counted apart
    from the missed ones (lost = expected - received - uncertain), as an admin sees them and may send them anyway."""
    from members.models import OutboundMessage

    rows = OutboundMessage.objects.filter(status="uncertain", event__event_type=f"offer_{kind}")
    return {(to, str(data.get("offer_name"))) for to, data in rows.values_list("to", "event__data")}


def explain_missed(kind: str, missed: set[tuple[str, str]], shown: int = 10) -> None:
    """What the portal says of a few messages the simulator never received (on stderr: the line stays one line)."""
    from members.models import LoyaltyEvent, OutboundMessage

    event_type = f"offer_{kind}"
    for to, name in sorted(missed)[:shown]:
        events = LoyaltyEvent.objects.filter(member__phone=to, event_type=event_type, data__offer_name=name)
        sent = OutboundMessage.objects.filter(event__in=events).values_list("status", "detail")
        said = f"{events.count()} event(s), messages {list(sent)}"
        print(f"{kind} {name!r} to {to} not received: {said}", file=sys.stderr)


def message_type(body: str) -> tuple[str | None, str]:
    """Which template a text came from, and the offer it names."""
    if body.startswith("New: "):
        return "issued", body.removeprefix("New: ")
    name, ends, _ = body.partition(" ends ")
    return ("expiring", name) if ends else (None, "")


def default_lease() -> float:
    from integrations.sessionm.offers import SCAN_LEASE

    return SCAN_LEASE.total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=50.0, help="the connection's rate limit (calls per second)")
    parser.add_argument("--lease-seconds", type=float, help="how long a scan's hold lasts (default: the product's)")
    parser.add_argument("--period", type=float, default=1.0, help="seconds between scheduled runs after the kill")
    parser.add_argument("--recovery", choices=RECOVERIES, default="restart", help="what follows the kill")
    add_database_argument(parser)
    args = parser.parse_args()
    port = free_port()
    sandbox = {"SANDBOX_ENABLED": "true", "SANDBOX_BASE_URL": f"http://127.0.0.1:{port}/sandbox"}
    with bench_django(args.database_url, **sandbox) as env:
        from integrations.models import JobRun, VendorCall

        lease = args.lease_seconds or default_lease()
        hold_scans_for(lease)
        # One process, many threads: the simulators keep their state (and records) in memory.
        with served(env, port, threads=8):
            connection = seed(port, args.members, args.rate)
            started = time.perf_counter()
            kill = kill_in_flight(connection, env, args.members, lease)
            resumed = resume_on_schedule(
                kill.at,
                attempt=recover(args.recovery),
                progress=lambda: control(port)["wallet_reads"],
                period=args.period,
                patience=lease + 120,
            )
            # The killed run, the ones its hold turned away, the one that took over, and those that finish the
            # first pass and read every wallet a second time.
            runs = 1 + resumed.blocked_runs + 1 + scan_until_passes(connection, 1)
            runs += scan_until_passes(connection, 2)
            seconds = time.perf_counter() - started
            state = control(port)
            send_messages(connection, patience=120 + args.members / 10)
            messages = messages_received(port, args.members)
        calls = VendorCall.objects.filter(connection=connection).count()
        closed = JobRun.objects.filter(task_id=TASK_ID, outcome=JobRun.Outcome.INTERRUPTED).count()
    print_result(
        INVARIANTS,
        members=args.members,
        offers=state["offers"],
        **messages,
        calls=calls,
        runs=runs,
        killed_at=kill.wallets,
        worker_killed=int(kill.worker_killed),
        interrupted_runs=int(kill.interrupted),
        killed_run_closed=closed,
        recovery=args.recovery,
        released=int(args.recovery != "none"),
        blocked_runs=resumed.blocked_runs,
        lease_s=f"{lease:g}",
        period_s=f"{args.period:g}",
        seconds_to_resume=f"{resumed.seconds_to_resume:.1f}",
        seconds=f"{seconds:.1f}",
        members_per_s=f"{2 * args.members / seconds:.1f}",
        peak_rss_mb=f"{peak_rss_mb():.0f}",
    )


if __name__ == "__main__":
    main()
