"""Fault drill of the message job on a PostgreSQL and a Redis of its own (initdb and redis-server on free ports,
removed afterwards, so the machine's shared services are never stopped): two workers and two beats send N
loyalty SMS through the Attentive simulator while the drill kills a worker (SIGKILL), stops the broker, stops the
database, and the simulator loses every n-th answer after accepting the message.

    .venv/bin/python bench/fault_drill.py --messages 2000 --outage 20 --rate-limit 30

Prints one line: sent=… expected=… lost=0 duplicates=0 uncertain=… interrupted_runs_open=0 max_rate_over_limit=0
beats_active_max=1 … — `lost` counts messages neither sent nor shown as uncertain; `duplicates` SMS a phone got
twice; `uncertain` the messages whose answer was lost (never resent by themselves).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, bench_django, free_port, gunicorn, print_result, process

SMOKE_ARGS = ["--messages", "60", "--outage", "3", "--rate-limit", "30"]
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), Path("/usr/bin"))


# --- Private services ----------------------------------------------------------------------------------------------


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port, run as the `postgres` user (initdb refuses root)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="drill-pg-"))
        self.port = free_port()
        shutil.chown(self.dir, "postgres")
        self.run(str(PG_BIN / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres")

    def run(self, *command: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_postgres, *command], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.dir / "data"),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    @property
    def server_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def remove(self) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"),
                        "-m", "immediate", "stop"], capture_output=True)  # fmt: skip
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.server: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(10)
            self.server = None


@contextmanager
def private_services() -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    postgres, redis = PrivatePostgres(), PrivateRedis()
    try:
        postgres.start()
        redis.start()
        yield postgres, redis
    finally:
        redis.stop()
        postgres.remove()


# --- The drill -----------------------------------------------------------------------------------------------------


def simulator(port: int, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(settings).encode() if settings is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sandbox/attentive/_control", data=data)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local only
        return json.loads(response.read())


def seed(messages: int, rate_limit: float) -> None:
    """A client with an active sandbox Attentive connection, N subscribers with one loyalty event each, and the
    message job every 2 seconds. The portal code this bench uses is imported here and in `results` only."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from integrations.attentive.sandbox import API_KEY, LEGACY_TOKEN
    from integrations.models import Client, Connection, SignUpSource
    from members.models import ChannelSubscription, LoyaltyEvent, Member, MessageTemplate

    client = Client.objects.create(name="Drill", slug="drill")
    SignUpSource.objects.create(client=client, source_id="132109", is_default=True)
    connection = Connection.objects.create(
        client=client, vendor="attentive", environment="sandbox", status="active",
        secrets={"api_key": API_KEY, "legacy_token": LEGACY_TOKEN}, settings={"rate_limit_per_second": rate_limit},
    )  # fmt: skip
    MessageTemplate.objects.create(
        client=client, event_type="points_earned", connection=connection, text="Hi {first_name}"
    )
    members = Member.objects.bulk_create(
        Member(client=client, phone=f"+1404{5550000 + n:07d}", first_name=f"M{n}") for n in range(messages)
    )
    ChannelSubscription.objects.bulk_create(
        ChannelSubscription(member=m, vendor="attentive", channel="TEXT", state="subscribed") for m in members
    )
    LoyaltyEvent.objects.bulk_create(
        LoyaltyEvent(client=client, member=m, external_id=f"e{m.pk}", event_type="points_earned") for m in members
    )
    every_two, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(task="members.dispatch_loyalty_messages").update(interval=every_two, crontab=None)


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "portal", *args]


def worker_command(name: str) -> list[str]:
    queues = "celery,inbound,messages,sync,bulk"
    return celery(
        "worker", "-Q", queues, "-c", "2", "-n", name, "-l", "WARNING", "--without-gossip", "--without-mingle"
    )


def settled() -> bool:
    from members.models import OutboundMessage

    unsettled = OutboundMessage.objects.filter(status__in=["pending", "claimed", "attempting"])
    return OutboundMessage.objects.exists() and not unsettled.exists()


def wait_settled(timeout: float) -> None:
    from django.db import connections

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if settled():
                return
        except Exception:  # the drill stopped the database: wait for it
            connections.close_all()
        time.sleep(1)


