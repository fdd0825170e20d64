"""Member import from a CSV upload: each row normalised (phones to E.164 in the client's region) and stored on its
own, so a bad row is reported with its line number and reason while the good rows are kept."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from integrations.models import Client
from members import sync
from members.models import Member
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
TRUE_WORDS = {"1", "true", "yes", "y", "on"}
MAX_REPORTED_ERRORS = 200


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    failed: int = 0

    def fail(self, line: int, reason: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append((line, reason))


class ImportFileError(ValueError):
    """The file as a whole cannot be read (not CSV, no known columns)."""


def import_members(client: Client, upload: IO[bytes]) -> ImportReport:
    text = io.TextIOWrapper(upload, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    headers = {h.strip().lower() for h in reader.fieldnames or []}
    if not headers & {"email", "phone", "annex_cloud_id"}:
        raise ImportFileError("The file needs a header row with at least one of: email, phone, annex_cloud_id.")
    unknown = headers - COLUMNS
    if unknown:
        raise ImportFileError(f"Unknown column(s): {', '.join(sorted(unknown))}. Known: {', '.join(sorted(COLUMNS))}.")
    report = ImportReport()
    try:
        for row in reader:
            import_row(
                client, {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}, reader.line_num, report
            )
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportFileError(f"Line {reader.line_num}: the file is not UTF-8 CSV ({exc}).") from exc
    return report


def import_row(client: Client, row: dict[str, str], line: int, report: ImportReport) -> None:
    try:
        values = clean_row(client, row)
        with transaction.atomic():
            member = find_existing(client, values)
            created = member is None
            before = Member() if created else member  # a new member starts from the model's defaults
            previous = {name: getattr(before, name) for name in values}
            if created:
                member = Member.objects.create(client=client, **values)
                report.created += 1
            else:
                for name, value in values.items():
                    setattr(member, name, value)
                member.save()
                report.updated += 1
            # Same follow-ups as an edit in the admin: the vendors that hold what changed are brought in line.
            sync.record_change(member, {k for k, v in values.items() if previous[k] != v}, previous)
    except (ValidationError, InvalidPhone, ValueError) as exc:
        report.fail(line, "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))
    except IntegrityError:
        report.fail(line, "another member of this client already has this mobile number")


def clean_row(client: Client, row: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in row.items() if k in COLUMNS and v != ""}
    if not (values.get("email") or values.get("phone") or values.get("annex_cloud_id")):
        raise ValueError("the row has no email, phone or annex_cloud_id")
    if "email" in values:
        validate_email(values["email"])
    if "phone" in values:
        values["phone"] = to_e164(values["phone"], client.default_region)
    if "opted_in" in values:
        values["opted_in"] = values["opted_in"].lower() in TRUE_WORDS
    if "points" in values:
        try:
            values["points"] = int(values["points"])
        except ValueError as exc:
            raise ValueError(f"points {values['points']!r} is not a whole number") from exc
    if "status" in values and values["status"].lower() not in Member.Status.values:
        raise ValueError(f"status {values['status']!r} is not one of {', '.join(Member.Status.values)}")
    if "status" in values:
        values["status"] = values["status"].lower()
    return values


def find_existing(client: Client, values: dict[str, Any]) -> Member | None:
    members = Member.objects.filter(client=client)
    for key in ("annex_cloud_id", "email", "phone"):
        if values.get(key):
            match = members.filter(**{key: values[key]}).first()
            if match is not None:
                return match
    return None


def report_lines(report: ImportReport) -> Iterable[str]:
    yield f"{report.created} created, {report.updated} updated, {report.failed} failed."
    for line, reason in report.errors:
        yield f"Line {line}: {reason}"
