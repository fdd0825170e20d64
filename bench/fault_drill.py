"""Fault drill of the message job on a PostgreSQL and a Redis of its own (initdb and redis-server on free ports,
removed afterwards, so the machine's shared services are never stopped): two workers and two beats send N
loyalty SMS through the Attentive simulator while the drill kills a worker's pool child and then a worker's main
process (SIGKILL, each while messages are provably in flight), stops the broker, stops the database, and the
simulator loses the answer of every n-th message it accepts, for the whole run. Vibes keeps delivering callbacks
through both outages (and resends what was not accepted, as Vibes does); at the end both beats are stopped cleanly
and the drill times how long /healthz takes to say so.

    .venv/bin/python bench/fault_drill.py --messages 2000 --outage 20 --rate-limit 30

Everything is counted from records the portal does not write: what the simulator received and answered (its own
state and a recorder at its door, bench/drill_simulator.py), what each Celery process ran or scheduled
(bench/drill_celery.py), and the drill's own probes of the services it stopped; the portal's rows only say what the
portal believes (sent, uncertain), which is checked against them.

Prints one line — expected=… received=… missed=… extra=… duplicates=… uncertain=… lost=… sent_not_received=…
lost_answers=… unflagged_lost_answers=… interrupted_runs=… seconds_to_resume=… max_rate_over_limit=…
beats_active_max=… broker_down_s=… database_down_s=… callback_5xx_while_stored=… callbacks_2xx_not_stored=…
callbacks_5xx_other_than_503=… beat_stop_detected_s=… — and exits 1 when one of INVARIANTS breaks. `lost` counts
input messages the simulator never received that the portal does not show as uncertain either;
`max_rate_over_limit` the most calls a rate limiter of the portal let go within one second, over its rate
(`simulator_busiest_second`, printed beside it, counts arrivals, which a loaded machine bunches). `--no-kill` and
`--no-lost-answers` run the same drill without that fault, and must fail (the drill proves each fault happened).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, bench_django, free_port, print_result, process, wait_until_serving

SMOKE_ARGS = [
    "--messages", "150", "--rate-limit", "10", "--outage", "3", "--lose-answer-every", "20", "--run-seconds", "8",
    "--beat-silent", "10",
]  # fmt: skip
INVARIANTS = [
    # Nothing lost, nothing twice, nothing invented — counted at the simulator against the input.
    "lost == 0",
    "duplicates == 0",
    "extra == 0",
    "sent_not_received == 0",
    # Every answer the simulator lost leaves the message uncertain (never resent, never shown as failed or sent).
    "unflagged_lost_answers == 0",
    # ... and nothing else is uncertain without having reached the vendor but what the kills caught in flight.
    "uncertain_not_received <= in_flight_at_kills",
    # The rate limit held: no limiter let more calls go in any one second than its rate, and its record is whole.
    "max_rate_over_limit == 0",
    "calls_let_go >= received",
    "beats_active_max == 1",
    # The faults happened: runs were killed with messages in flight (a pool child and a main process), answers
    # were lost throughout, and each service was down for the outage while messages were still to be sent.
    "interrupted_runs >= 2",
    "killed_pool_child_runs >= 1",
    "killed_main_runs >= 1",
    "in_flight_at_kills >= 2",
    "lost_answers >= lost_answers_min",
    "broker_down_s >= outage_s",
    "database_down_s >= outage_s",
    "unsent_at_outages >= 1",
    # After each kill the simulator received messages again within a run's claim lease, and within a minute whatever
    # the options (issue 21).
    "seconds_to_resume <= run_seconds + 10",
    "seconds_to_resume <= 60",
    # Every message claimed at a kill reached the vendor in the end (the killed run's too, once its lease lapsed).
    "seconds_to_last_claim <= 120",
    # Vibes callbacks posted while Redis, then PostgreSQL, were down: a stored one is never answered 5xx, one answered
    # 2xx is always stored, one not stored is answered 503 with Retry-After and stored when the vendor resends it.
    "callbacks_in_redis_outage >= 1",
    "callbacks_in_database_outage >= 1",
    "callback_5xx_while_stored == 0",
    "callbacks_2xx_not_stored == 0",
    "callbacks_503_without_retry_after == 0",
    # Never a bare 5xx: while the database is down the answer is 503 with Retry-After, nothing else.
    "callbacks_5xx_other_than_503 == 0",
    "callbacks_never_stored == 0",
    # Both beats stopped cleanly (SIGTERM): /healthz said so within two silent intervals, and within 3 minutes whatever
    # the options (issue 21).
    "beat_stop_detected_s <= 2 * beat_silent_s",
    "beat_stop_detected_s <= 180",
]
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), Path("/usr/bin"))
DISPATCH = "members.dispatch_loyalty_messages"
# The simulator's answer when it accepted the message but lost the answer on purpose.
LOST_ANSWER = 504
POLL_SECONDS = 0.2
CALLBACK_SENDERS = 3
STARTED = time.monotonic()


def say(what: str) -> None:
    """Progress on stderr (stdout carries only the result line)."""
    print(f"drill +{time.monotonic() - STARTED:.1f} s: {what}", file=sys.stderr, flush=True)


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_for(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    """Poll until `condition()` returns something true, and return it; fail past the deadline."""
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up after {seconds:g} s waiting for {what}")
        time.sleep(POLL_SECONDS)
    return found


# --- Private services ----------------------------------------------------------------------------------------------


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port, run as the `postgres` user (initdb refuses root)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="drill-pg-"))
        self.port = free_port()
        shutil.chown(self.dir, "postgres")
        self.run(str(PG_BIN / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres")

    def run(self, *command: str, check: bool = True) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_postgres, *command], check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def pg_ctl(self, *args: str, check: bool = True) -> None:
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), *args, check=check)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.pg_ctl("-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "stop")

    @property
    def server_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def remove(self) -> None:
        self.pg_ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.server: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), 30, "redis-server to listen")

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


# --- The portal's processes, each keeping a record (bench/drill_celery.py, bench/drill_simulator.py) --------------


def simulator(port: int, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(settings).encode() if settings is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sandbox/attentive/_control", data=data)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local only
        return json.loads(response.read())


def simulator_answers(port: int) -> list[dict[str, Any]]:
    """Every message request the simulator answered: to, arrived, answered, status."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_drill/record", timeout=30) as response:
        return json.loads(response.read())


