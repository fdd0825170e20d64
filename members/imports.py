"""Member import from a CSV upload.

The file is read as a whole first (check_upload), importing nothing: it must be UTF-8 text (with or without a BOM)
with a known header row. UTF-16, other encodings and binary files (a workbook, NUL bytes in the header) are
refused in words, with the line where it went wrong. Then each row is validated (NUL characters, lengths within
the model's columns, points within a 32-bit integer, ...) and stored on its own, so a bad row is reported with its
line number and reason while the good rows are kept. Every change goes through sync.record_change, as an edit in the
admin does, so the vendors holding what changed are brought in line.

Files of up to MEMBER_IMPORT_SYNC_MAX_ROWS rows are imported during the upload (import_members). Larger ones are
stored under MEDIA_ROOT and imported by a job (queue_import, run_import) in batches, each committed with its counts,
its errors and where the next batch starts: the job's progress shows on the import page and its JobRun, and a run
killed half-way is resumed by the next one without importing a row twice.
"""

from __future__ import annotations

import codecs
import csv
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import validate_email
from django.db import DataError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import ngettext

from integrations.job_runs import Counts, current_run, report_progress
from integrations.models import Client
from integrations.queue import enqueue
from members import changes, sync
from members.exports import csv_chunks, neutralise
from members.models import Member, MemberImport, MemberImportError, annex_cloud_id_holder
from members.phones import InvalidPhone, to_e164

COLUMNS = {
    "annex_cloud_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "zip_code",
    "opted_in",
    "status",
    "tier",
    "points",
}
IDENTIFYING = {"email", "phone", "annex_cloud_id"}
TRUE_WORDS = {"1", "true", "yes", "y", "on"}
MAX_REPORTED_ERRORS = 200
# Rows per transaction of a background import: its unit of progress and of what a killed run has to redo.
BATCH_ROWS = 500
# A background import stores the first this many lines not imported (its error report); the rest are only counted
# (`failed`), so one file of 100,000 bad lines does not write 100,000 rows.
MAX_STORED_ERRORS = 1_000
# No member row comes near this; a longer line is a file that is not a member CSV (and is never read whole).
MAX_LINE_BYTES = 64 * 1024
# Member.points is a 32-bit signed integer column on every database.
POINTS_MIN, POINTS_MAX = -(2**31), 2**31 - 1
POINTS_TEXT = re.compile(r"[+-]?[0-9]+")
# What people type as a phone number (spaces, dashes, brackets, an extension) before it becomes E.164.
PHONE_INPUT_MAX = 40
RESAVE = "save it as “CSV UTF-8 (Comma delimited)” in your spreadsheet and upload again"
# How files that are not UTF-8 text begin, and what they then are.
OTHER_FORMATS = {
    codecs.BOM_UTF16_LE: "UTF-16 text",  # UTF-32 LE starts the same way
    codecs.BOM_UTF16_BE: "UTF-16 text",
    b"PK\x03\x04": "an Excel workbook (.xlsx) or another zip archive",
    b"\xd0\xcf\x11\xe0": "an Excel 97-2003 workbook (.xls)",
    b"%PDF": "a PDF document",
}


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    keep: int | None = MAX_REPORTED_ERRORS  # errors kept in `errors` (None: all of them)

    def fail(self, line: int, reason: str) -> None:
        self.failed += 1
        if self.keep is None or len(self.errors) < self.keep:
            self.errors.append((line, reason))


class ImportFileError(ValueError):
    """The file as a whole cannot be read (not UTF-8 text, not CSV, no known columns); nothing is imported."""


# --- Reading the file


class Lines:
    """The upload's physical lines as text, from `offset` (the start of a line): strict UTF-8, the BOM dropped.
    Counts the bytes and lines read: csv.reader asks for a line only when its record needs one, so right after a
    record `offset` is where the next record starts, a point a later run can resume from."""

    def __init__(self, upload: IO[bytes], offset: int = 0, line: int = 0) -> None:
        self.upload, self.offset, self.line = upload, offset, line

    def __iter__(self) -> Iterator[str]:
        self.upload.seek(self.offset)
        # Binary readline splits at b"\n" only: a CR inside a quoted field stays in its field.
        while raw := self.upload.readline(MAX_LINE_BYTES + 1):
            if len(raw) > MAX_LINE_BYTES:
                raise ImportFileError(
                    f"Line {self.line + 1} is longer than {MAX_LINE_BYTES:,} bytes, far more than a member's row: is "
                    f"it a CSV file? If so, {RESAVE}."
                )
            text = decode_line(raw.removeprefix(codecs.BOM_UTF8) if self.offset == 0 else raw, self.line + 1)
            self.offset += len(raw)
            self.line += 1
            yield text


