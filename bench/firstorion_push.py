"""First Orion push throughput and token discipline: N members pushed as branded-call destinations, batch by batch,
through the First Orion simulator served by gunicorn, with a short token lifetime so the shared token is refreshed
during the run (by one caller, a little before it expires).

    .venv/bin/python bench/firstorion_push.py --destinations 100000 --token-lifetime 30 [--database-url postgres://...]

Prints one line: destinations=… received=… uncertain=… lost=… duplicates=… extra=… batches=… request_ms=…
batches_at_answer=… seconds=… destinations_per_s=… token_lifetime=… token_calls=… token_calls_max=…
refused_batches=… long_values=… peak_rss_mb=…, and exits 1 when one of INVARIANTS breaks. `request_ms` is what asking
for the push costs (flows.create_push, as the web request runs it) and `batches_at_answer` the batches that exist when
it returns: none, the task builds them (`seconds` is the task's run, planning included).

What was pushed is counted from the simulator's own record of the numbers it received, against the numbers the bench
created (--destinations): `received` is how many of those it got, `uncertain` how many of those it did not get are in
batches the portal says may or may not have arrived (their answer was lost), `lost = destinations - received -
uncertain`, `duplicates` the extra times a number was received, `extra` the numbers received that the bench never
created. token_calls_max = ceil(seconds / (lifetime - refresh margin)) + 1, the refresh margin being lifetime/15 (60 s
of a 15-minute token). From the simulator's record too: `refused_batches`, the batch requests it answered 401 (a token
is taken as each batch leaves, after the rate limit, so none should carry an expired or refused token), and
`long_values`, the personalised values over 20 characters it received (the push's default leaves those members out).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import add_database_argument, bench_django, free_port, peak_rss_mb, print_result
from bench.simulator_records import records, served

SMOKE_ARGS = ["--destinations", "40", "--token-lifetime", "30", "--batch-size", "10"]
# Every number the bench created reached First Orion once, and nothing else did; the shared token was fetched no more
# often than its lifetime requires — and refreshed at least once when the run outlived it (the drill happened).
INVARIANTS = [
    "lost == 0",
    "duplicates == 0",
    "extra == 0",
    "token_calls <= token_calls_max",
    "seconds < token_lifetime or token_calls >= 2",
    "refused_batches == 0",
    "long_values == 0",
    "batches_at_answer == 0",
]


def control(port: int, settings: dict[str, object] | None = None) -> dict[str, Any]:
    """Read (or change, with settings) the First Orion simulator's state."""
    data = json.dumps(settings).encode() if settings is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sandbox/first_orion/_control", data=data)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local only
        return json.loads(response.read())


def phone(n: int) -> str:
    return f"+1404{5550000 + n:07d}"


def seed_and_push(destinations: int, batch_size: int) -> dict[str, Any]:
    """N opted-in members of a client with an active sandbox connection, one push of a program content to all of
    them asked for (as the web request does), then the push's task run, each timed. Returns batches, the numbers in
    uncertain batches, request_ms, batches_at_answer and seconds. Portal code is imported here only."""
    from integrations.first_orion import flows
    from integrations.first_orion.models import ProgramContent, Push, PushBatch
    from integrations.first_orion.sandbox import DEMO_A_NUMBERS, DEMO_PROGRAM, DEMO_SECRETS, DEMO_SETTINGS
    from integrations.models import Client, Connection
    from members.models import Member

    client = Client.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    Connection.objects.create(
        client=client,
        vendor="first_orion",
        environment="sandbox",
        status="active",
        secrets=DEMO_SECRETS,
        settings={**DEMO_SETTINGS, "batch_size": batch_size},
    )
    content = ProgramContent.objects.create(
        client=client,
        name="Bench",
        program_content_uuid=DEMO_PROGRAM,
        a_numbers=DEMO_A_NUMBERS,
        personalization={"MY_VAR": "Hi {first_name}"},
    )
    Member.objects.bulk_create(
        (Member(client=client, phone=phone(n), first_name=f"M{n}", opted_in=True) for n in range(destinations)),
        batch_size=5000,
    )
    asked = time.perf_counter()
    push = flows.create_push(content, members=Member.objects.filter(client=client))
    request_ms = (time.perf_counter() - asked) * 1000
    batches_at_answer = PushBatch.objects.filter(push=push).count()
    started = time.perf_counter()
    flows.run_push(push.pk)
    seconds = time.perf_counter() - started
    push = Push.objects.get(pk=push.pk)
    if push.status != Push.Status.SENT:
        print(f"push ended {push.status}: {push.error}", file=sys.stderr)
    # The portal's own word on what may or may not have arrived: batches whose answer was lost.
    uncertain = push.batches.filter(status="uncertain").values_list("destinations", flat=True)
    return {
        "batches": push.batches_total,
        "uncertain": {item["bNumber"] for batch in uncertain for item in batch},
        "request_ms": request_ms,
        "batches_at_answer": batches_at_answer,
        "seconds": seconds,
    }


def pushed(port: int, destinations: int, uncertain: set[str]) -> dict[str, int]:
    """What the simulator received, against the numbers the bench created."""
    received = records(port, "first_orion")["received"]
    created = {phone(n) for n in range(destinations)}
    missing = created - set(received)
    return {
        "received": len(created) - len(missing),
        "uncertain": len(missing & uncertain),
        "lost": len(missing - uncertain),
        "duplicates": sum(times - 1 for number, times in received.items() if number in created),
        "extra": sum(times for number, times in received.items() if number not in created),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--destinations", type=int, default=100_000)
    parser.add_argument("--token-lifetime", type=float, default=30.0)
    parser.add_argument("--batch-size", type=int, default=500)
    add_database_argument(parser)
    args = parser.parse_args()
    port = free_port()
    sandbox = {"SANDBOX_ENABLED": "true", "SANDBOX_BASE_URL": f"http://127.0.0.1:{port}/sandbox"}
    # One simulator process, many threads: the simulator keeps its state (and its records) in memory.
    with bench_django(args.database_url, **sandbox) as env, served(env, port, threads=8):
        control(port, {"reset": True, "token_lifetime": args.token_lifetime})
        run = seed_and_push(args.destinations, args.batch_size)
        state = control(port)
        counted = pushed(port, args.destinations, run["uncertain"])
    seconds = run["seconds"]
    margin = args.token_lifetime / 15
    print_result(
        INVARIANTS,
        destinations=args.destinations,
        received=counted["received"],
        uncertain=counted["uncertain"],
        lost=counted["lost"],
        duplicates=counted["duplicates"],
        extra=counted["extra"],
        batches=run["batches"],
        request_ms=f"{run['request_ms']:.0f}",
        batches_at_answer=run["batches_at_answer"],
        seconds=f"{seconds:.1f}",
        destinations_per_s=f"{args.destinations / seconds:.0f}",
        token_lifetime=f"{args.token_lifetime:g}",
        token_calls=state["token_calls"],
        token_calls_max=math.ceil(seconds / (args.token_lifetime - margin)) + 1,
        refused_batches=state["refused_batches"],
        long_values=state["long_values"],
        peak_rss_mb=f"{peak_rss_mb():.0f}",
    )


if __name__ == "__main__":
    main()
