"""Annex Cloud use cases of the portal: the signed API of a client, refreshing members, awarding and deducting
points once per key, and pushing segments (created once, then updated in place)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, cast

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations import rollups
from integrations.annexcloud.api import (
    MANUAL_CREDIT_ACTION_ID,
    NO_DATA_EXPECTED,
    Activity,
    AnnexCloudAPI,
    PointsAlreadyApplied,
)
from integrations.connections import api_for, connection_of
from integrations.http import NotFound, Rejected, VendorError
from integrations.models import Client, Connection
from integrations.outcome import NotReady, Outcome
from members import sync
from members.actions import on_the_timeline
from members.models import (
    Member,
    PointsTransaction,
    Segment,
    annex_cloud_id_holder,
    annex_cloud_id_taken,
    email_problem,
)
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
    return api_of(ready_connection(client), client.site_id)


def api_of(connection: Connection, site_id: str) -> AnnexCloudAPI:
    """The one way an Annex Cloud API is built: signed for the client's site (its id passed in, so that a caller
    holding the client reads it without another query) with the connection's API shared secret and JWT subject."""
    secrets = [str(value) for value in connection.secrets.values() if value]
    return api_for(
        connection,
        AnnexCloudAPI,
        site_id=site_id,
        secret=connection.secret("api_secret"),
        subject=connection.settings.get("jwt_subject", ""),
        secret_values=secrets,
    )


# A member id no loyalty program has: looking it up proves the signature without reading or changing anyone.
VERIFY_PROBE_MEMBER = "portal-verify-probe@invalid.example"


def check_connection(connection: Connection) -> str:
    """The verify check (see connections.verify): a signed look-up of a member who does not exist. Annex Cloud
    answers "no data" (AC1005) to a good signature and AC1002 to a bad one. Uses the connection's secrets as they
    are on this instance, so newly entered ones can be tried before they are stored."""
    if not connection.client.site_id:
        raise AnnexCloudNotReady(
            f"{connection.client} has no Annex Cloud site id: enter it from the client's page (Annex Cloud site "
            "credentials)."
        )
    api = api_of(connection, connection.client.site_id)
    with contextlib.suppress(NotFound):
        api.get_member(VERIFY_PROBE_MEMBER, expected=NO_DATA_EXPECTED)
    return f"Verified: Annex Cloud accepts the signed calls of site {connection.client.site_id}."


def never_verified(client: Client) -> str:
    """Why a push must wait: the client's Annex Cloud connection is still draft ("" otherwise)."""
    connection = connection_of(client, VENDOR)
    if connection is None or connection.status != Connection.Status.DRAFT:
        return ""
    return (
        f"The Annex Cloud connection of {client} was never verified: open Connections, select it and run "
        "'Verify the selected connections' (or 'Save and verify' on its page), then push again. Nothing was sent."
    )


def annex_cloud_member_id(member: Member) -> str:
    """How Annex Cloud knows a member: its Annex Cloud id, else its e-mail (Annex Cloud accepts either as `id`)."""
    return member.annex_cloud_id or member.email


# --- Members -----------------------------------------------------------------------------------------------------


@on_the_timeline(VENDOR, "Refresh from Annex Cloud")
def refresh_member(member: Member) -> Outcome:
    """Update a member from Annex Cloud's profile (GET /users/{id}); the id is the Annex Cloud id or e-mail. A member
    Annex Cloud does not know is recorded as such (a manual credit to them then needs a confirmation)."""
    member_id = annex_cloud_member_id(member)
    if not member_id:
        return Outcome.failure(f"{member} has neither an Annex Cloud id nor an e-mail to look up.")
    try:
        profile = annex_cloud_api(member.client).get_member(member_id, expected=NO_DATA_EXPECTED)
    except NotFound:
        sync.change_member(member, known_to_annex_cloud=False, annex_cloud_read_at=timezone.now())
        return Outcome.failure(f"{member_id} is not a loyalty member at Annex Cloud.")
    try:
        with transaction.atomic():
            apply_profile(member, profile or {})
    except IntegrityError:
        member.refresh_from_db()
        return Outcome.failure(f"{member}: Annex Cloud's mobile number or id belongs to another member here.")
    if member.annex_cloud_note:
        return Outcome.success(f"{member} refreshed from Annex Cloud. Not taken: {member.annex_cloud_note}")
    return Outcome.success(f"{member} refreshed from Annex Cloud.")


def apply_profile(member: Member, profile: dict[str, Any]) -> set[str]:
    """Take Annex Cloud's profile into the member; the change reaches the other vendors like any edit. What cannot be
    taken (an invalid e-mail, an id another member has) keeps the stored value, and the member's Annex Cloud note
    says why."""
    return sync.change_member(member, **profile_values(member, profile))


