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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port  # noqa: E402 - after the path is set

# Per-row member values, as SQL over the generated number g; every other column takes the model's default.
# {padded} is g as 7 digits, written per backend.
MEMBER_EXPRESSIONS = {
    "annex_cloud_id": "'ac' || g",
    "email": "'member' || g || '@example.com'",
    "phone": "'+1404' || {padded}",
    "first_name": "'First' || g",
    "last_name": "'Last, ' || g",  # a comma, so the export has to quote
    "points": "g",
}
MEMBER_VALUES = {"zip_code": "30301", "opted_in": True, "status": "active", "tier": "Gold"}


def insert_select(model: Any, template: Any, expressions: dict[str, str]) -> tuple[str, list[object]]:
    """`INSERT INTO <table> (<columns>) SELECT <values>`, to complete with a FROM clause: the columns named in
    `expressions` take those SQL expressions, every other column the value the ORM would save for `template` (its
    defaults, auto_now dates), so a column added with a default needs no change here."""
    from django.db import connection

    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.name in expressions:
            value_sql = expressions[field.name]
        elif field.primary_key or field.generated or field.has_db_default():
            continue  # the database fills these
        elif field.unique:
            raise ValueError(f"{model.__name__}.{field.name} is unique: give it a per-row expression")
        else:
            value_sql = "%s"
            params.append(field.get_db_prep_save(field.pre_save(template, add=True), connection))
        columns.append(connection.ops.quote_name(field.column))
        values.append(value_sql)
    table = connection.ops.quote_name(model._meta.db_table)
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)}", params


def insert_members(member_model: Any, template: Any, rows: int) -> None:
    """Rows 1…N generated inside the database: a million ORM objects would measure the ORM."""
    from django.db import connection

    if connection.vendor == "postgresql":
        expressions = {name: sql.format(padded="lpad(g::text, 7, '0')") for name, sql in MEMBER_EXPRESSIONS.items()}
        insert, params = insert_select(member_model, template, expressions)
        statement, params = f"{insert} FROM generate_series(1, %s) AS s(g)", [*params, rows]
    else:
        expressions = {name: sql.format(padded="printf('%%07d', g)") for name, sql in MEMBER_EXPRESSIONS.items()}
        insert, params = insert_select(member_model, template, expressions)
        series = "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %s) "
        statement, params = f"{series}{insert} FROM s", [rows, *params]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def link_members(link_model: Any, template: Any, member_table: str, client_id: int) -> None:
    """Every member of the client into the segment, in one statement."""
    from django.db import connection

    insert, params = insert_select(link_model, template, {"member": "id"})
    with connection.cursor() as cursor:
        cursor.execute(f"{insert} FROM {member_table} WHERE client_id = %s", [*params, client_id])


def analyze(*tables: str) -> None:
    """Fresh statistics, as autovacuum would have after a bulk load, so the planner picks its real plan."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in tables:
                cursor.execute(f"ANALYZE {table}")
        else:
            cursor.execute("ANALYZE")


def build_segment(rows: int) -> tuple[int, str]:
    """A client with N members in one segment, and an API token of that client. The portal code this bench uses is
    imported here only."""
    from integrations.models import ApiToken, Client
    from members.models import Member, Segment

    client = Client.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    segment = Segment.objects.create(client=client, name="Everyone")
    link_model = Segment.members.through
    insert_members(Member, Member(client=client, **MEMBER_VALUES), rows)
    link_members(link_model, link_model(segment=segment), Member._meta.db_table, client.pk)
    analyze(Member._meta.db_table, link_model._meta.db_table)
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
