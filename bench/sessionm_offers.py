"""SessionM wallet scan: N members opted in to SMS, each with a SessionM profile whose wallet holds a new offer and
one that expires in 5 days, scanned by the offer job against the SessionM simulator (served by gunicorn) until
every wallet was read — with the worker running the first pass killed midway — and then a whole second time; then
the message job plans the messages.

    .venv/bin/python bench/sessionm_offers.py --members 20000 [--rate 50] [--database-url postgres://...]

Prints one line: members=… offers=… issued_msgs=… expiring_msgs=… duplicates=… missed=… calls=… runs=… killed_at=…
seconds=… members_per_s=… peak_rss_mb=…  (duplicates and missed must be 0; runs counts job runs, the killed one
included; killed_at is how many wallets the killed worker had recorded)
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, add_database_argument, bench_django, free_port, gunicorn, peak_rss_mb, print_result

SMOKE_ARGS = ["--members", "40", "--rate", "200"]
WALLET = [
    {"name": "Large fries on us", "description": "Free large fries", "days": 30},
    {"name": "Snack box", "description": "A snack box", "days": 5},
]
# One scan run in a process of its own, so that the bench can kill it like a worker.
SCAN_IN_A_WORKER = "from integrations.sessionm.flows import scan_offers; scan_offers()"


def control(port: int, settings: dict[str, object] | None = None) -> dict[str, Any]:
    """Read (or change, with settings) the SessionM simulator's state."""
    data = json.dumps(settings).encode() if settings is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sandbox/sessionm/_control", data=data)
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - local only
        return json.loads(response.read())


def seed(port: int, members: int, rate: float) -> Any:
    """The client, its SessionM and SMS connections, the two offer templates, N members with profiles, and their
    users and wallets at the simulator. Returns the SessionM connection."""
    from integrations.models import Client, Connection
    from integrations.sessionm.models import SessionMProfile
    from integrations.sessionm.sandbox import DEMO_SECRETS, DEMO_SETTINGS
    from members.models import Member, MessageTemplate

    client = Client.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    connection = Connection.objects.create(
        client=client,
        vendor="sessionm",
        environment="sandbox",
        status="active",
        secrets=DEMO_SECRETS,
        settings={**DEMO_SETTINGS, "rate_limit_per_second": rate},
    )
    sms = Connection.objects.create(client=client, vendor="attentive", environment="sandbox", status="active")
    for event_type, text in (
        ("offer_issued", "New: {offer_name}"),
        ("offer_expiring", "{offer_name} ends {expires_on}"),
    ):
        MessageTemplate.objects.create(client=client, event_type=event_type, connection=sms, text=text)
    created = Member.objects.bulk_create(
        (
            Member(client=client, phone=f"+1404{5550000 + n:07d}", first_name=f"M{n}", opted_in=True)
            for n in range(members)
        ),
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


def kill_a_worker_midway(connection: Any, env: Mapping[str, str], members: int) -> int:
    """A scan run in a worker process, killed (SIGKILL) once it has recorded a quarter of the wallets; its lease is
    then expired, as the time it holds it would. Returns the wallets it had recorded when it was killed."""
    from integrations.sessionm.models import OfferScan

    command = [sys.executable, "manage.py", "shell", "-c", SCAN_IN_A_WORKER]
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sys.stderr)
    try:
        while worker.poll() is None:
            scan = OfferScan.objects.filter(connection=connection).first()
            if scan is not None and scan.last_member_id and progress(connection, scan) >= members // 4:
                break
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    scan = OfferScan.objects.get(connection=connection)
    OfferScan.objects.filter(pk=scan.pk).update(claimed_until=None)
    return members if scan.passes else progress(connection, scan)


def progress(connection: Any, scan: Any) -> int:
    from members.models import Member

    return Member.objects.filter(client_id=connection.client_id, pk__lte=scan.last_member_id).count()


def scan_until_a_pass_completes(connection: Any) -> int:
    """Run the job until every wallet was read once more; returns the runs it took."""
    from integrations.jobs import run_job
    from integrations.sessionm.flows import scan_offers
    from integrations.sessionm.models import OfferScan

    passes, runs = OfferScan.objects.get(connection=connection).passes, 0
    while OfferScan.objects.get(connection=connection).passes == passes:
        run_job("sessionm.scan_offers", scan_offers)
        runs += 1
    return runs


def messages_by_offer(connection: Any) -> tuple[int, int, int]:
    """The planned messages by type, and the duplicates: more than one message for a (member, offer, type)."""
    from collections import Counter

    from members.messaging import plan_messages
    from members.models import OutboundMessage

    plan_messages()
    keys = Counter(
        (m.member_id, m.event.data.get("offer_id"), m.event.event_type)
        for m in OutboundMessage.objects.filter(member__client_id=connection.client_id).select_related("event")
    )
    issued = sum(1 for key in keys if key[2] == "offer_issued")
    expiring = sum(1 for key in keys if key[2] == "offer_expiring")
    return issued, expiring, sum(n - 1 for n in keys.values())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=50.0, help="the connection's rate limit (calls per second)")
    add_database_argument(parser)
    args = parser.parse_args()
    port = free_port()
    sandbox = {"SANDBOX_ENABLED": "true", "SANDBOX_BASE_URL": f"http://127.0.0.1:{port}/sandbox"}
    with bench_django(args.database_url, **sandbox) as env:
        from integrations.models import VendorCall

        # One process, many threads: the simulator keeps its state in memory.
        with gunicorn(env, port, "--workers", "1", "--threads", "8"):
            connection = seed(port, args.members, args.rate)
            started = time.perf_counter()
            killed_at = kill_a_worker_midway(connection, env, args.members)
            runs = 1 + scan_until_a_pass_completes(connection)
            runs += scan_until_a_pass_completes(connection)
            seconds = time.perf_counter() - started
            state = control(port)
        issued, expiring, duplicates = messages_by_offer(connection)
        calls = VendorCall.objects.filter(connection=connection).count()
    expected_issued, expected_expiring = 2 * args.members, args.members
    print_result(
        members=args.members,
        offers=state["offers"],
        issued_msgs=issued,
        expiring_msgs=expiring,
        duplicates=duplicates,
        missed=(expected_issued - issued) + (expected_expiring - expiring),
        calls=calls,
        runs=runs,
        killed_at=killed_at,
        seconds=f"{seconds:.1f}",
        members_per_s=f"{2 * args.members / seconds:.1f}",
        peak_rss_mb=f"{peak_rss_mb():.0f}",
    )


if __name__ == "__main__":
    main()