def simulator_command(port: int) -> list[str]:
    """The portal (and so its simulator) in one gunicorn process: the recorder's record lives in it."""
    command = [sys.executable, "-m", "gunicorn", "bench.drill_simulator:application", "--bind", f"127.0.0.1:{port}"]
    return [*command, "--threads", "32", "--log-level", "warning"]


@dataclass
class CeleryProcess:
    """A worker or beat started through bench/drill_celery.py, with the record it writes."""

    name: str
    record: Path
    child: subprocess.Popen[bytes]

    def lines(self) -> list[list[str]]:
        if not self.record.exists():
            return []
        return [line.split() for line in self.record.read_text().splitlines() if line.strip()]

    def tasks_running(self) -> dict[int, set[str]]:
        """The tasks each of its pool children has started and not ended: {pid: task ids}."""
        running: dict[int, set[str]] = {}
        for kind, _, pid, task_id, _ in self.lines():
            if kind == "start":
                running.setdefault(int(pid), set()).add(task_id)
            elif kind == "end":
                running.get(int(pid), set()).discard(task_id)
        return {pid: ids for pid, ids in running.items() if ids and is_live_child(pid, self.child.pid)}


def is_live_child(pid: int, parent: int) -> bool:
    """`pid` runs and is `parent`'s child (a killed child stays a zombie until its parent reaps it)."""
    try:
        state, ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:2]
    except (OSError, ValueError):
        return False
    return state != "Z" and int(ppid) == parent


@contextmanager
def celery_process(name: str, args: list[str], env: dict[str, str]) -> Iterator[CeleryProcess]:
    record = Path(env["DRILL_DIR"]) / f"{name}.record"
    record.touch()  # a beat that only ever stands by writes nothing, but its record exists
    command = [sys.executable, "-m", "bench.drill_celery", *args]
    with process(command, {**env, "DRILL_RECORD": str(record)}) as child:
        yield CeleryProcess(name, record, child)