def beats_active_max(scratch: Path) -> int:
    """The most beats that considered themselves active at the same moment, from their logs: each logs when it
    becomes active and when it stands by (portal/beat.py)."""
    events: list[tuple[str, str, bool]] = []
    for log in scratch.glob("beat-*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if "is now active" in line:
                events.append((line[1:24], log.name, True))
            elif "is now a standby" in line or "standing by" in line:
                events.append((line[1:24], log.name, False))
    active: dict[str, bool] = {}
    most = 0
    for _, name, is_active in sorted(events, key=lambda event: (event[0], event[2])):  # stand-bys first
        active[name] = is_active
        most = max(most, sum(active.values()))
    return most


def results(port: int, rate_limit: float, scratch: Path) -> dict[str, Any]:
    from django.db.models import Count

    from integrations.models import JobRun
    from members.models import OutboundMessage

    by_status = dict(OutboundMessage.objects.values_list("status").annotate(n=Count("pk")))
    state = simulator(port)
    sent, uncertain = by_status.get("sent", 0), by_status.get("uncertain", 0)
    return {
        "sent": sent,
        "uncertain": uncertain,
        "failed": by_status.get("failed", 0),
        "lost": sum(by_status.values()) - sent - uncertain,
        "duplicates": sum(n - 1 for n in state["messages_by_phone"].values()),
        "interrupted_runs_open": JobRun.objects.filter(outcome=JobRun.Outcome.RUNNING).count(),
        "interrupted_runs": JobRun.objects.filter(outcome=JobRun.Outcome.INTERRUPTED).count(),
        "max_rate_over_limit": max(0, state["busiest_second"] - int(rate_limit)),
        "beats_active_max": beats_active_max(scratch),
    }


@contextmanager
def beat(env: dict[str, str], name: str) -> Iterator[subprocess.Popen[bytes]]:
    """A beat whose log is kept (beats_active_max reads it)."""
    scratch = Path(env["DRILL_DIR"])
    with (scratch / f"beat-{name}.log").open("wb") as log:
        command = celery("beat", "-l", "WARNING", "-s", str(scratch / name))
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield child
        finally:
            child.terminate()
            child.wait(20)


def drill(
    args: argparse.Namespace, env: dict[str, str], port: int, services: tuple[PrivatePostgres, PrivateRedis]
) -> None:
    """The faults, one after the other, while the job runs every 2 seconds on two workers with two beats."""
    postgres, redis = services
    with (
        process(worker_command("drill-a@%h"), env) as worker_a,
        process(worker_command("drill-b@%h"), env),
        beat(env, "b1"),
        beat(env, "b2"),
    ):
        time.sleep(6)
        worker_a.send_signal(signal.SIGKILL)  # mid-run: its claimed messages return, its attempts become uncertain
        time.sleep(2)
        with process(worker_command("drill-a@%h"), env):
            redis.stop()
            time.sleep(args.outage)
            redis.start()
            time.sleep(5)
            postgres.stop()
            time.sleep(args.outage)
            postgres.start()
            simulator(port, {"lose_answer_every": 0})
            wait_settled(timeout=max(300.0, args.messages / max(1.0, args.rate_limit) * 3))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--outage", type=float, default=20.0, help="seconds the broker, then the database, are down")
    parser.add_argument("--rate-limit", type=float, default=30.0, help="the connection's calls per second")
    parser.add_argument("--lose-answer-every", type=int, default=50)
    args = parser.parse_args()
    started = time.monotonic()
    with private_services() as (postgres, redis), tempfile.TemporaryDirectory(prefix="drill-") as scratch:
        web = free_port()
        env = {
            "SANDBOX_ENABLED": "true",
            "SANDBOX_BASE_URL": f"http://127.0.0.1:{web}/sandbox",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis.port}/0",
            "CACHE_URL": f"rediscache://127.0.0.1:{redis.port}/1",
            "MESSAGE_RUN_SECONDS": "20",
            "MESSAGE_ATTEMPT_LEASE_SECONDS": "10",
            "BEAT_LEASE_SECONDS": "10",
            "DRILL_DIR": scratch,
        }
        with bench_django(postgres.server_url, **env) as full_env:
            seed(args.messages, args.rate_limit)
            with gunicorn(full_env, web, "--threads", "32"):
                simulator(web, {"reset": True, "latency_ms": 20, "lose_answer_every": args.lose_answer_every})
                drill(args, full_env, web, (postgres, redis))
                figures = results(web, args.rate_limit, Path(scratch))
    print_result(
        **figures, expected=args.messages, outage_s=f"{args.outage:g}", seconds=f"{time.monotonic() - started:.0f}"
    )


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
