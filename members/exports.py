"""Segment CSV export, the clients' own journey: columns ready to upload into Attentive, streamed so memory stays
flat whatever the size.

On PostgreSQL the rows come from `COPY ... TO STDOUT` (the database writes the CSV; Python only forwards large
buffers); elsewhere from a keyset-paginated iterator through Python's csv module. Both give the same bytes:
UTF-8, a header row, RFC 4180 quoting (commas, quotes, newlines in names), and cells that a spreadsheet would run
as a formula (starting with = + - @ tab or CR) prefixed with a quote. The phone column is exempt: it is validated
E.164, so a leading + is the number's own and never a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.conf import settings
from django.db import connection

from members.models import Member, Segment

HEADER = ["phone", "email", "first_name", "last_name", "member_id"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK_BYTES = 1024 * 1024
BATCH_ROWS = 10_000


def neutralise(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def segment_size(segment: Segment) -> int:
    return segment.links.count()


def should_export_in_background(segment: Segment) -> bool:
    return segment_size(segment) > settings.SEGMENT_EXPORT_STREAM_MAX_ROWS


def stream_segment_csv(segment: Segment) -> Iterator[bytes]:
    if connection.vendor == "postgresql":
        return _copy_csv(segment.pk)
    return _iterate_csv(segment.pk)


def _iterate_csv(segment_id: int) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    last_pk = 0
    members = Member.objects.filter(segment_links__segment_id=segment_id).order_by("pk")
    while True:
        rows = list(
            members.filter(pk__gt=last_pk).values_list(
                "pk", "phone", "email", "first_name", "last_name", "annex_cloud_id"
            )[:BATCH_ROWS]
        )
        for _, phone, email, first, last, member_id in rows:
            writer.writerow([phone, neutralise(email), neutralise(first), neutralise(last), neutralise(member_id)])
            if buffer.tell() >= CHUNK_BYTES:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        if len(rows) < BATCH_ROWS:
            break
        last_pk = rows[-1][0]
    yield buffer.getvalue().encode()


# The code points of FORMULA_STARTS: comparing ascii() integers costs far less than comparing left(column, 1).
FORMULA_CODES = ", ".join(str(ord(ch)) for ch in FORMULA_STARTS)


def _sql_neutralise(column: str) -> str:
    # Same rule as neutralise(): a leading = + - @ tab or CR gets a quote in front.
    return f"CASE WHEN ascii({column}) IN ({FORMULA_CODES}) THEN '''' || {column} ELSE {column} END"


def _copy_csv(segment_id: int) -> Iterator[bytes]:
    columns = ", ".join(
        [
            "m.phone AS phone",
            f"{_sql_neutralise('m.email')} AS email",
            f"{_sql_neutralise('m.first_name')} AS first_name",
            f"{_sql_neutralise('m.last_name')} AS last_name",
            f"{_sql_neutralise('m.annex_cloud_id')} AS member_id",
        ]
    )
    query = (
        f"COPY (SELECT {columns} FROM {Member._meta.db_table} m "  # noqa: S608 - no user input in this SQL
        f"JOIN {Segment.members.through._meta.db_table} sm ON sm.member_id = m.id "
        f"WHERE sm.segment_id = {int(segment_id)} ORDER BY m.id) "
        "TO STDOUT WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')"
    )
    buffer = bytearray()
    with connection.cursor() as cursor, cursor.cursor.copy(query) as copy:
        # libpq hands over one row at a time; forward them in large buffers.
        for row in copy:
            buffer += row
            if len(buffer) >= CHUNK_BYTES:
                yield bytes(buffer)
                buffer.clear()
    yield bytes(buffer)


def export_filename(segment: Segment) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in segment.name).strip("-") or "segment"
    return f"{segment.client.slug}-{safe}.csv"