def profile_values(member: Member, profile: dict[str, Any]) -> dict[str, Any]:
    not_taken: list[str] = []
    values: dict[str, Any] = {
        "annex_cloud_id": checked_annex_cloud_id(member, str(profile.get("id") or ""), not_taken),
        "email": checked_email(member, str(profile.get("email") or ""), not_taken),
        "first_name": profile.get("firstName") or member.first_name,
        "last_name": profile.get("lastName") or member.last_name,
        "zip_code": profile.get("zipCode") or member.zip_code,
        "known_to_annex_cloud": True,
        "annex_cloud_read_at": timezone.now(),
    }
    if profile.get("optInStatus"):
        # The loyalty program's opt-in (seed 003, default YES), never the SMS opt-in: consent to texts comes only
        # from an SMS source (the client's sign-up, an Attentive or Vibes subscription).
        values["loyalty_opted_in"] = str(profile["optInStatus"]).upper() == "YES"
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
    values["annex_cloud_note"] = " ".join(not_taken)
    return values


def checked_annex_cloud_id(member: Member, given: str, not_taken: list[str]) -> str:
    """Annex Cloud's id for the member, unless another member of the client has it: then the stored one."""
    if not given or given == member.annex_cloud_id:
        return member.annex_cloud_id
    if (holder := annex_cloud_id_holder(member.client_id, given, exclude_pk=member.pk)) is not None:
        not_taken.append(f"Annex Cloud's id {given[:100]!r}: {annex_cloud_id_taken(holder)}")
        return member.annex_cloud_id
    return given


def checked_email(member: Member, given: str, not_taken: list[str]) -> str:
    """Annex Cloud's e-mail, unless it is no valid address (it would be passed on to Vibes and SessionM): then the
    stored one."""
    if not given or given == member.email:
        return member.email
    if problem := email_problem(given):
        not_taken.append(f"Annex Cloud's e-mail: {problem}")
        return member.email
    return given


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
    pushing again never makes another segment there. The outcome says what happened in words. A connection that
    was never verified is refused: the segment would go to an account nobody has checked."""
    if problem := never_verified(segment.client):
        return Outcome.failure(problem)
    try:
        outcome = send_segment(annex_cloud_api(segment.client), segment)
    except AnnexCloudNotReady as exc:
        outcome = Outcome.failure(str(exc))
    except VendorError as exc:
        outcome = Outcome.failure(segment_failure(segment, exc))
    else:
        segment.pushed_at = timezone.now()
    segment.push_result = outcome.message
    segment.save(update_fields=["annex_cloud_segment_id", "pushed_at", "push_result"])
    return outcome


def segment_failure(segment: Segment, error: VendorError) -> str:
    if error.uncertain and not segment.annex_cloud_segment_id:
        # A create whose answer was lost may have made the segment: pushing again blindly could make a second one.
        return (
            f"Uncertain: Annex Cloud may have created segment '{segment}' but its answer was lost ({error}). "
            "Check the segments in Annex Cloud before pushing again."
        )
    return f"Annex Cloud refused segment '{segment}': {error.sentence} {error.hint}"


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


# --- Points ------------------------------------------------------------------------------------------------------

Adjustment = PointsTransaction.Status
# The most points one adjustment may move: a guard against a typo crediting millions.
MAX_POINTS = 1_000_000


class KeyReused(ValueError):
    """An idempotency key that was already used for a different adjustment (member, activity or points)."""


@dataclass(frozen=True)
class PointsResult:
    """What `adjust_points` did: the stored transaction, and whether it had been settled by an earlier call with the
    same key (then Annex Cloud was not called again)."""

    transaction: PointsTransaction
    repeated: bool

    @property
    def outcome(self) -> Outcome:
        txn = self.transaction
        if txn.status != Adjustment.APPLIED:
            return Outcome.failure(f"{txn.member}: {txn.detail}")
        again = " (already applied with this key: not sent again)" if self.repeated else ""
        return Outcome.success(f"{txn.member}: {txn.detail}{again}")


@on_the_timeline(VENDOR, "Points adjustment")
def adjust_points(
    member: Member,
    *,
    activity: Activity,
    points: int,
    key: str,
    action_id: str = "",
    reason: str = "",
    order_id: str = "",
    custom_id: str = "",
) -> PointsResult:
    """Credit or debit a member's points at Annex Cloud once per key (unique per client).

    A key already applied or refused answers with the stored transaction and calls nothing. A transaction left
    pending (Annex Cloud unreachable, timed out, credentials refused) is sent again on a repeat: the key goes to
    Annex Cloud as `customId` with `retry: YES`, so it can never be applied twice there. On success the member's
    balance and tier are Annex Cloud's answer. Raises AnnexCloudNotReady for a missing set-up and KeyReused when the
    key belongs to another adjustment; vendor failures are stored on the transaction, never raised. `custom_id`
    (default: the key) is the customId sent: a caller retrying a refused adjustment under a fresh key passes the first
    key's, so an adjustment Annex Cloud applied despite an error answer is never applied twice."""
    if activity not in PointsTransaction.Activity.values or not 0 < points <= MAX_POINTS:
        raise ValueError(f"activity must be credit or debit, and points a whole number from 1 to {MAX_POINTS}")
    settled = PointsTransaction.objects.filter(client_id=member.client_id, key=key).exclude(status=Adjustment.PENDING)
    if (stored := settled.select_related("member").first()) is not None:
        check_same_adjustment(stored, member, activity, points)
        return PointsResult(stored, repeated=True)
    member_id = annex_cloud_member_id(member)
    if not member_id:
        raise AnnexCloudNotReady(f"{member} has neither an Annex Cloud id nor an e-mail to identify them by.")
    api = annex_cloud_api(member.client)
    defaults = {
        "member": member,
        "activity": activity,
        "points": points,
        "action_id": action_id or default_action_id(member.client),
        "reason": reason,
        "order_id": order_id,
    }
    # The row stays locked for the call, so two requests with one key never both send it (PostgreSQL); the
    # calls are recorded in the same transaction, which is why vendor failures are stored here, not raised.
    with transaction.atomic():
        txn, created = PointsTransaction.objects.select_for_update().get_or_create(
            client_id=member.client_id, key=key, defaults=defaults
        )
        check_same_adjustment(txn, member, activity, points)
        if txn.status != Adjustment.PENDING:
            return PointsResult(txn, repeated=True)  # settled by a concurrent request meanwhile
        # A pending row, or a customId first sent under another key, means this customId may have gone out before.
        sent_before = not created or bool(custom_id and custom_id != txn.key)
        send_points(api, txn, member, member_id, custom_id or txn.key, sent_before=sent_before)
    return PointsResult(txn, repeated=False)


