"""A background member import keeps the first 1,000 error rows and counts the rest (issue 21, finding 12): one
import of many bad lines no longer stores a row per line, and its error report says how many more were not kept."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from members.imports import MAX_STORED_ERRORS, error_report, queue_import, run_import
from members.models import Member, MemberImport, MemberImportError

BAD_LINES = 2_600  # more than five batches of 500, so the cap holds across batches and runs


def bad_file(lines: int) -> bytes:
    """Every row has points out of range; one good row at the end is still imported."""
    rows = ["email,points", *(f"m{n}@example.com,99999999999" for n in range(lines)), "good@example.com,5"]
    return ("\n".join(rows) + "\n").encode()


@pytest.mark.django_db
def test_only_the_first_errors_are_stored_and_the_rest_counted(client_a, settings):
    settings.MEMBER_IMPORT_RUN_SECONDS = 0  # every run stops after one batch: the cap holds across runs too
    member_import = queue_import(client_a, SimpleUploadedFile("m.csv", bad_file(BAD_LINES)), rows=BAD_LINES + 1)
    while MemberImport.objects.get(pk=member_import.pk).status != MemberImport.Status.DONE:
        run_import(member_import.pk)
    member_import.refresh_from_db()
    assert (member_import.failed, member_import.created) == (BAD_LINES, 1)
    assert Member.objects.filter(client=client_a).count() == 1
    stored = list(MemberImportError.objects.filter(member_import=member_import).values_list("line", flat=True))
    assert MAX_STORED_ERRORS == 1_000 and sorted(stored) == list(range(2, 2 + MAX_STORED_ERRORS))

    report = list(csv.reader(io.StringIO(b"".join(error_report(member_import)).decode())))
    assert report[0] == ["line", "reason"] and len(report) == 1 + MAX_STORED_ERRORS + 1
    assert report[-1] == ["", f"… and {BAD_LINES - MAX_STORED_ERRORS:,} more lines not imported (only the first "
                              f"{MAX_STORED_ERRORS:,} are kept)"]  # fmt: skip


@pytest.mark.django_db
def test_a_report_under_the_cap_has_no_summary_row(client_a):
    member_import = queue_import(client_a, SimpleUploadedFile("m.csv", bad_file(3)), rows=4)
    run_import(member_import.pk)
    report = list(csv.reader(io.StringIO(b"".join(error_report(member_import)).decode())))
    assert [line for line, _ in report[1:]] == ["2", "3", "4"]