def decode_line(raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"The file is not UTF-8 text (line {line} has the byte 0x{raw[exc.start]:02X}, as another encoding such "
            f"as Windows-1252 writes an accented letter): {RESAVE}."
        ) from exc


@dataclass(frozen=True)
class Record:
    line: int  # the line the record starts on (a quoted field may run over several)
    values: list[str]
    next_offset: int  # where the next record starts, and the number of the line before it
    next_line: int


def records(lines: Lines) -> Iterator[Record]:
    """The CSV records of `lines`, blank lines left out (as a spreadsheet leaves them)."""
    reader = csv.reader(lines)
    while True:
        first = lines.line + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(f"Line {first}: {csv_problem(exc)}") from exc
        if any(value.strip() for value in values):
            yield Record(first, values, lines.offset, lines.line)


def csv_problem(exc: csv.Error) -> str:
    """csv's error in the words of someone who saved a spreadsheet."""
    if "field larger than field limit" in str(exc):
        return f"a value runs on past {csv.field_size_limit():,} characters. Is a quote left open?"
    if "new-line character" in str(exc):
        return f"a carriage return (CR) ends a line in the middle of a value: {RESAVE}."
    return str(exc)


def refuse_other_formats(head: bytes) -> None:
    for start, what in OTHER_FORMATS.items():
        if head.startswith(start):
            raise ImportFileError(f"The file is {what}, not UTF-8 CSV text: {RESAVE}.")


def header_columns(header: Record | None) -> list[str]:
    """The header's column names, lower case; empty names (a trailing comma) are kept as "" and ignored."""
    if header is None:
        raise ImportFileError("The file is empty: it needs a header row and a row per member.")
    if any("\x00" in value for value in header.values):
        # UTF-16 without a BOM and binary files decode as "UTF-8" full of NULs; a CSV header never holds one.
        raise ImportFileError(
            f"The file is not UTF-8 text (its header line holds NUL bytes, as UTF-16 text or a binary file "
            f"does): {RESAVE}."
        )
    columns = [value.strip().lower() for value in header.values]
    named = [name for name in columns if name]
    if not set(named) & IDENTIFYING:
        raise ImportFileError("The file needs a header row with at least one of: email, phone, annex_cloud_id.")
    unknown = set(named) - COLUMNS
    if unknown:
        raise ImportFileError(
            f"Unknown {ngettext('column', 'columns', len(unknown))}: {', '.join(sorted(unknown))}. "
            f"Known: {', '.join(sorted(COLUMNS))}."
        )
    repeated = sorted({name for name in named if named.count(name) > 1})
    if repeated:
        raise ImportFileError(
            f"{ngettext('Column', 'Columns', len(repeated))} named twice in the header: {', '.join(repeated)}."
        )
    return columns


def open_csv(upload: IO[bytes], offset: int = 0, line: int = 0) -> tuple[list[str], Iterator[Record]]:
    """The header's columns, and the records after the header (or from `offset`, after `line`, to resume)."""
    upload.seek(0)
    refuse_other_formats(upload.read(8))
    head = Lines(upload)
    columns = header_columns(next(records(head), None))
    return columns, records(Lines(upload, offset or head.offset, line or head.line))


def check_upload(upload: IO[bytes]) -> int:
    """Read the whole file, importing nothing: ImportFileError (in words, with the line) unless it is UTF-8 CSV
    with a known header. Returns its number of rows."""
    _, rows = open_csv(upload)
    return sum(1 for _ in rows)


# --- Importing rows


def batched(rows: Iterator[Record], size: int) -> Iterator[list[Record]]:
    while batch := list(islice(rows, size)):
        yield batch


def import_members(client: Client, upload: IO[bytes], by: str = "an import") -> ImportReport:
    """Import a whole file now (the upload request of a small file, tests, benches). The file is checked first,
    so one that cannot be read changes nothing. `by` names the import on the members' timelines."""
    check_upload(upload)
    columns, rows = open_csv(upload)
    report = ImportReport()
    with changes.changed_by(by):
        for batch in batched(rows, BATCH_ROWS):
            with transaction.atomic():  # one commit per batch, not per row; each row is a savepoint of its own
                import_batch_rows(client, columns, batch, report)
    return report