def reasons_to_confirm(member: Member, activity: str, key: str) -> list[str]:
    """Why a manual adjustment must be confirmed before it is sent (empty: it need not be). A credit to a member
    Annex Cloud reported opted out, inactive or unknown would be applied, or refused, at Annex Cloud without anyone
    having meant it. A debit (taking points back) needs no confirmation, nor does a key already used: its first
    call was confirmed, and a repeat of it never sends a second adjustment."""
    if activity != PointsTransaction.Activity.CREDIT:
        return []
    if PointsTransaction.objects.filter(client_id=member.client_id, key=key).exists():
        return []
    return member.reasons_not_to_credit()


def default_action_id(client: Client) -> str:
    connection = connection_of(client, VENDOR)
    configured = connection.settings.get("points_action_id", "") if connection else ""
    return str(configured or MANUAL_CREDIT_ACTION_ID)


def check_same_adjustment(txn: PointsTransaction, member: Member, activity: str, points: int) -> None:
    if (txn.member_id, txn.activity, txn.points) != (member.pk, activity, points):
        raise KeyReused(
            f"The idempotency key {txn.key!r} was already used for another adjustment ({txn}); use a new key."
        )


def send_points(
    api: AnnexCloudAPI,
    txn: PointsTransaction,
    member: Member,
    member_id: str,
    custom_id: str,
    *,
    sent_before: bool = False,
) -> None:
    """One POST /points for a pending transaction; its answer (or refusal, code and message) is stored on it.
    `sent_before`: the portal's records say this customId may have gone out already (an earlier call)."""
    try:
        answer = api.change_points(
            member_id,
            txn.points,
            activity=cast(Activity, txn.activity),  # one of the model's choices
            custom_id=custom_id,
            action_id=txn.action_id,
            reason=txn.reason,
            order_id=txn.order_id,
        )
    except PointsAlreadyApplied as exc:
        settle_already_applied(api, txn, member, member_id, exc, sent_before=sent_before or exc.resent)
    except NotFound as exc:
        settle(txn, Adjustment.FAILED, f"{member_id} is not a loyalty member at Annex Cloud.", response=refusal(exc))
    except Rejected as exc:
        detail = f"Annex Cloud refused the {txn.activity}: {exc.sentence} {exc.hint}"
        settle(txn, Adjustment.FAILED, detail, response=refusal(exc))
    except VendorError as exc:
        # Not applied as far as we know: kept pending, and the same key sends it again (once, by customId).
        settle(txn, Adjustment.PENDING, f"{exc.for_admin} Repeat with the same key to send it again.")
    else:
        answer = answer if isinstance(answer, dict) else {}
        apply_points_answer(member, answer)
        settle(txn, Adjustment.APPLIED, applied_summary(txn, answer), response=answer)


