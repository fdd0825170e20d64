"""Hostile CSV (audit findings 6 and 7): the export quotes every field and neutralises formulas the same way on both
paths, byte for byte; the import refuses what is not UTF-8 text in words and reports bad lines by number."""

from __future__ import annotations

import csv
import io
import sys
from operator import itemgetter

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.models import JobRun
from members import exports, imports
from members.exports import BLANKS, csv_chunks, export_cells, neutralise, stream_segment_csv
from members.imports import error_report, queue_import, run_import
from members.models import Member, MemberImport, MemberVendorState
from members.segments import add_members
from tests.conftest import login
from tests.factories import ClientFactory, ClientUserFactory, ConnectionFactory, MemberFactory, SegmentFactory

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
    cells = export_cells(*row, None)
    assert parse(b"".join(csv_chunks([cells]))) == [cells]
    phone, *others, loyalty_opt_in = cells
    assert loyalty_opt_in == ""  # not read from Annex Cloud yet
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
        b'"phone","email","first_name","last_name","member_id","loyalty_opt_in"\n'
        b'"+14045550100","","Eve\r+15005550006","","",""\n'
    )
    assert parse(body)[1] == ["+14045550100", "", "Eve\r+15005550006", "", "", ""]


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
# An Annex Cloud id belongs to one member of a client (blank ones included here, for simplicity).
@given(
    rows=st.lists(
        st.tuples(cell_text, cell_text, cell_text, cell_text), min_size=1, max_size=4, unique_by=itemgetter(3)
    )
)
def test_copy_and_python_paths_agree_on_any_text(db, rows):
    segment = segment_of(rows)
    assert b"".join(exports._copy_csv(segment.pk)) == b"".join(exports._iterate_csv(segment.pk))


# --- Import (finding 7) -------------------------------------------------------------------------------------------


def upload(http, client, data: bytes, name: str = "members.csv"):
    file = io.BytesIO(data)
    file.name = name
    return http.post(reverse("admin:members_member_import"), {"client": client.pk, "file": file}, follow=True)


def form_error(response) -> str:
    errors = response.context["form"].errors.get("file", [])
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize(
    "data",
    [
        "email,first_name\nzoe@example.com,Zoë\n".encode("utf-16"),  # with its BOM, as Excel's "Unicode Text"
        "email,first_name\nzoe@example.com,Zoë\n".encode("utf-16-le"),  # no BOM: NULs between the letters
    ],
    ids=["bom", "no-bom"],
)
def test_a_utf16_file_is_a_form_error_in_words(admin_http, client_a, data):
    response = upload(admin_http, client_a, data)
    assert response.status_code == 200
    assert "not UTF-8" in form_error(response) and "CSV UTF-8" in form_error(response)
    assert not Member.objects.exists()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4, "Excel workbook"),
        (b"\x00\x01\x02\x03email\x00,phone\n\x00\x00\n", "NUL bytes"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "byte 0x89"),
    ],
    ids=["xlsx", "nul-bytes", "png"],
)
def test_a_binary_file_is_a_form_error_in_words(admin_http, client_a, data, words):
    response = upload(admin_http, client_a, data)
    assert response.status_code == 200
    assert words in form_error(response) and "CSV UTF-8" in form_error(response)
    assert not Member.objects.exists()


def test_another_encoding_is_refused_with_its_line_and_nothing_is_imported(admin_http, client_a):
    data = "email,first_name\nann@example.com,Ann\nzoe@example.com,Zoë\n".encode("cp1252")
    error = form_error(upload(admin_http, client_a, data))
    assert "not UTF-8 text (line 3 has the byte 0xEB" in error
    assert not Member.objects.exists()  # line 2 was good, but a file that cannot be read changes nothing


def test_utf8_with_or_without_a_bom_is_imported(admin_http, client_a):
    upload(admin_http, client_a, "\ufeffemail,first_name\nzoe@example.com,Zoë\n".encode())
    upload(admin_http, client_a, b"email,first_name\r\nann@example.com,Ann\r\n")
    assert dict(Member.objects.values_list("email", "first_name")) == {
        "zoe@example.com": "Zoë",
        "ann@example.com": "Ann",
    }