def import_label(user: Any, file_name: str) -> str:
    """An import as its members' timelines name it."""
    who = user.get_username() if user is not None else "someone"
    return f"{who}'s import of {file_name}"


def import_batch_rows(client: Client, columns: list[str], batch: list[Record], report: ImportReport) -> None:
    """Validate every row of the batch, then store the valid ones in file order.

    A row none of whose keys (Annex Cloud id, e-mail, phone) any member had when the batch began, or any earlier row
    of the batch named, matches no member: such rows are created together in one INSERT instead of a lookup, a
    savepoint and an INSERT each (ten times faster). They are written before any row that needs a lookup, which
    may be about one of them."""
    with changes.collected():  # the batch's changes stored in one INSERT
        cleaned = [(record.line, cleaned_values(client, columns, record, report)) for record in batch]
        valid = [(line, values) for line, values in cleaned if values is not None]
        known = keys_in_use(client, [values for _, values in valid])
        vendors = sync.configured_vendors(client.pk)  # read once per batch, not per row
        new: list[tuple[int, dict[str, Any]]] = []
        for line, values in valid:
            keys = row_keys(values)
            if keys & known:
                create_members(client, new, report, vendors)
                new = []
                store_row(client, values, line, report, vendors)
            else:
                new.append((line, values))
            known |= keys
        create_members(client, new, report, vendors)