def worker_args(hostname: str) -> list[str]:
    queues = "celery,inbound,messages,sync,bulk"
    return ["worker", "-Q", queues, "-c", "2", "-n", hostname, "-l", "WARNING", "--without-gossip", "--without-mingle"]


def beat_args(env: dict[str, str], name: str) -> list[str]:
    return ["beat", "-l", "WARNING", "-s", str(Path(env["DRILL_DIR"]) / f"{name}.schedule")]


# --- The portal's database, read by the drill -------------------------------------------------------------------------


def seed(messages: int, rate_limit: float) -> list[str]:
    """A client with an active sandbox Attentive connection, N subscribers, and the message job every 2 seconds.
    Returns the input: the phones that must each get one SMS once their loyalty events arrive (add_events)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from integrations.attentive.models import SignUpSource
    from integrations.attentive.sandbox import API_KEY, LEGACY_TOKEN
    from integrations.models import Client, Connection
    from members.models import ChannelSubscription, Member, MessageTemplate

    client = Client.objects.create(name="Drill", slug="drill")
    SignUpSource.objects.create(client=client, source_id="132109", is_default=True)
    connection = Connection.objects.create(
        client=client, vendor="attentive", environment="sandbox", status="active",
        secrets={"api_key": API_KEY, "legacy_token": LEGACY_TOKEN}, settings={"rate_limit_per_second": rate_limit},
    )  # fmt: skip
    MessageTemplate.objects.create(
        client=client, event_type="points_earned", connection=connection, text="Hi {first_name}"
    )
    phones = [f"+1404{5550000 + n:07d}" for n in range(messages)]
    members = Member.objects.bulk_create(
        Member(client=client, phone=phone, first_name=f"M{n}") for n, phone in enumerate(phones)
    )
    ChannelSubscription.objects.bulk_create(
        ChannelSubscription(member=m, vendor="attentive", channel="TEXT", state="subscribed") for m in members
    )
    every_two, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(task=DISPATCH).update(interval=every_two, crontab=None)
    return phones


def vibes_callback_token() -> str:
    """A Vibes connection of the drill's client, receiving callbacks (no allow-list, no Basic credentials)."""
    from integrations.models import Client, Connection

    connection = Connection.objects.create(
        client=Client.objects.get(slug="drill"), vendor="vibes", environment="sandbox", status="active",
        secrets={}, settings={"company_key": "drill"},
    )  # fmt: skip
    return str(connection.inbound_token)


def add_events() -> None:
    """One loyalty event per member: the input, given once every process is up and the simulator is set."""
    from members.models import LoyaltyEvent, Member

    LoyaltyEvent.objects.bulk_create(
        LoyaltyEvent(client_id=client_id, member_id=pk, external_id=f"e{pk}", event_type="points_earned")
        for pk, client_id in Member.objects.values_list("pk", "client_id")
    )


def reading_database(read: Callable[[], Any]) -> Any:
    """`read()`, or None while the database is down (the drill stops it)."""
    from django.db import Error, connections

    try:
        return read()
    except Error:
        connections.close_all()
        return None


def messages_in_flight() -> int:
    from members.models import OutboundMessage

    return OutboundMessage.objects.filter(status__in=["claimed", "attempting"]).count()


def claimed_numbers() -> list[str]:
    from members.models import OutboundMessage

    return list(OutboundMessage.objects.filter(status="claimed").values_list("to", flat=True))


def running_dispatch_runs(task_ids: set[str] | None = None, worker: str = "") -> list[int]:
    from integrations.models import JobRun

    runs = JobRun.objects.filter(job=DISPATCH, outcome=JobRun.Outcome.RUNNING)
    if task_ids is not None:
        runs = runs.filter(task_id__in=task_ids)
    if worker:
        runs = runs.filter(worker__startswith=worker)
    return list(runs.values_list("pk", flat=True))


def settled() -> bool:
    """Every event planned and no message pending, claimed or attempting."""
    from members.models import LoyaltyEvent, OutboundMessage

    unsettled = OutboundMessage.objects.filter(status__in=["pending", "claimed", "attempting"])
    unplanned = LoyaltyEvent.objects.filter(messages_planned_at__isnull=True)
    return OutboundMessage.objects.exists() and not unsettled.exists() and not unplanned.exists()


# --- The faults ----------------------------------------------------------------------------------------------------


