"""Segment CSV export: the exact bytes (header, quoting, formula neutralising, UTF-8), the same on SQLite and
PostgreSQL, streamed by the API and the admin, large segments exported by a job, and tenancy by id, token and URL."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from members import exports
from members.exports import stream_segment_csv
from members.models import Member, SegmentExport
from members.segments import add_members
from tests.conftest import login
from tests.factories import ClientUserFactory, MemberFactory, SegmentFactory

TRICKY = [
    # (first, last, email, annex id) -> what the CSV must say
    ("Zoë", 'O"Brien, Jr.', "zoe@example.com", "ac-1"),
    ('=HYPERLINK("x")', "+SUM(A1)", "@evil.example", "-42"),
    ("Line\nbreak", "Plain", "plain@example.com", ""),
]


@pytest.fixture
def segment(client_a):
    segment = SegmentFactory(client=client_a, name="VIP, all")
    for n, (first, last, email, annex_id) in enumerate(TRICKY):
        MemberFactory(
            client=client_a,
            phone=f"+1404555{n:04d}",
            first_name=first,
            last_name=last,
            email=email,
            annex_cloud_id=annex_id,
        )
    add_members(segment, Member.objects.all())
    return segment


def parse(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8"))))


def test_the_csv_is_ready_for_attentive_and_safe_in_a_spreadsheet(segment):
    rows = parse(b"".join(stream_segment_csv(segment)))
    assert rows == [
        ["phone", "email", "first_name", "last_name", "member_id", "loyalty_opt_in"],
        ["+14045550000", "zoe@example.com", "Zoë", 'O"Brien, Jr.', "ac-1", ""],
        ["+14045550001", "'@evil.example", '\'=HYPERLINK("x")', "'+SUM(A1)", "'-42", ""],
        ["+14045550002", "plain@example.com", "Line\nbreak", "Plain", "", ""],
    ]


def test_raw_bytes_quote_commas_quotes_and_newlines(segment):
    body = b"".join(stream_segment_csv(segment)).decode()
    assert '"O""Brien, Jr."' in body
    assert '"Line\nbreak"' in body


def test_the_api_streams_the_export_to_the_clients_token(api_client_for, client_a, segment):
    response = api_client_for(client_a).get(f"/api/segments/{segment.pk}/export/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="alpha-VIP--all.csv"'
    assert len(parse(b"".join(response.streaming_content))) == 4


def test_another_clients_token_or_user_gets_nothing(api_client_for, client_b, segment, alice_http, db):
    assert api_client_for(client_b).get(f"/api/segments/{segment.pk}/export/").status_code == 404
    assert api_client_for(client_b).get("/api/segments/").json()["results"] == []
    bob = login(ClientUserFactory(username="bob", client=client_b))
    assert bob.get(f"/api/segments/{segment.pk}/export/").status_code == 404
    admin_url = reverse("admin:members_segment_changelist")
    response = bob.post(admin_url, {"action": "export_csv", "_selected_action": [segment.pk]})
    assert response.status_code in (302, 200)
    assert not response.get("Content-Disposition")
    assert alice_http.get(f"/api/segments/{segment.pk}/export/").status_code == 200


def test_the_admin_action_downloads_the_csv(admin_http, segment):
    response = admin_http.post(
        reverse("admin:members_segment_changelist"), {"action": "export_csv", "_selected_action": [segment.pk]}
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert len(parse(b"".join(response.streaming_content))) == 4


@pytest.mark.django_db(transaction=True)
def test_a_large_segment_is_exported_by_a_job_and_linked(api_client_for, client_a, segment, settings, eager_celery):
    settings.SEGMENT_EXPORT_STREAM_MAX_ROWS = 2
    api = api_client_for(client_a)
    response = api.get(f"/api/segments/{segment.pk}/export/")
    assert response.status_code == 202
    export = SegmentExport.objects.get()
    assert export.status == "ready" and export.rows == 3
    status = api.get(response["Location"]).json()
    assert status["status"] == "ready"
    download = api.get(status["download_url"])
    assert parse(b"".join(download.streaming_content))[1][0] == "+14045550000"


def test_chunking_keeps_every_row_whole(segment, monkeypatch):
    whole = b"".join(stream_segment_csv(segment))
    monkeypatch.setattr(exports, "CHUNK_BYTES", 16)
    chunks = list(stream_segment_csv(segment))
    assert len(chunks) > 3
    assert b"".join(chunks) == whole


@pytest.mark.django_db(transaction=True)
def test_a_finished_export_is_not_reachable_by_another_client(
    api_client_for, client_a, client_b, segment, settings, eager_celery, admin_http
):
    settings.SEGMENT_EXPORT_STREAM_MAX_ROWS = 2
    admin_http.post(
        reverse("admin:members_segment_changelist"), {"action": "export_csv", "_selected_action": [segment.pk]}
    )
    export = SegmentExport.objects.get()
    assert export.status == "ready"
    page = admin_http.get(reverse("admin:members_segment_change", args=[segment.pk])).content.decode()
    assert reverse("admin:members_segmentexport_download", args=[export.pk]) in page

    bob = login(ClientUserFactory(username="bob", client=client_b))
    assert bob.get(reverse("admin:members_segmentexport_download", args=[export.pk])).status_code == 404
    assert api_client_for(client_b).get(f"/api/segment-exports/{export.pk}/download/").status_code == 404
    assert api_client_for(client_a).get(f"/api/segment-exports/{export.pk}/download/").status_code == 200