def cleaned_values(client: Client, columns: list[str], record: Record, report: ImportReport) -> dict[str, Any] | None:
    """The row's values ready to store, or None when it is reported as failed."""
    try:
        return clean_row(client, row_values(columns, record.values))
    except (ValidationError, InvalidPhone, ValueError) as exc:
        report.fail(record.line, "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))
        return None


def row_values(columns: list[str], values: list[str]) -> dict[str, str]:
    """The row as {column: value}; a missing value at the end is an empty one."""
    if any("\x00" in value for value in values):
        raise ValueError("the line holds a NUL character (\\0): remove it, or save the file as CSV UTF-8 again")
    if any(value.strip() for value in values[len(columns) :]):
        raise ValueError(f"the line has {len(values)} values, the header {len(columns)} columns")
    return {name: value.strip() for name, value in zip(columns, values, strict=False) if name}


def row_keys(values: dict[str, Any]) -> set[tuple[str, str]]:
    return {(key, values[key]) for key in IDENTIFYING if values.get(key)}


def keys_in_use(client: Client, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """The keys of `rows` that members of the client already have."""
    wanted = {key: {values[key] for values in rows if values.get(key)} for key in IDENTIFYING}
    if not any(wanted.values()):
        return set()
    match = Q(annex_cloud_id__in=wanted["annex_cloud_id"]) | Q(email__in=wanted["email"])
    match |= Q(phone__in=wanted["phone"]) & ~Q(phone="")  # the partial unique index's condition (find_existing)
    members = Member.objects.filter(client=client).filter(match).order_by()
    return {
        (key, value)
        for found in members.values_list("annex_cloud_id", "email", "phone")
        for key, value in zip(("annex_cloud_id", "email", "phone"), found, strict=True)
        if value and value in wanted[key]
    }


def store_row(client: Client, values: dict[str, Any], line: int, report: ImportReport, vendors: set[str]) -> None:
    """Update the member the row names, or create one; a row the database refuses is reported, not the file."""
    member: Member | None = None
    try:
        with changes.undone_with_the_savepoint(), transaction.atomic():
            member = find_existing(client, values)
            created = member is None
            before = Member() if member is None else member  # a new member starts from the model's defaults
            previous = {name: getattr(before, name) for name in values}
            if member is None:
                member = Member.objects.create(client=client, **values)
            else:
                for name, value in values.items():
                    setattr(member, name, value)
                member.save()
            follow_up(member, values, previous, vendors)
    except IntegrityError:
        report.fail(line, clash_reason(client, values, member.pk if member else None))
    except DataError as exc:  # whatever the checks above let through
        report.fail(line, f"the database refused the row ({str(exc).splitlines()[0][:200]})")
    else:
        if created:
            report.created += 1
        else:
            report.updated += 1


def clash_reason(client: Client, values: dict[str, Any], member_pk: int | None) -> str:
    """Which unique value of the row another member holds: its Annex Cloud id (taken by another import or edit
    since the row was matched), else its mobile number."""
    holder = annex_cloud_id_holder(client.pk, values.get("annex_cloud_id", ""), exclude_pk=member_pk)
    if holder is not None:
        return f"another member of this client already has this annex_cloud_id ({holder}, member {holder.pk})"
    return "another member of this client already has this mobile number"


def create_members(
    client: Client, rows: list[tuple[int, dict[str, Any]]], report: ImportReport, vendors: set[str]
) -> None:
    """Rows that match no member, created in one INSERT. Should it fail (another process took one of the numbers
    meanwhile), they are stored row by row, so that only the row at fault is reported."""
    if not rows:
        return
    defaults = Member()
    try:
        with changes.undone_with_the_savepoint(), transaction.atomic():
            members = Member.objects.bulk_create([Member(client=client, **values) for _, values in rows])
            for member, (_, values) in zip(members, rows, strict=True):
                follow_up(member, values, {name: getattr(defaults, name) for name in values}, vendors)
    except (IntegrityError, DataError):
        for line, values in rows:
            store_row(client, values, line, report, vendors)
    else:
        report.created += len(rows)


def follow_up(member: Member, values: dict[str, Any], previous: dict[str, Any], vendors: set[str]) -> None:
    """Same follow-ups as an edit in the admin: the vendors that hold what changed are brought in line."""
    changed = {name for name, value in values.items() if previous[name] != value}
    sync.record_change(member, changed, previous, configured=vendors)


def clean_row(client: Client, row: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in row.items() if k in COLUMNS and v != ""}
    if not (values.get("email") or values.get("phone") or values.get("annex_cloud_id")):
        raise ValueError("the row has no email, phone or annex_cloud_id")
    check_lengths(values)
    if "email" in values:
        validate_email(values["email"])
    if "phone" in values:
        values["phone"] = to_e164(values["phone"], client.default_region)
    if "opted_in" in values:
        values["opted_in"] = values["opted_in"].lower() in TRUE_WORDS
    if "points" in values:
        values["points"] = points_of(values["points"])
    if "status" in values and values["status"].lower() not in Member.Status.values:
        raise ValueError(f"status {shown(values['status'])} is not one of {', '.join(Member.Status.values)}")
    if "status" in values:
        values["status"] = values["status"].lower()
    return values


def check_lengths(values: dict[str, str]) -> None:
    """Each text within its column's max_length (a phone as typed, before it becomes E.164)."""
    for name, value in values.items():
        field = Member._meta.get_field(name)  # a column of the member (not a relation): it has a max_length
        limit = PHONE_INPUT_MAX if name == "phone" else getattr(field, "max_length", None)
        if limit is not None and len(value) > limit:
            raise ValueError(f"{name} is {len(value):,} characters long: at most {limit}")


def points_of(text: str) -> int:
    # ASCII digits only: int() would also take "1_000" and other scripts' digits.
    if not POINTS_TEXT.fullmatch(text):
        raise ValueError(f"points {shown(text)} is not a whole number")
    # More than 12 digits is out of range anyway: never parse a number of any length.
    points = int(text) if len(text) <= 12 else None
    if points is None or not POINTS_MIN <= points <= POINTS_MAX:
        raise ValueError(f"points {shown(text)} is out of range: {POINTS_MIN:,} to {POINTS_MAX:,}")
    return points


def shown(value: str, limit: int = 40) -> str:
    """A value quoted in an error, cut short: a report must not grow with the file's worst cell."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def find_existing(client: Client, values: dict[str, Any]) -> Member | None:
    # Member's own ordering without its first key (the client, the same for all): no join, the same member found.
    members = Member.objects.filter(client=client).order_by("last_name", "first_name", "pk")
    for key in ("annex_cloud_id", "email", "phone"):
        if values.get(key):
            found = members.filter(**{key: values[key]})
            if key == "phone":
                # The partial index's own condition: SQLite uses unique_member_phone_per_client only when the query
                # states it, and otherwise reads every member of the client for each row (imports went quadratic).
                found = found.exclude(phone="")
            match = found.first()
            if match is not None:
                return match
    return None


def report_lines(report: ImportReport) -> Iterable[str]:
    yield f"{report.created} created, {report.updated} updated, {report.failed} failed."
    for line, reason in sorted(report.errors):  # a batch reports its invalid rows before those refused on saving
        yield f"Line {line}: {reason}"


# --- Large files: a background job


def runs_in_background(rows: int) -> bool:
    return rows > settings.MEMBER_IMPORT_SYNC_MAX_ROWS


def queue_import(client: Client, upload: UploadedFile, rows: int, user: Any = None) -> MemberImport:
    """Store the (checked) upload under MEDIA_ROOT and queue its import after commit."""
    member_import = MemberImport(client=client, uploaded_by=user, file_name=(upload.name or "")[:255], rows=rows)
    member_import.file.save("upload.csv", upload, save=False)
    member_import.save()
    enqueue("members.import_members", member_import.pk)
    return member_import


def progress(member_import: MemberImport) -> Counts:
    return {
        "rows": member_import.rows,
        "processed": member_import.processed,
        "created": member_import.created,
        "updated": member_import.updated,
        "failed": member_import.failed,
    }


def run_import(import_id: int) -> Counts:
    """One run of a background import: batches from where the last run stopped until the file ends, or until
    MEMBER_IMPORT_RUN_SECONDS have passed, when it queues the next run (a run stays well inside the task's time
    limit whatever the file's size)."""
    member_import = MemberImport.objects.select_related("client").get(pk=import_id)
    if member_import.status in (MemberImport.Status.DONE, MemberImport.Status.FAILED):
        return progress(member_import)  # a repeated delivery of a finished import
    member_import.status, member_import.job_run = MemberImport.Status.RUNNING, current_run()
    member_import.save(update_fields=["status", "job_run"])
    deadline = time.monotonic() + settings.MEMBER_IMPORT_RUN_SECONDS
    by = import_label(member_import.uploaded_by, member_import.file_name)
    with changes.changed_by(by, source=member_import), member_import.file.open("rb") as upload:
        columns, rows = open_csv(upload, member_import.offset, member_import.line)
        for number, batch in enumerate(batched(rows, BATCH_ROWS)):
            if number and time.monotonic() > deadline:
                enqueue("members.import_members", member_import.pk)  # the rest in a fresh run
                return progress(member_import)
            if not import_batch(member_import, columns, batch):
                return progress(member_import)  # another run of this import got there first and goes on
            report_progress(progress(member_import), done=member_import.processed, total=member_import.rows)
    finish(member_import)
    return progress(member_import)


def import_batch(member_import: MemberImport, columns: list[str], batch: list[Record]) -> bool:
    """Import `batch` and record its counts, errors and the resume point in one transaction. False, importing
    nothing, when the import has moved on since this run read it (a second delivery of the task is running)."""
    report = ImportReport(keep=None)
    with transaction.atomic():
        stored = MemberImport.objects.select_for_update().only("offset").get(pk=member_import.pk)
        if stored.offset != member_import.offset:
            return False
        import_batch_rows(member_import.client, columns, batch, report)
        MemberImportError.objects.bulk_create(
            MemberImportError(member_import=member_import, line=line, reason=reason)
            for line, reason in errors_to_store(report, stored_before=min(member_import.failed, MAX_STORED_ERRORS))
        )
        member_import.created += report.created
        member_import.updated += report.updated
        member_import.failed += report.failed
        member_import.offset, member_import.line = batch[-1].next_offset, batch[-1].next_line
        member_import.save(update_fields=["created", "updated", "failed", "offset", "line"])
    return True


def errors_to_store(report: ImportReport, *, stored_before: int) -> list[tuple[int, str]]:
    """The batch's errors that still fit under MAX_STORED_ERRORS, first lines first (a batch reports its invalid
    rows before those refused on saving). Every earlier failure up to the cap was stored, so `failed` tells how many
    are stored already."""
    room = max(0, MAX_STORED_ERRORS - stored_before)
    return sorted(report.errors)[:room]


def finish(member_import: MemberImport) -> None:
    member_import.status = MemberImport.Status.DONE
    member_import.finished_at = timezone.now()
    # The upload holds personal data and has served: the members are stored, the lines not imported are reported.
    member_import.file.delete(save=False)
    member_import.save(update_fields=["status", "finished_at", "file"])


def error_report(member_import: MemberImport) -> Iterator[bytes]:
    """The lines not imported as CSV (line, reason), in the export's dialect: reasons quote the file's text, so
    they are neutralised as an export's cells are."""
    errors = member_import.errors.order_by("line").values_list("line", "reason").iterator(chunk_size=2000)
    rows = chain([("line", "reason")], ((line, neutralise(reason)) for line, reason in errors))
    return csv_chunks(chain(rows, errors_not_kept(member_import)))


def errors_not_kept(member_import: MemberImport) -> list[tuple[str, str]]:
    """The report's last row when lines failed beyond those stored: how many, so the report does not read as all."""
    kept = member_import.errors.count()
    if member_import.failed <= kept:
        return []
    more = member_import.failed - kept
    return [("", f"… and {more:,} more lines not imported (only the first {MAX_STORED_ERRORS:,} are kept)")]