@dataclass
class Kill:
    what: str  # "pool child" or "main"
    at: float  # time.time() of the SIGKILL
    runs: list[int]  # the message job runs (JobRun pks) the killed process was executing
    in_flight: int  # messages claimed or attempting at that moment
    # The numbers of the messages claimed (not yet leaving) at that moment: those the killed run held come back only
    # once its claim lease lapses, and the drill times until the last of them reaches the vendor.
    claimed: list[str] = field(default_factory=list)


@dataclass
class Drill:
    kills: list[Kill] = field(default_factory=list)
    down_seconds: dict[str, float] = field(default_factory=dict)
    unsent_at_outages: list[int] = field(default_factory=list)
    callbacks: list[CallbackPhase] = field(default_factory=list)
    beat_stop_detected_s: float = math.inf


def busy_pool_child(worker: CeleryProcess, killed: list[Kill]) -> tuple[int, list[int], int] | None:
    """A pool child of `worker` executing a message run (not one killed before) while messages are in flight:
    (pid, its runs, in flight)."""
    done = {pk for kill in killed for pk in kill.runs}
    for pid, task_ids in worker.tasks_running().items():
        runs = [pk for pk in reading_database(lambda ids=task_ids: running_dispatch_runs(ids)) or [] if pk not in done]
        in_flight = reading_database(messages_in_flight) or 0
        if runs and in_flight:
            return pid, runs, in_flight
    return None


def kill_pool_child(worker: CeleryProcess, seconds: float) -> Kill:
    """SIGKILL one pool child in the middle of a message run; its main process stays and replaces it."""
    busy = wait_for(lambda: busy_pool_child(worker, []), seconds, f"a busy pool child of {worker.name}")
    pid, runs, in_flight = busy
    claimed = reading_database(claimed_numbers) or []
    os.kill(pid, signal.SIGKILL)
    return Kill("pool child", time.time(), runs, in_flight, claimed)


def kill_main(worker: CeleryProcess, hostname: str, killed: list[Kill], seconds: float) -> Kill:
    """SIGKILL a worker's main process while one of its pool children runs a message run (the children die with
    it: Celery sets their parent-death signal). Every run it had open is killed."""
    wait_for(lambda: busy_pool_child(worker, killed), seconds, f"{worker.name} to run the message job again")
    earlier = {pk for kill in killed for pk in kill.runs}
    runs = [pk for pk in reading_database(lambda: running_dispatch_runs(worker=hostname)) or [] if pk not in earlier]
    in_flight = reading_database(messages_in_flight) or 0
    claimed = reading_database(claimed_numbers) or []
    worker.child.send_signal(signal.SIGKILL)
    killed_at = time.time()
    worker.child.wait()
    return Kill("main", killed_at, runs, in_flight, claimed)


def beats_stopped_cleanly(celery_processes: list[CeleryProcess], web: int, silent_s: float) -> float:
    """SIGTERM every beat (each gives its lease up as it stops) and time until /healthz answers 503."""
    stopped = time.monotonic()
    for beat in (celery for celery in celery_processes if celery.name.startswith("beat")):
        beat.child.terminate()
        beat.child.wait(30)
    wait_for(lambda: healthz_status(web) == 503, 2 * silent_s + 60, "/healthz to notice that no beat runs")
    return time.monotonic() - stopped


