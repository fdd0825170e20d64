"""First Orion push throughput and token discipline: N members pushed as branded-call destinations, batch by batch,
through the First Orion simulator served by gunicorn, with a short token lifetime so the shared token is refreshed
during the run (by one caller, a little before it expires).

    .venv/bin/python bench/firstorion_push.py --destinations 100000 --token-lifetime 30 [--database-url postgres://...]

Prints one line: destinations=… batches=… seconds=… destinations_per_s=… token_calls=… token_calls_max=…
duplicates=… lost=… peak_rss_mb=…, where token_calls_max = ceil(seconds / (lifetime - refresh margin)) + 1 and the
refresh margin is lifetime/15 (60 s of a 15-minute token). Exits non-zero when the run made more token calls than
that, or pushed a number twice, or lost one.
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

from bench.common import add_database_argument, bench_django, free_port, gunicorn, peak_rss_mb, print_result

SMOKE_ARGS = ["--destinations", "40", "--token-lifetime", "30", "--batch-size", "10"]


def control(port: int, settings: dict[str, object] | None = None) -> dict[str, Any]:
    """Read (or change, with settings) the First Orion simulator's state."""
    data = json.dumps(settings).encode() if settings is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sandbox/first_orion/_control", data=data)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local only
        return json.loads(response.read())


def seed_and_push(destinations: int, batch_size: int) -> tuple[int, int, float]:
    """N opted-in members of a client with an active sandbox connection, one push of a program content to all of
    them, then the push run, timed. Returns (destinations, batches, seconds). Portal code is imported here only."""
    from integrations.first_orion import flows
    from integrations.first_orion.models import ProgramContent, Push
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
        (
            Member(client=client, phone=f"+1404{5550000 + n:07d}", first_name=f"M{n}", opted_in=True)
            for n in range(destinations)
        ),
        batch_size=5000,
    )
    push = flows.create_push(content, members=Member.objects.filter(client=client))
    started = time.perf_counter()
    flows.run_push(push.pk)
    seconds = time.perf_counter() - started
    push = Push.objects.get(pk=push.pk)
    if push.status != Push.Status.SENT:
        raise SystemExit(f"push ended {push.status}: {push.error}")
    return push.destinations, push.batches_total, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--destinations", type=int, default=100_000)
    parser.add_argument("--token-lifetime", type=float, default=30.0)
    parser.add_argument("--batch-size", type=int, default=500)
    add_database_argument(parser)
    args = parser.parse_args()
    port = free_port()
    sandbox = {"SANDBOX_ENABLED": "true", "SANDBOX_BASE_URL": f"http://127.0.0.1:{port}/sandbox"}
    # One simulator process, many threads: the simulator keeps its state in memory.
    with bench_django(args.database_url, **sandbox) as env, gunicorn(env, port, "--workers", "1", "--threads", "8"):
        control(port, {"reset": True, "token_lifetime": args.token_lifetime})
        destinations, batches, seconds = seed_and_push(args.destinations, args.batch_size)
        state = control(port)
    margin = args.token_lifetime / 15
    token_calls_max = math.ceil(seconds / (args.token_lifetime - margin)) + 1
    lost = destinations - state["numbers"]
    print_result(
        destinations=destinations,
        batches=batches,
        seconds=f"{seconds:.1f}",
        destinations_per_s=f"{destinations / seconds:.0f}",
        token_calls=state["token_calls"],
        token_calls_max=token_calls_max,
        duplicates=state["duplicates"],
        lost=lost,
        peak_rss_mb=f"{peak_rss_mb():.0f}",
    )
    if state["token_calls"] > token_calls_max or state["duplicates"] or lost:
        sys.exit(1)


if __name__ == "__main__":
    main()
