"""The admin dashboard under a production-sized history: N vendor calls and M job runs spread over 30 days, served by
gunicorn, fetched by a logged-in site admin for the 24-hour and the 7-day window.

    .venv/bin/python bench/dashboard.py --calls 1000000 --runs 100000 --database-url postgres://postgres@127.0.0.1:5432/postgres

Prints one line: backend=… rows=… job_runs=… requests=… p50_ms=… p95_ms=… p95_7d_ms=…
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import add_database_argument, bench_django, free_port, gunicorn, print_result
from bench.segment_export import analyze, insert_select

SMOKE_ARGS = ["--calls", "2000", "--runs", "200", "--requests", "3"]
INVARIANTS = ["rows < 1000000 or p95_ms < 1000"]
PASSWORD = "bench-dashboard-password"
SPREAD_SECONDS = 30 * 24 * 3600
VENDORS = ("annex_cloud", "attentive", "vibes")

# Per-row SQL over the generated number g (the statement takes parameters, so % is written %%): spread over 30 days,
# one call in 20 failing, one run in 50 failed.
AGO = {
    "postgresql": "now() - ((g::bigint * {prime}) %% {SPREAD}) * interval '1 second'",
    "sqlite": "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', '-' || ((g * {prime}) %% {SPREAD}) || ' seconds')",
}


def call_expressions(backend: str) -> dict[str, str]:
    return {
        "created_at": AGO[backend].format(prime=7919, SPREAD=SPREAD_SECONDS),
        "status_code": "CASE WHEN g %% 20 = 0 THEN 500 ELSE 200 END",
        "latency_ms": "(g * 31) %% 900",
    }


def run_expressions(backend: str) -> dict[str, str]:
    return {
        "started_at": AGO[backend].format(prime=104729, SPREAD=SPREAD_SECONDS),
        "outcome": "CASE WHEN g %% 50 = 0 THEN 'failed' ELSE 'succeeded' END",
    }


def insert_rows(model: object, template: object, expressions: dict[str, str], rows: int) -> None:
    """Rows 1…N generated inside the database (a million ORM objects would measure the ORM)."""
    from django.db import connection

    insert, params = insert_select(model, template, expressions)
    if connection.vendor == "postgresql":
        statement, params = f"{insert} FROM generate_series(1, %s) AS s(g)", [*params, rows]
    else:
        series = "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %s) "
        statement, params = f"{series}{insert} FROM s", [rows, *params]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def build_history(calls: int, runs: int) -> str:
    """A client with three connections sharing N vendor calls, M job runs, and a site admin; returns the backend."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from integrations.models import Client, Connection, JobRun, VendorCall

    client = Client.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    connections = [Connection.objects.create(client=client, vendor=vendor) for vendor in VENDORS]
    backend = connection.vendor
    for index, vendor_connection in enumerate(connections):
        share = calls // len(connections) + (1 if index < calls % len(connections) else 0)
        template = VendorCall(connection=vendor_connection, method="POST", url="https://vendor.example/v1/x")
        insert_rows(VendorCall, template, call_expressions(backend), share)
    run = JobRun(job="members.dispatch_loyalty_messages", counts={"sent": 1})
    insert_rows(JobRun, run, run_expressions(backend), runs)
    settle(VendorCall._meta.db_table, JobRun._meta.db_table)
    get_user_model().objects.create_superuser("bench-admin", "bench@example.com", PASSWORD)
    return backend


def settle(*tables: str) -> None:
    """What autovacuum does after a bulk load (statistics, and the visibility map that lets PostgreSQL answer from an
    index alone), so the dashboard is measured in the steady state it runs in."""
    from django.db import connection

    if connection.vendor != "postgresql":
        analyze(*tables)
        return
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")


def logged_in_session(port: int) -> object:
    import requests

    session = requests.Session()
    login = f"http://127.0.0.1:{port}/admin/login/"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', session.get(login, timeout=60).text)
    assert token, "no log-in form"
    answer = session.post(
        login,
        data={
            "username": "bench-admin",
            "password": PASSWORD,
            "csrfmiddlewaretoken": token.group(1),
            "next": "/admin/",
        },
        headers={"Referer": login},
        timeout=60,
    )
    answer.raise_for_status()
    return session


def timings_ms(session: object, port: int, window: str, count: int) -> list[float]:
    url = f"http://127.0.0.1:{port}/admin/?window={window}"
    session.get(url, timeout=120).raise_for_status()  # warm: connections, template cache
    found = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, timeout=120)
        found.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        assert "Vendor calls" in response.text, "not the dashboard"
    return found


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    add_database_argument(parser)
    args = parser.parse_args()
    with bench_django(args.database_url) as env:
        from django.db import connection

        backend = build_history(args.calls, args.runs)
        connection.close()
        port = free_port()
        with gunicorn(env, port, "--workers", "1", "--timeout", "300"):
            session = logged_in_session(port)
            day = timings_ms(session, port, "24h", args.requests)
            week = timings_ms(session, port, "7d", args.requests)
    print_result(
        INVARIANTS,
        backend=backend,
        rows=args.calls,
        job_runs=args.runs,
        requests=args.requests,
        p50_ms=f"{statistics.median(day):.0f}",
        p95_ms=f"{p95(day):.0f}",
        p50_7d_ms=f"{statistics.median(week):.0f}",
        p95_7d_ms=f"{p95(week):.0f}",
    )


if __name__ == "__main__":
    main()