def settle_already_applied(
    api: AnnexCloudAPI,
    txn: PointsTransaction,
    member: Member,
    member_id: str,
    error: PointsAlreadyApplied,
    *,
    sent_before: bool,
) -> None:
    """AC1006 ("already exists") to our own customId: applied, never failed.

    Vendor fact (README, "Points at Annex Cloud"): POST /points takes a `customId` unique per
    transaction with `retry: "YES"`, and AC1006 (409) is Annex Cloud's "already exists": it holds a points
    transaction with this customId, so an earlier send was applied and this one was not. The customIds are the
    portal's (the key; a review's award or reversal key), so that earlier send was ours: an attempt whose answer was
    lost (retried by the HTTP layer, or a pending key repeated). Taking it as a refusal would tell the caller
    "refused" about applied points, and a caller who then retries under a new key credits them twice.

    Decided for an AC1006 the portal's records cannot explain (no earlier attempt recorded): still applied. A send
    leaves inside the transaction that records it, so a worker stopped after the POST left rolls that record back
    while Annex Cloud keeps the points; the detail says so, for the rare site where another system sends the same
    customIds. Either way the balance and tier are read from the member's profile, as the lost answer had them."""
    answer = balance_now(api, member_id)
    apply_points_answer(member, answer)
    how = (
        "Annex Cloud had applied it at an earlier attempt whose answer was lost"
        if sent_before
        else "Annex Cloud already had it though the portal has no record of sending it (a send whose record was "
        "lost with its answer, e.g. a worker stopped mid-call; if another system sends the same customIds to this "
        "site, check the member's points there)"
    )
    detail = f"{applied_summary(txn, answer)[:-1]}: {how} (AC1006, already exists): not applied again."
    settle(txn, Adjustment.APPLIED, detail, response={**answer, "alreadyApplied": refusal(error)})


def balance_now(api: AnnexCloudAPI, member_id: str) -> dict[str, Any]:
    """The member's balance and tier at Annex Cloud now (GET /users/{id}), named as a points answer names them;
    {} when the look-up fails: the adjustment is applied all the same, its balance unknown."""
    try:
        profile = api.get_member(member_id)
    except VendorError:
        return {}
    if not isinstance(profile, dict):
        return {}
    answer: dict[str, Any] = {}
    if (balance := whole_number(profile.get("availablePoints"))) is not None:
        answer["updatedAvailablePoints"] = str(balance)
    if profile.get("tier"):
        answer["updatedUserTier"] = str(profile["tier"])
    return answer


def refusal(error: VendorError) -> dict[str, Any]:
    """Annex Cloud's refusal as kept on the transaction: its code and message (AC1001 may have been applied)."""
    return {"errorCode": error.code, "errorMessage": error.message}


def settle(txn: PointsTransaction, status: str, detail: str, *, response: dict[str, Any] | None = None) -> None:
    txn.status, txn.detail = status, detail
    if response is not None:
        txn.response = response
    txn.save(update_fields=["status", "detail", "response"])
    rollups.points_settled(txn)


def apply_points_answer(member: Member, answer: dict[str, Any]) -> None:
    """Take the balance and tier Annex Cloud answered into the member, as a change the other vendors see."""
    values: dict[str, Any] = {}
    balance = whole_number(answer.get("updatedAvailablePoints"))
    if balance is not None:
        values["points"] = balance
        values["points_synced_at"] = timezone.now()
    if answer.get("updatedUserTier"):
        values["tier"] = str(answer["updatedUserTier"])
    sync.change_member(member, **values)


def applied_summary(txn: PointsTransaction, answer: dict[str, Any]) -> str:
    verb = "credited" if txn.activity == PointsTransaction.Activity.CREDIT else "debited"
    summary = f"{verb} {txn.points} points at Annex Cloud"
    balance, tier = answer.get("updatedAvailablePoints"), answer.get("updatedUserTier")
    details = [f"balance {balance}" if balance not in (None, "") else "", f"tier {tier}" if tier else ""]
    details = [part for part in details if part]
    return f"{summary} ({', '.join(details)})." if details else f"{summary}."


def whole_number(value: Any) -> int | None:
    """Annex Cloud sends numbers as strings or integers ("4545", 4545); anything else is not a balance."""
    try:
        return int(str(value))
    except ValueError:
        return None
