"""Annex Cloud use cases of the portal: the signed API of a client, refreshing members, pushing segments."""

from __future__ import annotations

import contextlib
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.annexcloud.api import AnnexCloudAPI
from integrations.connections import api_for, connection_of
from integrations.http import NotFound, VendorError
from integrations.models import Client
from integrations.outcome import NotReady, Outcome
from members import sync
from members.models import Member, Segment
from members.phones import InvalidPhone, to_e164

VENDOR = "annex_cloud"


class AnnexCloudNotReady(NotReady):
    """The client has no usable Annex Cloud connection; says what to set up."""


def annex_cloud_api(client: Client) -> AnnexCloudAPI:
    connection = connection_of(client, VENDOR)
    if connection is None or not connection.secret("api_secret") or not client.site_id:
        raise AnnexCloudNotReady(
            f"{client} has no Annex Cloud site credentials: enter the site id and API shared secret from the "
            "client's page (Annex Cloud site credentials)."
        )
    return api_for(
        connection,
        AnnexCloudAPI,
        site_id=client.site_id,
        secret=connection.secret("api_secret"),
        subject=connection.settings.get("jwt_subject", ""),
    )


# --- Members -----------------------------------------------------------------------------------------------------


def refresh_member(member: Member) -> Outcome:
    """Update a member from Annex Cloud's profile (GET /users/{id}); the id is the Annex Cloud id or e-mail."""
    member_id = member.annex_cloud_id or member.email
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


def segment_payload(segment: Segment) -> dict[str, str]:
    """Annex Cloud's segment request, field for field (all strings, dates yyyy-mm-dd)."""
    emails = segment.members.exclude(email="").order_by("pk").values_list("email", flat=True)
    return {
        "name": segment.name,
        "type": segment.type,
        "fromDate": segment.from_date.isoformat() if segment.from_date else "",
        "toDate": segment.to_date.isoformat() if segment.to_date else "",
        "member": ",".join(emails),
        "status": segment.status,
        "externalId": segment.external_id,
        "externalName": segment.external_name,
    }


def push_segment(segment: Segment) -> Outcome:
    """Create the segment at Annex Cloud and keep the id it returns; the outcome says what happened in words."""
    try:
        response = annex_cloud_api(segment.client).create_segment(segment_payload(segment))
    except AnnexCloudNotReady as exc:
        outcome = Outcome.failure(str(exc))
    except VendorError as exc:
        outcome = Outcome.failure(f"Annex Cloud refused segment '{segment}': {exc.message}. {exc.hint}")
    else:
        segment.annex_cloud_segment_id = str((response or {}).get("segmentId", ""))
        segment.pushed_at = timezone.now()
        outcome = Outcome.success(f"Segment '{segment}' is segment {segment.annex_cloud_segment_id} at Annex Cloud.")
    segment.push_result = outcome.message
    segment.save(update_fields=["annex_cloud_segment_id", "pushed_at", "push_result"])
    return outcome
