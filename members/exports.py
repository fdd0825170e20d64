"""Segment CSV export, the clients' own journey: columns ready to upload into Attentive, streamed so memory stays
flat whatever the size.

One format, two ways of producing it: on PostgreSQL the rows come from `COPY ... TO STDOUT` (the database writes
the CSV; Python only forwards large buffers), elsewhere from a keyset-paginated iterator through Python's csv
module. Both give the same bytes (tests/test_csv_hardening.py compares them on PostgreSQL):

- UTF-8, `\\n` after every row, a header row;
- every field quoted (QUOTE_ALL / FORCE_QUOTE *): a CR, LF, comma or quote inside a field can never end a cell or a
  row. Python's csv.writer with QUOTE_MINIMAL left a bare CR unquoted, which a spreadsheet reads as a row break;
- cells a spreadsheet would run as a formula get a leading apostrophe (see FORMULA_PATTERN). The phone column is
  exempt: it is validated E.164, so a leading + is the number's own and never a formula.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import StreamingHttpResponse

from members.models import Member, Segment, SegmentMember
from portal.db_router import read_alias

HEADER = ["phone", "email", "first_name", "last_name", "member_id", "loyalty_opt_in"]
# The loyalty opt-in (Annex Cloud's optInStatus) as the column says it: not SMS consent, and empty when not read yet.
LOYALTY_OPT_IN = {True: "yes", False: "no", None: ""}
CHUNK_BYTES = 1024 * 1024
BATCH_ROWS = 10_000

# What a spreadsheet may skip before it reads "=": every character Python's str.isspace() calls blank (NBSP and
# the other Unicode spaces among them) plus the invisible zero-width ones. Listed, not taken from a locale, so
# Python and PostgreSQL (whose [[:space:]] depends on the database's locale and leaves NBSP out) agree exactly.
BLANKS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"  # str.isspace()
    "\u180e\u200b\u200c\u200d\u2060\ufeff"  # zero-width
)
# A cell is neutralised when it starts with a tab or CR (OWASP's list), or when its first non-blank character is
# = + - or @. Written with \uXXXX escapes only, so the one pattern means the same to Python's re and to
# PostgreSQL's regular expressions (ARE), and holds no quote that could end the SQL literal it is put in.
FORMULA_PATTERN = "^(?:[\\t\\r]|[" + "".join(f"\\u{ord(ch):04x}" for ch in BLANKS) + "]*[-=+@])"
FORMULA = re.compile(FORMULA_PATTERN)
# A cell can match only if its first character is one of these: most cells are settled by one set lookup.
_MAY_START_A_FORMULA = frozenset(BLANKS + "=+-@")


def neutralise(value: str) -> str:
    """The value with an apostrophe in front if a spreadsheet would run it as a formula (the apostrophe shows
    the cell as text; the value after it is unchanged)."""
    if value and value[0] in _MAY_START_A_FORMULA and FORMULA.match(value):
        return "'" + value
    return value


def export_cells(
    phone: str, email: str, first_name: str, last_name: str, member_id: str, loyalty_opted_in: bool | None
) -> list[str]:
    """One member's cells, in HEADER order, as the CSV holds them."""
    names = [neutralise(email), neutralise(first_name), neutralise(last_name), neutralise(member_id)]
    return [phone, *names, LOYALTY_OPT_IN[loyalty_opted_in]]


def csv_writer(buffer: io.StringIO) -> Any:
    """The portal's CSV dialect (the segment export, the import error report): every field quoted, `\\n` rows."""
    return csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")


def csv_chunks(rows: Iterable[Sequence[object]]) -> Iterator[bytes]:
    """`rows` written in the portal's dialect as UTF-8, in chunks of about CHUNK_BYTES (never splitting a row)."""
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    for row in rows:
        writer.writerow(row)
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


# The header row, written by Python for both paths: COPY's HEADER is never force-quoted.
HEADER_BYTES = b"".join(csv_chunks([HEADER]))


def segment_size(segment: Segment) -> int:
    return segment.links.count()


