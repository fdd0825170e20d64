"""Parrot's use cases, as hooks the shared code asks for (integrations/hooks.py): verify a key, keep members in
sync, pull squawks for a recorded job, and a chart of its own on the dashboard."""

from __future__ import annotations

from typing import Any

from integrations import rollups
from integrations.activity import ActivitySeries
from integrations.connections import api_for, usable
from integrations.http import AuthError
from integrations.job_runs import Counts
from integrations.models import Connection
from members.models import Member, MemberVendorState
from tests.parrot_vendor.api import ParrotAPI

# The dashboard series a pull counts its squawks under.
SQUAWKS = "parrot_squawks"
# The member fields Parrot holds.
HELD_FIELDS = ("email", "first_name", "last_name", "opted_in")


def parrot_api(connection: Connection) -> ParrotAPI:
    return api_for(connection, ParrotAPI, api_key=connection.secret("api_key"))


# --- ChecksConnection, ExplainsAuthFailure ------------------------------------------------------------------------


def check_connection(connection: Connection) -> str:
    account = parrot_api(connection).whoami()
    return f"Verified: the key works for Parrot account {account['account']}."


def explain_auth_failure(error: AuthError) -> str:
    return f"Parrot refused the API key ({error.message}): copy it again from Parrot's settings page."


# --- KeepsMembersInSync --------------------------------------------------------------------------------------------


def needs_sync(member: Member, changed_fields: set[str], previous: dict[str, Any]) -> bool:
    return bool(changed_fields & set(HELD_FIELDS))


def reconcile_member(connection: Connection, member: Member, state: MemberVendorState) -> dict[str, Any]:
    held = parrot_api(connection).put_member(member.email, {name: getattr(member, name) for name in HELD_FIELDS})
    return {**held, "summary": f"Repeated by Parrot as {held['email']}."}


# --- A recorded job and its chart (ReportsActivity) ---------------------------------------------------------------


def pull_squawks() -> Counts:
    """Every usable Parrot connection's squawks, counted for the dashboard."""
    pulled = 0
    for connection in usable("parrot").select_related("client"):
        squawks = parrot_api(connection).squawks()
        rollups.counted(SQUAWKS, client_pk=connection.client_id, connection_pk=connection.pk, count=len(squawks))
        pulled += len(squawks)
    return {"squawks": pulled}


def activity_series() -> list[ActivitySeries]:
    return [ActivitySeries("Squawks pulled", SQUAWKS)]
