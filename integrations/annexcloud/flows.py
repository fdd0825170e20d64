"""Annex Cloud use cases of the portal: the signed API of a client, refreshing members, and pushing segments
(created once, then updated in place)."""

from __future__ import annotations

import contextlib
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.annexcloud.api import AnnexCloudAPI
from integrations.connections import api_for, connection_of
from integrations.http import NotFound, VendorError
from integrations.models import Client, Connection
from integrations.outcome import NotReady, Outcome
from members import sync
from members.models import Member, Segment
from members.phones import InvalidPhone, to_e164

VENDOR = "annex_cloud"


class AnnexCloudNotReady(NotReady):
    """The client has no usable Annex Cloud connection; says what to set up."""


def ready_connection(client: Client) -> Connection:
    """The client's Annex Cloud connection, if calls can be made with it; otherwise what to set up."""
    connection = connection_of(client, VENDOR)
    if connection is None or not connection.secret("api_secret") or not client.site_id:
        raise AnnexCloudNotReady(
            f"{client} has no Annex Cloud site credentials: enter the site id and API shared secret from the "
            "client's page (Annex Cloud site credentials)."
        )
    if connection.status == Connection.Status.DISABLED:
        raise AnnexCloudNotReady(
            f"The Annex Cloud connection of {client} is disabled: verify and enter the site credentials again from "
            "the client's page (Annex Cloud site credentials); saving them enables the connection again."
        )
    return connection


def annex_cloud_api(client: Client) -> AnnexCloudAPI:
    connection = ready_connection(client)
    return api_for(
        connection,
        AnnexCloudAPI,
        site_id=client.site_id,
        secret=connection.secret("api_secret"),
        subject=connection.settings.get("jwt_subject", ""),
    )


def annex_cloud_member_id(member: Member) -> str:
    """How Annex Cloud knows a member: its Annex Cloud id, else its e-mail (Annex Cloud accepts either as `id`)."""
    return member.annex_cloud_id or member.email


# --- Members -----------------------------------------------------------------------------------------------------


def refresh_member(member: Member) -> Outcome:
    """Update a member from Annex Cloud's profile (GET /users/{id}); the id is the Annex Cloud id or e-mail."""
    member_id = annex_cloud_member_id(member)
    if not member_id:
        return Outcome.failure(f"{member} has neither an Annex Cloud id nor an e-mail to look up.")
    try:
        profile = annex_cloud_api(member.client).get_member(member_id)
    except NotFound:
        return Outcome.failure(f"{member_id} is not a loyalty member at Annex Cloud.")
    try:
        with transaction.atomic():
            apply_profile(member, profile or {})
    except IntegrityError:
        return Outcome.failure(f"{member}: Annex Cloud's mobile number belongs to another member here.")
    return Outcome.success(f"{member} refreshed from Annex Cloud.")


def apply_profile(member: Member, profile: dict[str, Any]) -> set[str]:
    """Take Annex Cloud's profile into the member; the change reaches the other vendors like any edit."""
    return sync.change_member(member, **profile_values(member, profile))


def profile_values(member: Member, profile: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "annex_cloud_id": str(profile.get("id") or member.annex_cloud_id),
        "email": profile.get("email") or member.email,
        "first_name": profile.get("firstName") or member.first_name,
        "last_name": profile.get("lastName") or member.last_name,
        "zip_code": profile.get("zipCode") or member.zip_code,
    }
    if profile.get("optInStatus"):
        values["opted_in"] = str(profile["optInStatus"]).upper() == "YES"
    if profile.get("status"):
        values["status"] = "active" if str(profile["status"]).upper() == "ACTIVE" else "inactive"
    if profile.get("phone"):
        # Annex Cloud keeps phones as typed ("123-123-4567"); a number that does not parse keeps the stored one.
        with contextlib.suppress(InvalidPhone):
            values["phone"] = to_e164(str(profile["phone"]), member.client.default_region)
    if profile.get("availablePoints") is not None:
        values["points"] = int(profile["availablePoints"])
        values["points_synced_at"] = timezone.now()
    if profile.get("tier"):
        values["tier"] = str(profile["tier"])
    return values


# --- Segments ----------------------------------------------------------------------------------------------------


OPTIONAL_SEGMENT_DATES = frozenset({"fromDate", "toDate"})


def segment_payload(segment: Segment) -> dict[str, str]:
    """Annex Cloud's segment request, field for field (all strings, dates yyyy-mm-dd). The optional dates are left
    out when blank: a strict Annex Cloud refuses "" as a date (AC1004)."""
    emails = segment.members.exclude(email="").order_by("pk").values_list("email", flat=True)
    payload = {
        "name": segment.name,
        "type": segment.type,
        "fromDate": segment.from_date.isoformat() if segment.from_date else "",
        "toDate": segment.to_date.isoformat() if segment.to_date else "",
        "member": ",".join(emails),
        "status": segment.status,
        "externalId": segment.external_id,
        "externalName": segment.external_name,
    }
    return {name: value for name, value in payload.items() if value or name not in OPTIONAL_SEGMENT_DATES}


def push_segment(segment: Segment) -> Outcome:
    """Send the segment to Annex Cloud: created the first time (its id kept), updated in place afterwards, so
    pushing again never makes another segment there. The outcome says what happened in words."""
    try:
        outcome = send_segment(annex_cloud_api(segment.client), segment)
    except AnnexCloudNotReady as exc:
        outcome = Outcome.failure(str(exc))
    except VendorError as exc:
        outcome = Outcome.failure(f"Annex Cloud refused segment '{segment}': {exc.message}. {exc.hint}")
    else:
        segment.pushed_at = timezone.now()
    segment.push_result = outcome.message
    segment.save(update_fields=["annex_cloud_segment_id", "pushed_at", "push_result"])
    return outcome


def send_segment(api: AnnexCloudAPI, segment: Segment) -> Outcome:
    payload = segment_payload(segment)
    known_id = segment.annex_cloud_segment_id
    if not known_id:
        return create_segment(api, segment, payload)
    try:
        answer = api.update_segment(known_id, payload)
    except NotFound as exc:
        if exc.code != "AC1005":
            raise
        # Annex Cloud said it has no such segment (deleted there): create it again, so the push converges.
        outcome = create_segment(api, segment, payload)
        return Outcome.success(f"Annex Cloud no longer had segment {known_id}. {outcome.message}")
    message = f"Segment '{segment}' updated in place at Annex Cloud (segment {known_id})."
    return Outcome.success(" ".join([message, *kept_dates(answer, payload)]))


def create_segment(api: AnnexCloudAPI, segment: Segment, payload: dict[str, str]) -> Outcome:
    answer = api.create_segment(payload)
    segment.annex_cloud_segment_id = str((answer or {}).get("segmentId", ""))
    return Outcome.success(f"Segment '{segment}' is segment {segment.annex_cloud_segment_id} at Annex Cloud.")


def kept_dates(answer: dict[str, Any] | None, payload: dict[str, str]) -> list[str]:
    """A date cleared here that Annex Cloud still holds: its segment API documents no way to clear a date, so say
    so rather than report a segment in step that is not."""
    answer = answer or {}
    labels = {"fromDate": ("segmentFromDate", "from date"), "toDate": ("segmentToDate", "to date")}
    return [
        f"Annex Cloud keeps its {label} {answer[field]}: a date cannot be cleared through its API."
        for name, (field, label) in labels.items()
        if name not in payload and answer.get(field)
    ]