def should_export_in_background(segment: Segment) -> bool:
    return segment_size(segment) > settings.SEGMENT_EXPORT_STREAM_MAX_ROWS


def stream_segment_csv(segment: Segment, using: str = DEFAULT_DB_ALIAS) -> Iterator[bytes]:
    """The segment's CSV, read from the database `using` (a download reads the replica; a job, the primary)."""
    if connections[using].vendor == "postgresql":
        return _copy_csv(segment.pk, using)
    return _iterate_csv(segment.pk, using)


def _member_rows(
    segment_id: int, using: str = DEFAULT_DB_ALIAS
) -> Iterator[tuple[str, str, str, str, str, bool | None]]:
    """The segment's members in id order, a batch per query (keyset pagination: no OFFSET, no open cursor)."""
    last_pk = 0
    members = Member.objects.using(using).filter(segment_links__segment_id=segment_id).order_by("pk")
    while True:
        rows = list(
            members.filter(pk__gt=last_pk).values_list(
                "pk", "phone", "email", "first_name", "last_name", "annex_cloud_id", "loyalty_opted_in"
            )[:BATCH_ROWS]
        )
        for _pk, phone, email, first_name, last_name, member_id, loyalty_opted_in in rows:
            yield phone, email, first_name, last_name, member_id, loyalty_opted_in
        if len(rows) < BATCH_ROWS:
            return
        last_pk = rows[-1][0]


def _iterate_csv(segment_id: int, using: str = DEFAULT_DB_ALIAS) -> Iterator[bytes]:
    yield HEADER_BYTES
    yield from csv_chunks(export_cells(*row) for row in _member_rows(segment_id, using))


# The code points of _MAY_START_A_FORMULA. As in neutralise(), one cheap test settles most cells: ascii() of the
# first character against these keeps COPY about as fast as before (the pattern alone on every cell cost ~2x).
_MAY_START_CODES = ", ".join(str(ord(ch)) for ch in sorted(_MAY_START_A_FORMULA))


def _sql_neutralise(column: str) -> str:
    # neutralise() in SQL: the same pattern, PostgreSQL's ~ reading it as Python's re does.
    return (
        f"CASE WHEN ascii({column}) IN ({_MAY_START_CODES}) AND {column} ~ '{FORMULA_PATTERN}' "
        f"THEN '''' || {column} ELSE {column} END"
    )


def copy_statement(segment_id: int) -> str:
    """The PostgreSQL export of a segment as one `COPY (…) TO STDOUT` in the CSV format (the header apart)."""
    columns = ", ".join(
        [
            "m.phone",
            _sql_neutralise("m.email"),
            _sql_neutralise("m.first_name"),
            _sql_neutralise("m.last_name"),
            _sql_neutralise("m.annex_cloud_id"),
            "CASE m.loyalty_opted_in WHEN TRUE THEN 'yes' WHEN FALSE THEN 'no' ELSE '' END",
        ]
    )
    return (
        f"COPY (SELECT {columns} FROM {Member._meta.db_table} m "  # noqa: S608 - no user input in this SQL
        f"JOIN {SegmentMember._meta.db_table} sm ON sm.member_id = m.id "
        f"WHERE sm.segment_id = {int(segment_id)} ORDER BY m.id) "
        "TO STDOUT WITH (FORMAT csv, FORCE_QUOTE *, ENCODING 'UTF8')"
    )


def _copy_csv(segment_id: int, using: str = DEFAULT_DB_ALIAS) -> Iterator[bytes]:
    buffer = bytearray(HEADER_BYTES)
    # Through Django's cursor wrapper (not psycopg's own cursor), so the COPY is logged like any other query.
    with connections[using].cursor() as cursor, cursor.copy(copy_statement(segment_id)) as copy:
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


def csv_download(segment: Segment) -> StreamingHttpResponse:
    # A download reads the replica when there is one (portal/db_router.py); the export job reads the primary.
    response = StreamingHttpResponse(stream_segment_csv(segment, read_alias()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export_filename(segment)}"'
    response["Cache-Control"] = "no-store"
    return response
