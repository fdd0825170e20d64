"""Annex Cloud use cases of the portal: the signed API of a client, refreshing members, pushing segments."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from integrations.annexcloud.api import AnnexCloudAPI
from integrations.connections import api_for
from integrations.http import NotFound
from integrations.models import Client, Connection
from members.models import Member
from members.phones import InvalidPhone, to_e164


class AnnexCloudNotReady(Exception):
    """The client has no usable Annex Cloud connection; says what to set up."""


def annex_cloud_api(client: Client) -> AnnexCloudAPI:
    connection = Connection.objects.filter(client=client, vendor="annex_cloud").first()
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


@dataclass(frozen=True)
class RefreshOutcome:
    ok: bool
    message: str


def refresh_member(member: Member) -> RefreshOutcome:
    """Update a member from Annex Cloud's profile (GET /users/{id}); the id is the Annex Cloud id or e-mail."""
    member_id = member.annex_cloud_id or member.email
    if not member_id:
        return RefreshOutcome(False, f"{member} has neither an Annex Cloud id nor an e-mail to look up.")
    try:
        profile = annex_cloud_api(member.client).get_member(member_id)
    except NotFound:
        return RefreshOutcome(False, f"{member_id} is not a loyalty member at Annex Cloud.")
    try:
        with transaction.atomic():
            apply_profile(member, profile or {})
    except IntegrityError:
        return RefreshOutcome(False, f"{member}: Annex Cloud's mobile number belongs to another member here.")
    return RefreshOutcome(True, f"{member} refreshed from Annex Cloud.")


def apply_profile(member: Member, profile: dict[str, Any]) -> None:
    member.annex_cloud_id = str(profile.get("id") or member.annex_cloud_id)
    member.email = profile.get("email") or member.email
    member.first_name = profile.get("firstName") or member.first_name
    member.last_name = profile.get("lastName") or member.last_name
    member.zip_code = profile.get("zipCode") or member.zip_code
    if profile.get("optInStatus"):
        member.opted_in = str(profile["optInStatus"]).upper() == "YES"
    if profile.get("status"):
        member.status = "active" if str(profile["status"]).upper() == "ACTIVE" else "inactive"
    if profile.get("phone"):
        # Annex Cloud keeps phones as typed ("123-123-4567"); a number that does not parse keeps the stored one.
        with contextlib.suppress(InvalidPhone):
            member.phone = to_e164(str(profile["phone"]), member.client.default_region)
    member.save()
