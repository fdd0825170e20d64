"""Segment CSV export through the real HTTP endpoint: builds a segment of N members, serves the portal with gunicorn,
downloads `GET /api/segments/{id}/export/` with a client token, and measures the serving process.

    .venv/bin/python bench/segment_export.py --rows 1000000 [--database-url postgres://postgres@127.0.0.1:5432/bench]

Prints one line: backend=… rows=… seconds=… mb=… mb_per_s=… server_peak_rss_mb=…
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port  # noqa: E402 - after the path is set


def build_segment(rows: int) -> tuple[int, str]:
    """Members and links are generated inside the database: a million ORM objects would measure the ORM."""
    from django.db import connection
    from django.utils import timezone

    from integrations.models import ApiToken, Client
    from members.models import Member, Segment

    client = Client.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    segment = Segment.objects.create(client=client, name="Everyone")
    now = timezone.now()
    member_table, link_table = Member._meta.db_table, Segment.members.through._meta.db_table
    columns = "client_id, annex_cloud_id, email, phone, first_name, last_name, zip_code, opted_in, status, tier, points"
    columns += ", created_at, updated_at"
    if connection.vendor == "postgresql":
        series = "generate_series(1, %s) AS s(g)"
        padded = "lpad(g::text, 7, '0')"
        select = f"SELECT %s, 'ac' || g, 'member' || g || '@example.com', '+1404' || {padded}, 'First' || g, "
        insert = f"INSERT INTO {member_table} ({columns}) {select}"
        insert += "'Last, ' || g, '30301', true, 'active', 'Gold', g, %s, %s FROM " + series
        params = [client.pk, now, now, rows]
    else:
        padded = "printf('%%07d', g)"
        insert = (
            f"INSERT INTO {member_table} ({columns}) "  # noqa: S608 - generated, no user input
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %s) "
            f"SELECT %s, 'ac' || g, 'member' || g || '@example.com', '+1404' || {padded}, 'First' || g, "
            "'Last, ' || g, '30301', 1, 'active', 'Gold', g, %s, %s FROM s"
        )
        params = [rows, client.pk, now, now]
    with connection.cursor() as cursor:
        cursor.execute(insert, params)
        cursor.execute(
            f"INSERT INTO {link_table} (segment_id, member_id, added_at) "  # noqa: S608
            f"SELECT %s, id, %s FROM {member_table} WHERE client_id = %s",
            [segment.pk, now, client.pk],
        )
        # Fresh statistics, as autovacuum would have after a bulk load, so the planner picks its real plan.
        cursor.execute(f"ANALYZE {member_table}" if connection.vendor == "postgresql" else "ANALYZE")
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {link_table}")
    _, key = ApiToken.issue(client, "bench")
    return segment.pk, key


def peak_rss_mb_of_workers(master_pid: int) -> float:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    peaks = []
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3")
    args = parser.parse_args()
    env = {
        **os.environ,
        "ENV_FILE": "",
        "DEBUG": "true",
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": "memory://",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "LOG_LEVEL": "WARNING",
        # Stream whatever the size: this measures the streaming path.
        "SEGMENT_EXPORT_STREAM_MAX_ROWS": str(args.rows + 1),
    }
    os.environ.update(env)
    import django
    import requests
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    call_command("migrate", verbosity=0)
    segment_id, key = build_segment(args.rows)
    backend = connection.vendor
    connection.close()

    port = free_port()
    gunicorn = [sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    server = subprocess.Popen(
        [*gunicorn, "--timeout", "300", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/segments/{segment_id}/export/"
        headers = {"Authorization": f"Token {key}"}
        for _ in range(150):
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.2)
        started = time.perf_counter()
        size = lines = 0
        with requests.get(url, headers=headers, stream=True, timeout=300) as response:
            response.raise_for_status()
            for chunk in response.iter_content(chunk_size=1024 * 1024):
                size += len(chunk)
                lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
        peak = peak_rss_mb_of_workers(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=20)
    mb = size / 1024 / 1024
    print(
        f"backend={backend} rows={lines - 1} seconds={seconds:.2f} mb={mb:.1f} mb_per_s={mb / seconds:.1f} "
        f"server_peak_rss_mb={peak:.0f}"
    )


if __name__ == "__main__":
    main()