def test_bad_lines_are_reported_by_number_and_the_good_ones_kept(admin_http, client_a):
    rows = [
        "email,first_name,points",
        "ann@example.com,Ann,10",
        "nul@example.com,Nu\x00l,1",
        f"big@example.com,Big,{2**40}",
        f"long@example.com,{'L' * 101},1",
        "low@example.com,Low,-2147483649",
        'multi@example.com,"Two\nlines",=1',
        "max@example.com,Max,2147483647",
        "extra@example.com,Extra,1,surplus",
    ]
    response = upload(admin_http, client_a, ("\n".join(rows) + "\n").encode())
    html = response.content.decode()
    assert "2 created, 0 updated, 6 failed." in html
    assert "Line 3: the line holds a NUL character" in html
    assert "Line 4: points &#x27;1099511627776&#x27; is out of range: -2,147,483,648 to 2,147,483,647" in html
    assert "Line 5: first_name is 101 characters long: at most 100" in html
    assert "Line 6: points &#x27;-2147483649&#x27; is out of range" in html
    assert "Line 7: points &#x27;=1&#x27; is not a whole number" in html  # the record starting on line 7
    assert "Line 10: the line has 4 values, the header 3 columns" in html
    assert dict(Member.objects.values_list("email", "points")) == {"ann@example.com": 10, "max@example.com": 2**31 - 1}


def test_an_unclosed_quote_is_a_form_error_with_its_line(admin_http, client_a):
    # The rest of the file becomes one field, until it is too long for any field.
    data = ("email,first_name\nann@example.com,Ann\n" + 'bo@example.com,"Bo\n' + ("x" * 1023 + "\n") * 140).encode()
    error = form_error(upload(admin_http, client_a, data))
    assert error == "Line 3: a value runs on past 131,072 characters. Is a quote left open?"
    assert not Member.objects.exists()


def test_an_oversized_upload_is_refused_before_it_is_read(admin_http, client_a, settings):
    settings.MEMBER_IMPORT_MAX_BYTES = 1024
    error = form_error(upload(admin_http, client_a, b"email\n" + b"a@example.com\n" * 100))
    assert "split it" in error


def big_file(lines: int) -> tuple[bytes, list[int]]:
    """`lines` member rows after the header; every 1,000th row has points out of range. Returns the file and the
    line numbers of the bad rows."""
    rows, bad = ["email,phone,first_name,points"], []
    for n in range(1, lines + 1):
        points = "99999999999" if n % 1000 == 0 else str(n)
        if n % 1000 == 0:
            bad.append(n + 1)
        rows.append(f"m{n}@example.com,+1404555{n - 1:04d},First {n},{points}")
    return ("\n".join(rows) + "\n").encode(), bad


@pytest.mark.django_db(transaction=True)
def test_a_large_file_is_imported_by_a_job_with_progress_and_an_error_report(admin_http, client_a, eager_celery):
    data, bad_lines = big_file(10_000)
    response = upload(admin_http, client_a, data, name="everyone.csv")
    assert "10,000 rows are being imported in the background" in response.content.decode()

    member_import = MemberImport.objects.get()
    assert (member_import.status, member_import.file_name, member_import.rows) == ("done", "everyone.csv", 10_000)
    assert (member_import.created, member_import.updated, member_import.failed) == (9_990, 0, 10)
    assert Member.objects.filter(client=client_a).count() == 9_990
    assert not member_import.file  # the upload (personal data) is deleted once imported
    run = JobRun.objects.get(job="members.import_members")
    assert run.outcome == "succeeded" and run.client == client_a
    assert run.counts == {"rows": 10_000, "processed": 10_000, "created": 9_990, "updated": 0, "failed": 10}

    page = admin_http.get(reverse("admin:members_member_import")).content.decode()
    report_url = reverse("admin:members_member_import_errors", args=[member_import.pk])
    assert report_url in page and "10000 of 10000 rows" in page
    report = parse(b"".join(admin_http.get(report_url).streaming_content))
    assert report[0] == ["line", "reason"]
    assert [int(line) for line, _ in report[1:]] == bad_lines
    assert report[1][1] == "points '99999999999' is out of range: -2,147,483,648 to 2,147,483,647"