def healthz_status(web: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/healthz", timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def outage(name: str, stop: Callable[[], None], start: Callable[[], None], port: int, seconds: float) -> float:
    """Stop a service for `seconds`; returns how long its port refused connections without a break, measured."""
    stop()
    wait_for(lambda: not port_open(port), 30, f"{name} to stop listening")
    down_since = time.monotonic()
    while time.monotonic() - down_since < seconds and not port_open(port):
        time.sleep(POLL_SECONDS)
    down = time.monotonic() - down_since
    start()
    return down


@dataclass
class CallbackPhase:
    """Vibes callbacks posted to the web while a service is down: {event id: [(callback id, HTTP status,
    Retry-After), …]}, one entry per try. Each try has a callback id of its own (the portal keeps it on the row it
    stores, duplicates included), so what each single request was answered can be checked against what it stored."""

    name: str
    web: int
    token: str
    answers: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)
    during_outage: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, event_id: str) -> tuple[int, str]:
        callback_id = f"{event_id}#{len(self.answers.get(event_id, []))}"
        body = json.dumps(vibes_callback(event_id, callback_id)).encode()
        url = f"http://127.0.0.1:{self.web}/api/webhooks/vibes/{self.token}/"
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local only
                answer = (response.status, response.headers.get("Retry-After", ""))
        except urllib.error.HTTPError as error:
            answer = (error.code, error.headers.get("Retry-After", ""))
        except OSError:
            answer = (0, "")  # no answer at all
        self.answers.setdefault(event_id, []).append((callback_id, *answer))
        return answer

    def while_down(self, sender: int, port: int, stop: threading.Event) -> None:
        """Post a callback every 50 ms until `stop`, counting those posted while `port` refused connections."""
        n = 0
        while not stop.is_set():
            down = not port_open(port)
            self.post(f"{self.name}-{sender}-{n}")
            with self.lock:
                self.during_outage += down
            n += 1
            time.sleep(0.05)

    def resend_refused(self, seconds: float = 120) -> None:
        """What a vendor that retries does: send again each callback not answered 2xx, until it is (a pause only
        after a refusal, so a thousand refused during the outage are all sent again within the budget)."""
        deadline = time.monotonic() + seconds
        for event_id, answers in self.answers.items():
            while answers[-1][1] // 100 != 2 and time.monotonic() < deadline:
                if self.post(event_id)[0] // 100 != 2:
                    time.sleep(0.2)


def vibes_callback(event_id: str, callback_id: str) -> dict[str, Any]:
    """Vibes' documented subscription_added callback, for a person the portal does not know."""
    return {
        "callback_id": callback_id,
        "event_id": event_id,
        "callback_type": "subscription_added",
        "event_type": "subscription_added",
        "event_date": "2017-02-15T15:42:23Z",
        "subscription": {
            "person": {"id": f"P-{event_id}", "external_id": f"x-{event_id}"},
            "subscription_list": {"id": "1234"},
            "opt_in_date": "2017-01-15T15:34:52Z",
        },
    }


def outage_with_callbacks(
    name: str, service: PrivatePostgres | PrivateRedis, port: int, seconds: float, phase: CallbackPhase
) -> float:
    """The outage of one service while Vibes keeps delivering callbacks, from a few senders at once (a request that
    was publishing as the broker went away waits for it: the others go on)."""
    stop = threading.Event()
    senders = [
        threading.Thread(target=phase.while_down, args=(n, port, stop), daemon=True) for n in range(CALLBACK_SENDERS)
    ]
    for sender in senders:
        sender.start()
    try:
        return outage(name, service.stop, service.start, port, seconds)
    finally:
        stop.set()
        for sender in senders:
            sender.join(60)


def unsent(port: int, expected: int) -> int:
    return expected - len(simulator(port)["messages_by_phone"])


def received_after(port: int, moment: float) -> bool:
    return any(answer["arrived"] > moment for answer in simulator_answers(port))


