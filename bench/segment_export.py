"""Segment CSV export through the real HTTP endpoint: builds a segment of N members, serves the portal with gunicorn,
downloads `GET /api/segments/{id}/export/` with a client token, and measures the serving process.

    .venv/bin/python bench/segment_export.py --rows 1000000 [--database-url postgres://postgres@127.0.0.1:5432/postgres]

Prints one line: backend=… rows_created=… rows=… distinct_members=… seconds=… [copy_seconds=… ratio=…] mb=… mb_per_s=…
server_peak_rss_mb=…, and exits 1 when one of its invariants breaks. On PostgreSQL the same rows are also read by a raw
`COPY` of the export's own statement (copy_seconds), and `ratio` is the download's seconds over it.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    add_database_argument,
    bench_django,
    free_port,
    gunicorn,
    print_result,
    workers_peak_rss_mb,
)

SMOKE_ARGS = ["--rows", "200"]
# Counted from the CSV the client downloads, against the members the bench created: each exported once, whole; the
# serving process stays small whatever the size (it streams).
INVARIANTS = ["rows == rows_created", "distinct_members == rows_created", "server_peak_rss_mb < 150"]
# On PostgreSQL the endpoint keeps the pace of the database's own COPY of the same rows (issue 22), judged on an
# export big enough to measure (at the smoke's few hundred rows the request's fixed cost is all there is).
POSTGRES_INVARIANTS = ["rows_created < 1000000 or ratio <= 1.3"]

# Per-row member values, as SQL over the generated number g; every other column takes the model's default.
# {padded} is g's last 7 digits, written per backend.
MEMBER_EXPRESSIONS = {
    "annex_cloud_id": "'ac' || g",
    "email": "'member' || g || '@example.com'",
    "phone": "'+1' || (404 + g / 10000000) || {padded}",  # 7 digits a number: past 10 million, the next area code
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
        expressions = {
            name: sql.format(padded="lpad((g %% 10000000)::text, 7, '0')") for name, sql in MEMBER_EXPRESSIONS.items()
        }
        insert, params = insert_select(member_model, template, expressions)
        statement, params = f"{insert} FROM generate_series(1, %s) AS s(g)", [*params, rows]
    else:
        expressions = {
            name: sql.format(padded="printf('%%07d', g %% 10000000)") for name, sql in MEMBER_EXPRESSIONS.items()
        }
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


def download(port: int, segment_id: int, key: str, into: BinaryIO) -> float:
    """Seconds of one export download, written into a file as it streams. curl downloads it when the machine has it,
    as a client would: a Python client decoding 800 MB on the same two cores would time the bench, not the portal."""
    url = f"http://127.0.0.1:{port}/api/segments/{segment_id}/export/"
    started = time.perf_counter()
    if curl := shutil.which("curl"):
        subprocess.run(
            [curl, "--silent", "--show-error", "--fail", "--max-time", "600", "-H", f"Authorization: Token {key}", url],
            stdout=into,
            check=True,
        )
        into.seek(0, io.SEEK_END)
        return time.perf_counter() - started
    import requests

    with requests.get(url, headers={"Authorization": f"Token {key}"}, stream=True, timeout=300) as response:
        response.raise_for_status()
        for chunk in response.iter_content(chunk_size=1024 * 1024):
            into.write(chunk)
    return time.perf_counter() - started


def raw_copy_seconds(segment_id: int) -> float:
    """Seconds of the same rows by the database alone, the least an export can cost: the export's own statement
    (members/exports.py) run by psycopg in this process, its output written to a file."""
    from django.db import connection

    from members.exports import copy_statement

    started = time.perf_counter()
    with (
        connection.cursor() as cursor,
        tempfile.TemporaryFile() as into,
        cursor.copy(copy_statement(segment_id)) as copy,
    ):
        for data in copy:
            into.write(data)
    return time.perf_counter() - started


def count_rows(export: BinaryIO, created: int) -> tuple[int, int]:
    """The data rows of the downloaded CSV, and how many distinct created members they hold, each with its own
    values (member `acN` with last name "Last, N": a comma inside a quoted cell)."""
    export.seek(0)
    reader = csv.reader(io.TextIOWrapper(export, encoding="utf-8", newline=""))
    header = next(reader)
    member_id, last_name = header.index("member_id"), header.index("last_name")
    seen = bytearray(created + 1)
    rows = 0
    for row in reader:
        rows += 1
        number = row[member_id].removeprefix("ac")
        if number.isdigit() and 1 <= int(number) <= created and row[last_name] == f"Last, {number}":
            seen[int(number)] = 1
    return rows, sum(seen)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    add_database_argument(parser)
    args = parser.parse_args()
    # Stream whatever the size: this measures the streaming path.
    with bench_django(args.database_url, SEGMENT_EXPORT_STREAM_MAX_ROWS=str(args.rows + 1)) as env:
        from django.db import connection

        segment_id, key = build_segment(args.rows)
        backend = connection.vendor
        connection.close()
        port = free_port()
        with gunicorn(env, port, "--workers", "1", "--timeout", "300") as server, tempfile.TemporaryFile() as export:
            seconds = download(port, segment_id, key, export)
            peak = workers_peak_rss_mb(server.pid)
            mb = export.tell() / 1024 / 1024
            rows, distinct_members = count_rows(export, args.rows)
        raw = {}
        if backend == "postgresql":
            copy_seconds = raw_copy_seconds(segment_id)
            raw = {"copy_seconds": f"{copy_seconds:.2f}", "ratio": f"{seconds / copy_seconds:.2f}"}
    print_result(
        INVARIANTS + (POSTGRES_INVARIANTS if backend == "postgresql" else []),
        backend=backend,
        rows_created=args.rows,
        rows=rows,
        distinct_members=distinct_members,
        seconds=f"{seconds:.2f}",
        **raw,
        mb=f"{mb:.1f}",
        mb_per_s=f"{mb / seconds:.1f}",
        server_peak_rss_mb=f"{peak:.0f}",
    )


if __name__ == "__main__":
    main()