@pytest.mark.django_db(transaction=True)
def test_a_long_import_goes_on_in_the_next_run_where_the_last_stopped(admin_http, client_a, eager_celery, settings):
    settings.MEMBER_IMPORT_SYNC_MAX_ROWS = 10
    settings.MEMBER_IMPORT_RUN_SECONDS = 0  # every run stops after one batch
    data, _ = big_file(1_200)
    upload(admin_http, client_a, data)
    member_import = MemberImport.objects.get()
    assert (member_import.status, member_import.created, member_import.failed) == ("done", 1_199, 1)
    assert JobRun.objects.filter(job="members.import_members").count() == 3  # 500 + 500 + 200 rows
    assert Member.objects.count() == 1_199


def test_a_background_import_records_the_vendor_follow_ups(client_a, settings):
    ConnectionFactory(client=client_a)  # Attentive: an opt-in is its business
    data = b"phone,opted_in\n+14045550100,yes\n+14045550101,no\n"
    member_import = queue_import(client_a, SimpleUploadedFile("m.csv", data), rows=2)
    run_import(member_import.pk)
    states = MemberVendorState.objects.filter(member__client=client_a, vendor="attentive")
    assert [(s.member.phone, s.status) for s in states] == [("+14045550100", "pending")]


def test_a_repeated_run_imports_nothing_twice(client_a):
    member_import = queue_import(client_a, SimpleUploadedFile("m.csv", b"email\na@example.com\nb@example.com\n"), 2)
    run_import(member_import.pk)
    run_import(member_import.pk)  # a second delivery of the task
    member_import.refresh_from_db()
    assert (member_import.created, member_import.updated, member_import.status) == (2, 0, "done")


def test_another_clients_user_cannot_download_an_error_report(client_a, client_b, alice_http):
    member_import = queue_import(client_a, SimpleUploadedFile("m.csv", b"email\nbad\n"), rows=1)
    run_import(member_import.pk)
    url = reverse("admin:members_member_import_errors", args=[member_import.pk])
    assert parse(b"".join(alice_http.get(url).streaming_content))[1] == ["2", "Enter a valid email address."]
    bob = login(ClientUserFactory(username="bob", client=client_b))
    assert bob.get(url).status_code == 404


def test_error_report_reasons_are_neutralised(client_a):
    member_import = queue_import(client_a, SimpleUploadedFile("m.csv", b"email,status\na@example.com,=cmd\n"), 1)
    run_import(member_import.pk)
    body = b"".join(error_report(MemberImport.objects.get()))
    assert body == b'"line","reason"\n"2","status \'=cmd\' is not one of active, inactive"\n'


@pytest.mark.django_db(transaction=True)
def test_the_job_run_shows_the_progress_while_it_runs(admin_http, client_a, eager_celery, settings, monkeypatch):
    settings.MEMBER_IMPORT_SYNC_MAX_ROWS = 10
    seen = []

    def spy(counts, **size):
        real_report_progress(counts, **size)
        run = JobRun.objects.get(job="members.import_members", outcome="running")
        assert (run.done, run.total) == (run.counts["processed"], 1_200)  # so the page shows a percentage
        seen.append(run.counts["processed"])

    real_report_progress = imports.report_progress
    monkeypatch.setattr(imports, "report_progress", spy)
    upload(admin_http, client_a, big_file(1_200)[0])
    assert seen == [500, 1_000, 1_200]


def test_property_tests_run_without_a_deadline_a_loaded_machine_could_miss():
    # The project's Hypothesis profile (tests/conftest.py): an example's time is not what these tests check.
    assert settings.default.deadline is None