def drill(
    args: argparse.Namespace,
    env: dict[str, str],
    web: int,
    simulator_process: subprocess.Popen[bytes],
    services: tuple[PrivatePostgres, PrivateRedis],
) -> Drill:
    """Two workers and two beats start while the simulator does; the events arrive once it is set; then the faults
    one after the other while the job runs every 2 seconds, and the drill waits until every message is settled."""
    postgres, redis = services
    done = Drill()
    with ExitStack() as stack:
        celery_processes = [
            stack.enter_context(celery_process("worker-a", worker_args("drill-a@%h"), env)),
            stack.enter_context(celery_process("worker-b", worker_args("drill-b@%h"), env)),
            stack.enter_context(celery_process("beat-1", beat_args(env, "beat-1"), env)),
            stack.enter_context(celery_process("beat-2", beat_args(env, "beat-2"), env)),
        ]
        worker_a = celery_processes[0]
        wait_until_serving(simulator_process, web, seconds=120)
        lose_every = 0 if args.no_lost_answers else args.lose_answer_every
        simulator(web, {"reset": True, "latency_ms": 20, "lose_answer_every": lose_every})
        add_events()
        say("the simulator is set and the events are in")
        if not args.no_kill:
            done.kills.append(kill_pool_child(worker_a, seconds=120))
            say(f"killed a pool child of worker a: {done.kills[-1]}")
            done.kills.append(kill_main(worker_a, "drill-a@", done.kills, seconds=120))
            say(f"killed the main process of worker a: {done.kills[-1]}")
            celery_processes.append(stack.enter_context(celery_process("worker-a", worker_args("drill-a@%h"), env)))
        done.unsent_at_outages.append(unsent(web, args.messages))
        token = vibes_callback_token()
        done.callbacks = [CallbackPhase("redis", web, token), CallbackPhase("database", web, token)]
        done.down_seconds["broker"] = outage_with_callbacks("redis", redis, redis.port, args.outage, done.callbacks[0])
        broker_back = time.time()
        say("the broker is back")
        wait_for(lambda: received_after(web, broker_back), 120, "sending to resume after the broker outage")
        done.unsent_at_outages.append(unsent(web, args.messages))
        say("sending resumed; stopping the database")
        done.down_seconds["database"] = outage_with_callbacks(
            "postgres", postgres, postgres.port, args.outage, done.callbacks[1]
        )
        say("the database is back; Vibes resends what was not accepted")
        for phase in done.callbacks:
            phase.resend_refused()
        patience = max(300.0, args.messages / args.rate_limit * 3)
        wait_for(lambda: reading_database(settled), patience, "every message to be settled")
        say("every message settled; stopping both beats cleanly")
        done.beat_stop_detected_s = beats_stopped_cleanly(celery_processes, web, args.beat_silent)
        for celery in celery_processes:  # all at once: each may take seconds to stop
            celery.child.terminate()
    return done


# --- The figures ---------------------------------------------------------------------------------------------------


def beats_active_max(beats: list[Path], lease_seconds: float) -> int:
    """The most beats scheduling at the same moment, from what each beat published (bench/drill_celery.py): a beat's
    publishes less than a lease apart form one active stretch; stretches of different beats must not overlap. A
    beat record missing makes this fail, never read 0 as a pass."""
    stretches: list[tuple[float, float]] = []
    for record in beats:
        lines = record.read_text().splitlines()
        times = sorted(float(line.split()[1]) for line in lines if line.startswith("publish"))
        stretches += active_stretches(times, lease_seconds)
    # A stretch that starts where another ends overlaps it (starts are counted before ends at the same moment).
    edges = sorted(
        [(start, 1) for start, _ in stretches] + [(end, -1) for _, end in stretches], key=lambda e: (e[0], -e[1])
    )
    most = active = 0
    for _, step in edges:
        active += step
        most = max(most, active)
    return most


def active_stretches(times: list[float], gap: float) -> list[tuple[float, float]]:
    stretches: list[tuple[float, float]] = []
    for at in times:
        if stretches and at - stretches[-1][1] < gap:
            stretches[-1] = (stretches[-1][0], at)
        else:
            stretches.append((at, at))
    return stretches


def busiest_second(times: list[float]) -> int:
    times, busiest, start = sorted(times), 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest


def rate_figures(workers: list[Path], rate_limit: float, simulator_busiest: int) -> dict[str, Any]:
    """The pace the portal kept, from the calls its workers' rate limiters let go (bench/drill_celery.py): the most
    calls any limiter let go within one second, over its rate, and how many calls the connection's limiter let go
    (every message the simulator received went through it; fewer would mean the record misses some). The
    simulator's busiest second is printed beside it: it counts arrivals, which bunch when the processes of a loaded
    machine wait for a CPU between the limiter's decision and the call's arrival (up to 14 arrivals within a
    quarter second in which the limiter let 6 go, with 10 processes waiting for 2 cores)."""
    calls: dict[tuple[str, float], list[float]] = {}
    for record in workers:
        for line in record.read_text().splitlines():
            if line.startswith("call "):
                _, at, _, key, rate = line.split()
                calls.setdefault((key, float(rate)), []).append(float(at))
    figures: dict[str, Any] = {
        "calls_let_go": sum(len(times) for (_, rate), times in calls.items() if rate == rate_limit),
        "simulator_busiest_second": simulator_busiest,
    }
    if calls:  # no record, no figure: its invariant breaks rather than reading 0
        overs = [busiest_second(times) - math.floor(rate) for (_, rate), times in calls.items()]
        figures["max_rate_over_limit"] = max(0, *overs)
    return figures


