"""The bench's own record of which Vibes callbacks the portal applied, kept outside the portal's rows.

bench/vibes_ingest.py runs its Celery worker through `run_worker`: the Vibes handler's `apply` is wrapped, and every
application that commits adds one to its event's count in a Redis hash. The bench then compares that hash with the
callbacks it sent, so an event applied twice (a processor that forgets an event is done) or never (one left
behind) shows whatever the portal's own event rows say. Only committed applications count: one rolled back and
retried is applied once.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

RECORD_KEY = "bench:vibes:applied"
RECORD_URL_VARIABLE = "BENCH_APPLIED_RECORD_URL"
# `python -c` with this runs the worker with the record on; Celery's own arguments follow it.
WORKER_ENTRY = "from bench.applied_record import run_worker; run_worker()"


def event_key(event_id: object, callback_type: str) -> str:
    """A callback's dedup key as Vibes defines it: its event id with its type."""
    return f"{event_id}|{callback_type}"


def run_worker() -> None:
    """`celery <arguments>` in this process, with applications recorded in the Redis database named by
    BENCH_APPLIED_RECORD_URL. The wrap is installed before the pool forks, so every child inherits it."""
    import django

    django.setup()
    record_applications(os.environ[RECORD_URL_VARIABLE])
    from celery.__main__ import main

    sys.argv = ["celery", *sys.argv[1:]]
    main()


def record_applications(redis_url: str) -> None:
    import redis
    from django.db import transaction

    from integrations.vibes.webhooks import VibesCallbacks

    original = VibesCallbacks.apply
    record: list[redis.Redis] = []  # one client per process, made after the fork

    def apply_and_record(self: VibesCallbacks, event: Any) -> tuple[str, str]:
        outcome = original(self, event)
        payload = json.loads(event.body)
        key = event_key(payload["event_id"], payload["callback_type"])

        def count() -> None:
            if not record:
                record.append(redis.Redis.from_url(redis_url))
            record[0].hincrby(RECORD_KEY, key, 1)

        transaction.on_commit(count)
        return outcome

    VibesCallbacks.apply = apply_and_record  # type: ignore[method-assign]


def applications(redis_url: str) -> dict[str, int]:
    """Event key → how many times an application of it committed."""
    import redis

    record = redis.Redis.from_url(redis_url)
    try:
        return {key.decode(): int(count) for key, count in record.hgetall(RECORD_KEY).items()}
    finally:
        record.close()
