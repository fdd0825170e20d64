"""Hostile CSV (audit findings 6 and 7): the export quotes every field and neutralises formulas the same way on both
paths, byte for byte; the import refuses what is not UTF-8 text in words and reports bad lines by number."""

from __future__ import annotations

import csv
import io
import sys

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from members import exports
from members.exports import BLANKS, csv_chunks, export_cells, neutralise, stream_segment_csv
from members.models import Member
from members.segments import add_members
from tests.factories import ClientFactory, MemberFactory, SegmentFactory

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="COPY is PostgreSQL's: set DATABASE_URL=postgres://… to compare"
)

# Characters that have broken CSV exports before, mixed into arbitrary text so that hypothesis meets them often.
TRICKY = ["\r", "\n", "\r\n", '"', "'", ",", "=", "+", "-", "@", "\t", " ", "\xa0", "\u3000", "\u200b", "\ufeff"]
# Any text PostgreSQL can store: everything but NUL (hypothesis leaves out lone surrogates already).
cell_text = st.lists(
    st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8", exclude_characters="\x00")), max_size=12
).map("".join)


def parse(body: bytes) -> list[list[str]]:
    # newline="" as when a file is read: a bare CR outside quotes would end a row here, as in a spreadsheet.
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


WHITESPACE = "".join(ch for ch in map(chr, range(sys.maxunicode + 1)) if ch.isspace())
INVISIBLE = "\u180e\u200b\u200c\u200d\u2060\ufeff"


def runs_as_formula(cell: str) -> bool:
    """What a spreadsheet might evaluate, written independently of members/exports.py: a tab or CR first, or
    = + - @ after any whitespace (str.isspace) and zero-width characters."""
    first = cell.lstrip(WHITESPACE + INVISIBLE)[:1]
    return cell[:1] in ("\t", "\r") or (first != "" and first in "=+-@")


def test_blanks_are_every_character_python_calls_whitespace_and_the_zero_width_ones():
    assert set(BLANKS) == set(WHITESPACE + INVISIBLE)


@given(row=st.tuples(cell_text, cell_text, cell_text, cell_text, cell_text))
def test_any_text_round_trips_and_no_cell_runs_as_a_formula(row):
    cells = export_cells(*row)
    assert parse(b"".join(csv_chunks([cells]))) == [cells]
    phone, *others = cells
    assert phone == row[0]  # the phone is E.164, exempt
    for value, cell in zip(row[1:], others, strict=True):
        assert cell in (value, "'" + value)
        assert not runs_as_formula(cell)
        assert (cell != value) == runs_as_formula(value)


@pytest.mark.parametrize(
    "value",
    ["=1+1", "  =1", "\xa0=1", "\u3000+1", "\n\n-1", "\r\n@SUM(A1)", "\tab", "\rab", "\u200b=1", "\ufeff@x"],
)
def test_formulas_behind_blanks_and_tab_or_cr_starts_are_neutralised(value):
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["", " ", "ab", "a=b", "1-2", "O'Brien", "'=1", "\xa0", "zoe@example.com"])
def test_plain_text_is_left_alone(value):
    assert neutralise(value) == value


def test_every_field_is_quoted_and_a_bare_cr_is_never_a_row_break(client_a):
    segment = SegmentFactory(client=client_a)
    MemberFactory(client=client_a, phone="+14045550100", first_name="Eve\r+15005550006", last_name="", email="")
    add_members(segment, Member.objects.all())
    body = b"".join(stream_segment_csv(segment))
    assert body == (
        b'"phone","email","first_name","last_name","member_id"\n"+14045550100","","Eve\r+15005550006","",""\n'
    )
    assert parse(body)[1] == ["+14045550100", "", "Eve\r+15005550006", "", ""]


# Values for the byte-for-byte comparison of the two paths (one member each).
PATH_CASES = [
    ("Zoë", 'O"Brien, Jr.', "zoe@example.com", "ac-1"),
    ('=HYPERLINK("x")', "+SUM(A1)", "@evil.example", "-42"),
    ("Line\nbreak", "Eve\r+15005550006", "", ""),
    ("\xa0=1", "  @x", "\n-1", "\t7"),
    ("\r", "\u3000+1", "\ufeff=1", "'=already"),
    ("emoji 🎉", "", "a,b@example.com", "\u200b-1"),
]


def segment_of(rows: list[tuple[str, str, str, str]]):
    client = ClientFactory()
    segment = SegmentFactory(client=client)
    for n, (first, last, email, annex_id) in enumerate(rows):
        MemberFactory(
            client=client,
            phone=f"+1404555{n:04d}",
            first_name=first,
            last_name=last,
            email=email,
            annex_cloud_id=annex_id,
        )
    add_members(segment, Member.objects.filter(client=client))
    return segment


@on_postgresql
def test_copy_and_python_paths_give_identical_bytes(db):
    segment = segment_of(PATH_CASES)
    copied = b"".join(exports._copy_csv(segment.pk))
    assert copied == b"".join(exports._iterate_csv(segment.pk))
    assert len(parse(copied)) == len(PATH_CASES) + 1


@on_postgresql
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(cell_text, cell_text, cell_text, cell_text), min_size=1, max_size=4))
def test_copy_and_python_paths_agree_on_any_text(db, rows):
    segment = segment_of(rows)
    assert b"".join(exports._copy_csv(segment.pk)) == b"".join(exports._iterate_csv(segment.pk))