def portal_statuses() -> dict[str, str]:
    """What the portal believes of each message: {phone: status}."""
    from members.models import OutboundMessage

    return dict(OutboundMessage.objects.values_list("to", "status"))


def kill_figures(kills: list[Kill], answers: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs killed for real: open in the killed process at the kill and never finished (running, or closed as
    interrupted by the reaper) — from the job runs, not assumed."""
    from integrations.models import JobRun

    unfinished = {JobRun.Outcome.RUNNING, JobRun.Outcome.INTERRUPTED}
    outcomes = dict(JobRun.objects.values_list("pk", "outcome"))
    killed = {kill.what: sum(outcomes.get(pk) in unfinished for pk in kill.runs) for kill in kills}
    resumes = [
        min((a["arrived"] for a in answers if a["arrived"] > kill.at), default=math.inf) - kill.at for kill in kills
    ]
    last_claims = [seconds_to_last_claim(kill, answers) for kill in kills]
    return {
        "interrupted_runs": sum(killed.values()),
        "killed_pool_child_runs": killed.get("pool child", 0),
        "killed_main_runs": killed.get("main", 0),
        "in_flight_at_kills": sum(kill.in_flight for kill in kills),
        "seconds_to_resume": f"{max(resumes, default=math.inf):.1f}",
        "seconds_to_last_claim": f"{max(last_claims, default=math.inf):.1f}",
        "runs_left_running": JobRun.objects.filter(job=DISPATCH, outcome=JobRun.Outcome.RUNNING).count(),
    }


def seconds_to_last_claim(kill: Kill, answers: list[dict[str, Any]]) -> float:
    """From the kill until the last message claimed at that moment reached the vendor (the other worker's claims go
    at once, the killed run's only when its lease lapses, then wait for the job's next run and the rate limit); never,
    if one of them never did. A kill that found none claimed (all of its work already leaving) times until the next
    message arrives. Printed beside seconds_to_resume (the next arrival from any worker), which the promises read."""
    arrivals: dict[str, float] = {}
    for answer in answers:
        if answer["arrived"] > kill.at:
            arrivals[answer["to"]] = min(arrivals.get(answer["to"], math.inf), answer["arrived"])
    if not kill.claimed:
        return min(arrivals.values(), default=math.inf) - kill.at
    return max(arrivals.get(number, math.inf) for number in kill.claimed) - kill.at


def callback_figures(phases: list[CallbackPhase]) -> dict[str, Any]:
    """What each request was answered against what the portal stored for it (its WebhookEvent rows)."""
    from integrations.models import WebhookEvent

    events = {event_id: tries for phase in phases for event_id, tries in phase.answers.items()}
    tries = [attempt for attempts in events.values() for attempt in attempts]
    rows = WebhookEvent.objects.filter(delivery_id__in=[t[0] for t in tries])
    stored = set(rows.values_list("delivery_id", flat=True))
    during = {phase.name: phase.during_outage for phase in phases}
    return {
        "callbacks_posted": len(events),
        "callbacks_in_redis_outage": during.get("redis", 0),
        "callbacks_in_database_outage": during.get("database", 0),
        "callback_tries": len(tries),
        "callback_503": sum(status == 503 for _, status, _ in tries),
        "callback_5xx_while_stored": sum(status // 100 != 2 and cid in stored for cid, status, _ in tries),
        "callbacks_2xx_not_stored": sum(status // 100 == 2 and cid not in stored for cid, status, _ in tries),
        "callbacks_503_without_retry_after": sum(status == 503 and not retry_after for _, status, retry_after in tries),
        "callbacks_5xx_other_than_503": sum(status >= 500 and status != 503 for _, status, _ in tries),
        "callbacks_never_stored": sum(not any(t[0] in stored for t in attempts) for attempts in events.values()),
    }


def results(args: argparse.Namespace, phones: list[str], web: int, done: Drill, scratch: Path) -> dict[str, Any]:
    state, answers = simulator(web), simulator_answers(web)
    received = state["messages_by_phone"]
    statuses = portal_statuses()
    uncertain = {phone for phone, status in statuses.items() if status == "uncertain"}
    lost_answers = {answer["to"] for answer in answers if answer["status"] == LOST_ANSWER}
    missed = set(phones) - set(received)
    figures: dict[str, Any] = {
        "expected": len(phones),
        "received": len(set(phones) & set(received)),
        "missed": len(missed),
        "extra": len(set(received) - set(phones)),
        "duplicates": sum(n - 1 for n in received.values()),
        "uncertain": len(uncertain),
        # Uncertain and never received: only a message a kill caught leaving can be that (the rest of the uncertain
        # ones are lost answers, which the simulator did receive).
        "uncertain_not_received": len(uncertain & missed),
        "lost": len(missed - uncertain),
        "sent_not_received": sum(status == "sent" and phone not in received for phone, status in statuses.items()),
        "failed": sum(status == "failed" for status in statuses.values()),
        "lost_answers": len(lost_answers),
        "lost_answers_min": max(1, math.floor(0.8 * len(phones) / args.lose_answer_every)),
        "unflagged_lost_answers": len(lost_answers - uncertain),
        **kill_figures(done.kills, answers),
        **rate_figures(sorted(scratch.glob("worker-*.record")), args.rate_limit, state["busiest_second"]),
        "broker_down_s": f"{done.down_seconds.get('broker', 0):.1f}",
        "database_down_s": f"{done.down_seconds.get('database', 0):.1f}",
        "unsent_at_outages": min(done.unsent_at_outages, default=0),
        "outage_s": f"{args.outage:g}",
        "run_seconds": args.run_seconds,
    }
    figures.update(callback_figures(done.callbacks), beat_silent_s=f"{args.beat_silent:g}")
    figures["beat_stop_detected_s"] = f"{done.beat_stop_detected_s:.1f}"
    beats = sorted(scratch.glob("beat-*.record"))
    if len(beats) == 2:  # both beats kept a record; otherwise the figure is missing and its invariant breaks
        figures["beats_active_max"] = beats_active_max(beats, lease_seconds=float(args.beat_lease))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--outage", type=float, default=20.0, help="seconds the broker, then the database, are down")
    parser.add_argument("--rate-limit", type=float, default=30.0, help="the connection's calls per second")
    parser.add_argument("--lose-answer-every", type=int, default=50, help="the simulator loses every n-th answer")
    parser.add_argument("--run-seconds", type=int, default=20, help="the message job's time budget (a claim lease)")
    parser.add_argument("--beat-lease", type=int, default=10, help="seconds after which a standby beat takes over")
    parser.add_argument("--beat-silent", type=int, default=120, help="/healthz's HEALTH_SILENT_SECONDS")
    parser.add_argument("--no-kill", action="store_true", help="kill nothing (the drill must then fail)")
    parser.add_argument("--no-lost-answers", action="store_true", help="lose no answer (the drill must then fail)")
    args = parser.parse_args()
    started = time.monotonic()
    with private_services() as (postgres, redis), tempfile.TemporaryDirectory(prefix="drill-") as scratch:
        web = free_port()
        env = {
            "SANDBOX_ENABLED": "true",
            "SANDBOX_BASE_URL": f"http://127.0.0.1:{web}/sandbox",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis.port}/0",
            "CACHE_URL": f"rediscache://127.0.0.1:{redis.port}/1",
            "MESSAGE_RUN_SECONDS": str(args.run_seconds),
            "MESSAGE_ATTEMPT_LEASE_SECONDS": "10",
            "BEAT_LEASE_SECONDS": str(args.beat_lease),
            "HEALTH_SILENT_SECONDS": str(args.beat_silent),
            "DRILL_DIR": scratch,
        }
        say("PostgreSQL and Redis are up")
        with bench_django(postgres.server_url, **env) as full_env:
            say("the database is migrated")
            phones = seed(args.messages, args.rate_limit)
            with process(simulator_command(web), full_env) as simulator_process:
                done = drill(args, full_env, web, simulator_process, (postgres, redis))
                say("the workers and beats have stopped")
                figures = results(args, phones, web, done, Path(scratch))
        say("counted")
    print_result(INVARIANTS, **figures, seconds=f"{time.monotonic() - started:.0f}")


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
