"""Person sync: a member's contact data reaches Vibes (add or update a person, API version 2, E.164 MDN).

Many edits in a row make one call: the first edit marks the member pending and queues one delayed task; later edits
see it pending and queue nothing; the task clears the mark first and sends the member as it is then.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from integrations.connections import api_for
from integrations.http import NotFound
from integrations.models import Connection
from integrations.vibes.api import MdnConflict, PersonResult, Unprocessable, VibesAPI, person_payload
from integrations.vibes.callbacks import vibes_external_id
from members.models import Member, VibesListSubscription

SYNCED_FIELDS = {"phone", "email", "first_name", "last_name", "zip_code", "annex_cloud_id"}


@dataclass(frozen=True)
class SyncOutcome:
    ok: bool
    message: str


def vibes_connection(member: Member) -> Connection | None:
    return Connection.objects.filter(
        client_id=member.client_id, vendor="vibes", status__in=[Connection.Status.ACTIVE, Connection.Status.FAILING]
    ).first()


def vibes_api(connection: Connection) -> VibesAPI:
    return api_for(
        connection,
        VibesAPI,
        company_key=connection.settings.get("company_key", ""),
        username=connection.secret("api_username"),
        password=connection.secret("api_password"),
    )


def custom_fields(member: Member) -> dict[str, str]:
    fields = {"first_name": member.first_name, "last_name": member.last_name, "email": member.email}
    fields["zip_code"] = member.zip_code
    return {name: value for name, value in fields.items() if value}


def sync_person(member: Member) -> SyncOutcome:
    connection = vibes_connection(member)
    if connection is None:
        return SyncOutcome(False, f"Vibes is not active for {member.client}.")
    api = vibes_api(connection)
    payload = person_payload(vibes_external_id(member), member.phone, custom_fields(member))
    try:
        result = update_or_add(api, member, payload)
    except MdnConflict as exc:
        return SyncOutcome(False, f"{member}: {mdn_holder(member)} {exc.hint}")
    except Unprocessable as exc:
        return SyncOutcome(False, f"{member}: Vibes could not accept the person: {exc.message}. {exc.hint}")
    if result.person_id and result.person_id != member.vibes_person_id:
        Member.objects.filter(pk=member.pk).update(vibes_person_id=result.person_id)
    verb = "created at" if result.created else "updated at"
    return SyncOutcome(True, f"{member} {verb} Vibes (person {result.person_id or member.vibes_person_id}).")


def update_or_add(api: VibesAPI, member: Member, payload: dict) -> PersonResult:
    """Update by person id or external id; a person Vibes does not know (404) is added (merged by MDN if any)."""
    try:
        if member.vibes_person_id:
            return api.update_by_person_id(member.vibes_person_id, payload)
        return api.update_by_external_id(vibes_external_id(member), payload)
    except NotFound:
        return api.add_person(payload)


def mdn_holder(member: Member) -> str:
    other = (
        VibesListSubscription.objects.filter(client_id=member.client_id, mdn=member.phone)
        .exclude(person_id=member.vibes_person_id or "")
        .select_related("member")
        .first()
    )
    if other is not None:
        holder = f" (member {other.member})" if other.member else ""
        return f"Vibes person {other.person_id}{holder} holds {member.phone}."
    return f"another Vibes person holds {member.phone}."


def request_person_sync(member: Member) -> bool:
    """Queue one delayed sync unless one is already pending; returns whether a task was queued."""
    from integrations.tasks import sync_vibes_person  # tasks import this module

    if vibes_connection(member) is None:
        return False
    claimed = Member.objects.filter(pk=member.pk, vibes_sync_pending=False).update(vibes_sync_pending=True)
    if claimed:
        delay = settings.VIBES_SYNC_DELAY_SECONDS
        transaction.on_commit(lambda: sync_vibes_person.apply_async((member.pk,), countdown=delay))
    return bool(claimed)


def run_pending_sync(member_id: int) -> str:
    Member.objects.filter(pk=member_id).update(vibes_sync_pending=False)
    member = Member.objects.select_related("client").get(pk=member_id)
    return sync_person(member).message


def verify(connection: Connection) -> SyncOutcome:
    """Check the company key and API credentials with a read that changes nothing; activate on success."""
    from integrations.connections import save_check_result
    from integrations.http import AuthError, VendorError

    if not connection.settings.get("company_key"):
        return SyncOutcome(False, "Enter the Vibes company key in the connection's settings.")
    try:
        vibes_api(connection).credentials_work()
    except AuthError as exc:
        message = f"Vibes rejected the API credentials ({exc.message}): check the username and password. {exc.hint}"
    except VendorError as exc:
        message = f"Vibes could not be checked: {exc}. {exc.hint}"
    else:
        result = f"Verified: the credentials work for company {connection.settings['company_key']}."
        save_check_result(connection, ok=True, result=result, activate=True)
        return SyncOutcome(True, result)
    save_check_result(connection, ok=False, result=message)
    return SyncOutcome(False, message)
